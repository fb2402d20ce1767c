"""Exporting weights as files that need none of the suite's code: a ``.keras`` file and a
SavedModel, or an ONNX or TFLite file, each written by Keras' own exporter
(``Model.export``); ``run(options)`` takes ``suite/commands/export.py``'s options and returns
an ``Outcome`` carrying the files written.

An ONNX or TFLite file is checked before the export counts as done: loaded in its own
runtime (onnxruntime; TensorFlow's TFLite interpreter), it must give the Keras model's
class for each of the first ``CHECK_IMAGES`` test images, and every probability within
``TOLERANCE`` of the Keras model's (the two compute in float32 with kernels of their own;
on the shipped weights they differ by about 1e-6).
"""

import importlib.metadata
import importlib.util
import logging
import sys
import warnings
from pathlib import Path

import keras
import numpy as np

from suite import models
from suite.config import DEFAULTS
from suite.core.atomic import atomic_folder, atomic_path, make_folders, write_text
from suite.core.errors import UserError
from suite.core.outcome import Outcome
from suite.core.quiet import native_stderr_silenced
from suite.data.cifar10 import load_cifar10
from suite.data.preprocessing import input_scaling
from suite.models.airbench import WhiteningConv
from suite.models.pretrained import load_with_sidecar
from suite.models.resnet import ZeroPadShortcut
from suite.training.runtime import configure
from suite.workflows.weight_source import weights_file, weights_name

FORMATS = ("keras", "onnx", "tflite")
PACKAGES = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "tflite": ()}  # beyond TensorFlow: the `export` extra
CHECK_IMAGES = 1000
TOLERANCE = 1e-4  # the largest difference allowed in any class probability, file runtime against Keras


def run(args):
    out = Path(args.out or "")
    if not args.out:
        raise UserError("-o/--out: give a new folder for the exported files")
    if args.format not in FORMATS:
        raise UserError(f"--format {args.format}: one of {', '.join(FORMATS)}")
    if out.exists():
        raise UserError(f"-o {out}: exists; give a new folder (nothing is overwritten)")
    if args.format != "keras":
        check_exporter(args.format)
    configure(dict(DEFAULTS["runtime"], strategy="none", precision="float32"), 0, False)  # devices, quietly
    path, _ = weights_file(args)
    net, sidecar = load_with_sidecar(path, models.create)
    name = weights_name(args, path)
    classes = sidecar.get("class_names") or [str(i) for i in range(net.output_shape[-1])]
    if args.format != "keras":
        images, where = check_images(args)
        model = portable_model(net, sidecar["preprocessing"], name, Path(path).parent, fmt=args.format)
        expected = model.predict(images, batch_size=250, verbose=0)  # also what the exporter needs: a called model
        make_folders(out)
        file = out / f"{name}.{args.format}"
        write_portable(model, args.format, file)
        write_text(out / f"{name}_classes.txt", "\n".join(classes) + "\n")
        check = compare_runtime(expected, args.format, file, images, where)
        print("\n".join(map(str, [file, out / f"{name}_classes.txt"])))
        print(check["line"], file=sys.stderr if not check["passed"] else sys.stdout)
        return Outcome(0 if check["passed"] else 1, files=[file, out / f"{name}_classes.txt"], check=check)
    model = portable_model(net, sidecar["preprocessing"], name, Path(path).parent)
    make_folders(out)
    with atomic_path(out / f"{name}.keras") as tmp:
        model.save(str(tmp))
    write_text(out / f"{name}_classes.txt", "\n".join(classes) + "\n")
    written = [out / f"{name}.keras", out / f"{name}_classes.txt"]
    if keras.backend.backend() == "tensorflow":
        write_savedmodel(model, out / f"{name}_savedmodel")
        written.append(out / f"{name}_savedmodel")
    else:
        print(f"note: no SavedModel under the {keras.backend.backend()} backend (it needs TensorFlow)", file=sys.stderr)
    print("\n".join(map(str, written)))
    return Outcome(0, files=written)


# ----------------------------------------------------------------------------- onnx and tflite
def check_exporter(fmt):
    """Refuse, before anything is read, a format whose exporter is not here: both need the
    TensorFlow backend, ONNX also tf2onnx (Keras' exporter under TensorFlow), onnx and onnxruntime."""
    if keras.backend.backend() != "tensorflow":
        raise UserError(f"--format {fmt}: exported with the TensorFlow backend only "
                        f"(this process runs {keras.backend.backend()}; unset KERAS_BACKEND)")
    missing = [p for p in PACKAGES[fmt] if importlib.util.find_spec(p) is None]
    if missing:
        raise UserError(f"--format {fmt} needs {', '.join(PACKAGES[fmt])}; missing: {', '.join(missing)} "
                        "(pip install 'cifar10-cnn-suite[export]')")


def check_images(args):
    """``(uint8 images, what they are)``: the first ``CHECK_IMAGES`` test images of ``--data``."""
    data = load_cifar10(args.data_path, args.data)
    if not len(data.x_test):
        raise UserError(f"{data.source}: has no test images to check the exported file on")
    images = data.x_test[:CHECK_IMAGES]
    what = "the quick-start sample's" if data.is_sample else "CIFAR-10's"
    return images, f"the first {len(images):,} of {what} test images"


def write_portable(model, fmt, path):
    """``model`` exported by Keras as ``fmt`` (onnx, or tflite: Keras' "litert") into ``path``,
    which appears only once complete; the exporters' own chatter (tf2onnx's log, the
    converter's C++ lines) is kept off the terminal."""
    with atomic_path(path, suffix=f".{fmt}") as tmp, native_stderr_silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = logging.getLogger("tf2onnx").level
        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        try:
            model.export(str(tmp), format="onnx" if fmt == "onnx" else "litert", verbose=False)
        finally:
            logging.getLogger("tf2onnx").setLevel(level)


def runtime_probabilities(fmt, path, images):
    """What the file at ``path`` computes for ``images``, run in its own runtime: onnxruntime,
    or the TFLite interpreter (TensorFlow's ``tf.lite.Interpreter``; ai-edge-litert's where
    TensorFlow no longer has one)."""
    if fmt == "onnx":
        import onnxruntime  # lazy: an optional package, for --format onnx only

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: images})[0]
    import tensorflow as tf  # lazy: TensorFlow itself, for its TFLite interpreter

    with warnings.catch_warnings(), native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation in favour of ai-edge-litert
        interpreter = (tf.lite.Interpreter if hasattr(tf.lite, "Interpreter")
                       else importlib.import_module("ai_edge_litert.interpreter").Interpreter)(model_path=str(path))
        given = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(given["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def runtime_name(fmt):
    if fmt == "onnx":
        return f"onnxruntime {importlib.metadata.version('onnxruntime')}"
    return f"the TFLite interpreter of TensorFlow {importlib.metadata.version('tensorflow')}"


def compare_runtime(expected, fmt, path, images, where):
    """The file's probabilities in its runtime on ``images`` against the Keras model's
    (``expected``): ``{"passed", "images", "same_class", "max_difference", "tolerance",
    "runtime", "line"}``. A class may differ only where Keras' two most probable classes are
    within ``TOLERANCE`` of each other (a tie)."""
    got = np.asarray(runtime_probabilities(fmt, path, images), "float32")
    if got.shape != expected.shape:
        return {"passed": False,
                "line": f"error: {path}: gives shape {got.shape} in its runtime, Keras {expected.shape}"}
    difference = float(np.abs(got - expected).max())
    ordered = np.sort(expected, axis=1)
    tie = ordered[:, -1] - ordered[:, -2] <= TOLERANCE
    same = got.argmax(1) == expected.argmax(1)
    passed = bool(np.all(same | tie)) and difference <= TOLERANCE
    check = {"passed": passed, "images": len(images), "same_class": int(same.sum()), "max_difference": difference,
             "tolerance": TOLERANCE, "runtime": runtime_name(fmt)}
    verdict = "checked" if passed else "error: check failed"
    check["line"] = (f"{verdict}: {path.name} in {check['runtime']} on {where}: the Keras model's class for "
                     f"{check['same_class']:,} of {len(images):,}, probabilities within {difference:.1e} of its "
                     f"(tolerance {TOLERANCE:.0e})")
    return check


# ----------------------------------------------------------------------------- keras and savedmodel
def write_savedmodel(model, folder):
    """``model`` as a SavedModel in ``folder``, which appears only once complete. TensorFlow
    reports a failed write as an OpError ending in the system's words ("...; No space
    left on device [Op:SaveV2]"), which becomes a WriteError naming ``folder``."""
    import tensorflow as tf  # lazy: TensorFlow itself, for the SavedModel only

    with atomic_folder(folder) as draft:
        try:
            with native_stderr_silenced():  # TensorFlow's C++ lines while it writes the graph
                model.export(str(draft), format="tf_saved_model", verbose=False)
        except tf.errors.OpError as e:
            raise OSError(None, e.message.rsplit("; ", 1)[-1].split(" [Op:")[0].strip()) from None


def portable_model(net, preprocessing, name, folder, fmt="keras"):
    """uint8 images -> the training set's scaling -> ``net``, in built-in Keras layers only
    (``folder``: the sidecar's, where a ZCA whitening file is). For ONNX and TFLite (``fmt``)
    the scaling is a ``Rescaling`` by 1/std and -mean/std, because tf2onnx turns the
    ``Normalization`` layer's mean and variance, tensors made when it is built, into two
    more inputs of the graph; for ONNX also see ``portable_copy``."""
    inputs = keras.Input(net.input_shape[1:], dtype="uint8", name="images")
    if preprocessing.get("normalize") == "zca":
        x = input_scaling(preprocessing, folder)(inputs)
    elif fmt != "keras":
        mean, std = np.asarray(preprocessing["mean"], "float32"), np.asarray(preprocessing["std"], "float32")
        x = keras.layers.Rescaling(scale=1.0 / std, offset=-mean / std, name="standardize")(inputs)
    else:
        mean, std = np.asarray(preprocessing["mean"]), np.asarray(preprocessing["std"])
        x = keras.layers.Normalization(mean=mean, variance=std ** 2, name="standardize")(inputs)
    return keras.Model(inputs, portable_copy(net, gelu_as_erf=fmt == "onnx")(x), name=name)


def portable_copy(net, gelu_as_erf=False):
    """``net`` with its weights and Keras' layers only: each ``ZeroPadShortcut`` replaced by
    a fixed 1x1 convolution, airbench94's ``WhiteningConv`` by a 2x2 one, and the suite's
    initializers (which a loaded model never calls) by zeros. ``gelu_as_erf`` (ONNX): the
    exact GELU written as 0.5 x (1 + erf(x / sqrt 2)), because TensorFlow computes it with
    ``Erfc``, which tf2onnx passes on although ONNX has no such operator (it has ``Erf``)."""
    def clone(layer):
        if gelu_as_erf and isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.gelu:
            return keras.layers.Activation(_gelu_erf, name=layer.name)
        if isinstance(layer, ZeroPadShortcut):
            return keras.layers.Conv2D(layer.filters, 1, strides=layer.strides, use_bias=False, trainable=False,
                                       name=layer.name)
        if isinstance(layer, WhiteningConv):
            return keras.layers.Conv2D(layer.filters, 2, padding="valid", name=layer.name)
        return layer.__class__.from_config(_without_suite_initializers(layer.get_config()))

    copy = keras.models.clone_model(net, clone_function=clone)
    for original, layer in zip(net.layers, copy.layers):
        if isinstance(original, ZeroPadShortcut):
            channels = original.input.shape[-1]
            kernel = np.zeros((1, 1, channels, original.filters), "float32")
            start = (original.filters - channels) // 2
            kernel[0, 0, np.arange(channels), start + np.arange(channels)] = 1.0
            layer.set_weights([kernel])
        elif isinstance(original, WhiteningConv):  # its weights list the trained bias first
            layer.set_weights([keras.ops.convert_to_numpy(original.kernel), keras.ops.convert_to_numpy(original.bias)])
        else:
            layer.set_weights(original.get_weights())
    return copy


def _gelu_erf(x):
    """The exact GELU through ``erf`` (Hendrycks and Gimpel 2016, arXiv:1606.08415, eq. 1)."""
    return 0.5 * x * (1.0 + keras.ops.erf(x / np.sqrt(2.0).astype("float32")))


def _without_suite_initializers(config):
    return {key: "zeros" if isinstance(value, dict) and str(value.get("registered_name", "")).startswith("suite>")
            else value for key, value in config.items()}
