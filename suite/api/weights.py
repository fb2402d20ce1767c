"""Trained weights from Python: ``load`` them as a network, ``evaluate`` them into a report,
``predict`` image files, ``export`` them, ``visualize`` them. The commands evaluate.py,
predict.py, export.py and visualize.py are argument parsing over these.

Weights are named as the commands name them: ``pretrained=`` (shipped, by name), ``run=``
(a run folder, with ``checkpoint="final"`` or ``"best"``) or ``weights=`` (a file with its
sidecar); or as one positional ``source``, which is a run folder if it is a folder, a
weights file if it is a file, else a pretrained name::

    net = suite.load("allcnn_c")
    report = suite.evaluate("allcnn_c", data="sample")
    found = suite.predict(["cat.png"], "allcnn_c")
"""

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from suite import models
from suite.analysis import gradcam
from suite.api.options import EvaluateOptions, ExportOptions, PredictOptions, VisualizeOptions, WeightsOptions, options
from suite.core.errors import UserError
from suite.data.preprocessing import input_scaling, wrap
from suite.models.pretrained import load_with_sidecar
from suite.workflows import evaluate as evaluate_workflow
from suite.workflows import export as export_workflow
from suite.workflows import predict as predict_workflow
from suite.workflows import visualize as visualize_workflow
from suite.workflows.weight_source import weights_file


def named(source, given):
    """``given`` (keyword options) with ``source`` as ``pretrained``, ``run`` or ``weights``."""
    if source is None:
        return given
    if any(given.get(k) is not None for k in ("weights", "run", "pretrained")):
        raise UserError(f"{source}: give the weights once, as the first argument or as weights=, run= or pretrained=")
    path = Path(source)
    key = "run" if path.is_dir() else "weights" if path.is_file() else "pretrained"
    return {**given, key: str(source)}


def paths_as_text(given):
    """Path objects as the text the workflows expect of an option."""
    return {k: str(v) if isinstance(v, Path) else [str(x) if isinstance(x, Path) else x for x in v]
            if isinstance(v, (list, tuple)) else v for k, v in given.items()}


# ----------------------------------------------------------------------------- load
@dataclass
class Network:
    """Trained weights ready to use: ``model`` takes uint8 images (N, 32, 32, 3) and returns
    class probabilities; ``net`` is the bare network and ``scaling`` its input scaling
    (uint8 to what ``net`` takes), which Grad-CAM needs apart."""
    model: object
    net: object
    scaling: object
    class_names: list
    weights: Path
    sidecar: dict

    def probabilities(self, images, batch_size=250):
        """(N, classes) probabilities of uint8 ``images`` (N, 32, 32, 3), or of one image (32, 32, 3)."""
        images = np.asarray(images, "uint8")
        return self.model.predict(images[None] if images.ndim == 3 else images, batch_size=batch_size, verbose=0)

    def classify(self, images):
        """The class name of each image (or of one image)."""
        names = [self.class_names[i] for i in self.probabilities(images).argmax(1)]
        return names[0] if np.ndim(images) == 3 else names

    def gradcam(self, images, classes=None, layer=None):
        """Grad-CAM heatmaps (N, 32, 32) in [0, 1] of uint8 ``images`` for ``classes`` (default:
        each image's predicted class) at ``layer`` (default: the last convolution);
        Selvaraju et al. 2017, ``suite.analysis.gradcam``."""
        images = np.asarray(images, "uint8")
        images = images[None] if images.ndim == 3 else images
        x = keras.ops.convert_to_numpy(self.scaling(images))
        if classes is None:
            classes = self.net.predict(x, verbose=0).argmax(1)
        conv = gradcam.conv_layer(self.net, layer)
        return gradcam.upsample(gradcam.grad_cam(self.net, conv, x, np.asarray(classes)), images.shape[1])

    def __repr__(self):
        return f"Network({self.weights}, {self.net.name}, classes={len(self.class_names)})"


def load(source=None, *, weights=None, run=None, pretrained=None, checkpoint="final") -> Network:
    """Trained weights as a ``Network``: shipped ones by name, a run folder's, or a file's.

    Example::

        net = suite.load("allcnn_c")                       # shipped weights
        net = suite.load("outputs/quickstart-20261201-120000", checkpoint="best")
        probs = net.probabilities(images); names = net.classify(images)
    """
    given = named(source, {"weights": weights, "run": run, "pretrained": pretrained})
    chosen = options(WeightsOptions, "load", {**paths_as_text(given), "checkpoint": checkpoint})
    path, _ = weights_file(chosen)
    net, sidecar = load_with_sidecar(path, models.create)
    scaling = input_scaling(sidecar["preprocessing"], Path(path).parent)
    classes = sidecar.get("class_names") or [str(i) for i in range(net.output_shape[-1])]
    return Network(wrap(net, scaling), net, scaling, list(classes), Path(path), sidecar)


# ----------------------------------------------------------------------------- evaluate
@dataclass
class Report:
    """An evaluation's report folder: ``metrics`` (metrics.json), ``text`` (report.txt, what
    was printed) and the files the reports wrote (``confusion.png``, ...)."""
    folder: Path
    exit_code: int = 0

    @property
    def metrics(self):
        return _json(self.folder / "metrics.json")

    @property
    def text(self):
        path = self.folder / "report.txt"
        return path.read_text() if path.is_file() else ""

    @property
    def files(self):
        return sorted(self.folder.iterdir())


def evaluate(source=None, **settings) -> Report:
    """Score weights on the CIFAR-10 test set (or ``data="sample"``) into a new report folder.

    ``settings`` are evaluate.py's options by their names (``suite.api.options.EvaluateOptions``:
    ``data``, ``data_path``, ``limit``, ``tta``, ``out_dir``, ...).

    Example::

        report = suite.evaluate("allcnn_c", data="sample")
        report.metrics["accuracy"], report.folder / "confusion.png"
    """
    outcome = evaluate_workflow.run(options(EvaluateOptions, "evaluate", paths_as_text(named(source, settings))))
    return Report(Path(outcome.folder), int(outcome))


# ----------------------------------------------------------------------------- predict
@dataclass
class Predictions:
    """Each readable image's file and probabilities, in order, with the class names."""
    files: list
    probabilities: np.ndarray
    class_names: list
    failed: int = 0
    exit_code: int = 0

    @property
    def labels(self):
        """The most probable class of each image."""
        return [self.class_names[i] for i in self.probabilities.argmax(1)] if len(self.files) else []

    def top(self, k=3):
        """``[(file, [(class, probability), ...])]``, the ``k`` most probable classes of each image."""
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :k]
        return [(f, [(self.class_names[i], float(p[i])) for i in o])
                for f, p, o in zip(self.files, self.probabilities, order)]


def predict(images=(), source=None, **settings) -> Predictions:
    """Classify image files or folders of them (PNG or JPEG, any size), as predict.py does;
    ``kaggle=<folder>`` writes the competition's submission instead.

    ``settings`` are predict.py's options by their names (``suite.api.options.PredictOptions``:
    ``top``, ``csv``, ``tta``, ...). For images already in memory, ``suite.load(...).classify``.

    Example::

        found = suite.predict(["photo.jpg", "photos/"], "allcnn_c")
        found.labels, found.top(3)
    """
    images = [images] if isinstance(images, (str, Path)) else list(images)
    chosen = options(PredictOptions, "predict", paths_as_text({**named(source, settings), "images": images}))
    outcome = predict_workflow.run(chosen)
    results = outcome.results or []
    probs = np.stack([p for _, p in results]) if results else np.zeros((0, len(outcome.classes or [])), "float32")
    return Predictions([Path(f) for f, _ in results], probs, list(outcome.classes or []),
                       outcome.failed or 0, int(outcome))


# ----------------------------------------------------------------------------- export, visualize
@dataclass
class Exported:
    """The files (and folders) an export wrote; ``check`` for onnx and tflite: how the file
    compared with the Keras model in its own runtime."""
    files: list
    check: dict | None = None
    exit_code: int = 0


def export(source=None, **settings) -> Exported:
    """Export weights as files that need none of the suite's code (``out=`` a new folder):
    ``format="keras"`` (a .keras file and a SavedModel), ``"onnx"`` or ``"tflite"`` (each
    checked in its own runtime against the Keras model).

    Example::

        suite.export("allcnn_c", out="exported", format="onnx").files
    """
    outcome = export_workflow.run(options(ExportOptions, "export", paths_as_text(named(source, settings))))
    return Exported(list(outcome.files or []), outcome.check, int(outcome))


@dataclass
class Drawn:
    """What ``visualize`` made: the new folder of PNGs (none for ``layers``), and ``layers``,
    the conv layers' names, for ``layers``."""
    folder: Path | None
    layers: list | None = None
    exit_code: int = 0

    @property
    def files(self):
        return sorted(self.folder.glob("*.png")) if self.folder else []


def visualize(command, source=None, **settings) -> Drawn:
    """Draw ``"filters"``, ``"features"`` or ``"gradcam"`` into a new folder (``"layers"``
    lists the conv layers), as visualize.py does; ``settings`` are its options by their
    names (``suite.api.options.VisualizeOptions``).

    Example::

        drawn = suite.visualize("gradcam", "allcnn_c", image=["cat.png"])
        drawn.files        # [.../gradcam-conv2d_8.png]
    """
    given = paths_as_text({**named(source, settings), "command": command})
    outcome = visualize_workflow.run(options(VisualizeOptions, "visualize", given))
    return Drawn(outcome.folder, outcome.layers, int(outcome))


def _json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
