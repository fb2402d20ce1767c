"""CIFAR-10 from a local copy: the official python batches, the official ``.tar.gz``, or
an ``.npz``; and the small sample that ships in ``data/`` for the offline quick start.

Images stay ``uint8`` (N, 32, 32, 3) in memory; scaling, standardisation and
augmentation run inside the model (``suite.data.preprocessing``), so batches cost one
``numpy.take`` each.
"""

import contextlib
import io
import os
import pickle
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from suite.core import safe_pickle
from suite.core.errors import UserError
from suite.core.paths import SAMPLE
from suite.core.provenance import data_identity
from suite.core.registry import did_you_mean
from suite.data import whitening as zca
from suite.data.kaggle import LABELS as KAGGLE_LABELS
from suite.data.kaggle import is_kaggle_folder, read_training_images

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
SAMPLE_PATH = SAMPLE
KERAS_DATASETS = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
KERAS_CACHE = KERAS_DATASETS / "cifar-10-batches-py"  # where Keras 2 put its download; named in messages
KERAS3_CACHE = KERAS_DATASETS / "cifar-10-batches-py-target" / "cifar-10-batches-py"  # where Keras 3 puts it
MAX_BATCH_BYTES = 64 << 20  # a batch's 10,000 images are 30.7 MB; a .tar.gz can inflate far past that
HOW_TO_POINT = ("point data.path in the config, or the CIFAR10_PATH environment variable, at a "
                "folder of the official python batches, cifar-10-python.tar.gz, or an .npz")


@dataclass
class Cifar10:
    x_train: np.ndarray  # (N, 32, 32, 3) uint8
    y_train: np.ndarray  # (N,) int32 in 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str          # where the images came from, for headers and sidecars
    class_names: list = field(default_factory=lambda: list(CLASS_NAMES))
    is_sample: bool = False


# ---------------------------------------------------------------------------- finding it

def resolve_source(path=None, source="cifar10"):
    """The path to read: the sample, ``path``, ``$CIFAR10_PATH``, or the Keras cache.

    Returns None when nothing local is configured and the Keras cache is empty (the
    caller may then try the Keras download).
    """
    if source == "sample":
        return SAMPLE_PATH
    for candidate in (path, os.environ.get("CIFAR10_PATH") or None):
        if candidate:
            return Path(candidate).expanduser()
    return keras_cache()


def keras_cache():
    """The folder of python batches in Keras' cache, or None. Keras 2 extracted its
    download to ``datasets/cifar-10-batches-py``; Keras 3's ``cifar10.load_data``
    extracts it one folder deeper, under ``datasets/cifar-10-batches-py-target``."""
    for folder in (KERAS_CACHE, KERAS3_CACHE):
        if folder.is_dir():
            return folder
    return None


def check_source(path, origin="data.path"):
    """Raise UserError unless ``path`` looks like one of the three supported layouts."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{origin}: {path} does not exist; {HOW_TO_POINT}")
    if path.is_dir():
        if (path / "cifar-10-batches-py").is_dir():
            return path / "cifar-10-batches-py"
        if is_kaggle_folder(path):
            return path
        if not (path / TEST_BATCH).exists() and not (path / TRAIN_BATCHES[0]).exists():
            raise UserError(f"{origin}: {path} holds no CIFAR-10 python batches "
                            f"(data_batch_1..5, test_batch) and is no Kaggle folder (train/, {KAGGLE_LABELS}); "
                            f"{HOW_TO_POINT}")
        return path
    if path.name.endswith((".tar.gz", ".tgz")) or path.suffix == ".npz":
        return path
    raise UserError(f"{origin}: {path} is not a folder of batches, a .tar.gz or an .npz")


# ---------------------------------------------------------------------------- reading it

def load_cifar10(path=None, source="cifar10"):
    """Load all of CIFAR-10 (or the shipped sample) as uint8 NHWC arrays."""
    resolved = resolve_source(path, source)
    if resolved is None:
        return _keras_download()
    if source == "sample" and not resolved.exists():
        raise UserError(f"the quick-start sample {resolved} is missing from this checkout")
    origin = "CIFAR10_PATH" if (not path and source != "sample" and os.environ.get("CIFAR10_PATH")) else "data.path"
    resolved = check_source(resolved, origin)
    if resolved.is_dir() and is_kaggle_folder(resolved):
        data = _read_kaggle(resolved)
    elif resolved.is_dir():
        data = _read_batches(lambda name: _open_member(resolved / name), str(resolved))
    elif resolved.suffix == ".npz":
        data = _read_npz(resolved)
    else:
        data = _read_tarball(resolved)
    data.is_sample = source == "sample"
    return data


def _open_member(path):
    if not path.exists():
        raise UserError(f"{path}: missing; a CIFAR-10 folder holds {', '.join(TRAIN_BATCHES)} and {TEST_BATCH}")
    _check_size(path.stat().st_size, path)
    return open(path, "rb")


def _check_size(size, where):
    if size > MAX_BATCH_BYTES:
        raise UserError(f"{where}: {size:,} bytes, more than a CIFAR-10 batch file ({MAX_BATCH_BYTES:,} at most)")


def _read_batches(open_member, where):
    train = [_read_batch(open_member, name, where) for name in TRAIN_BATCHES]
    x_test, y_test = _read_batch(open_member, TEST_BATCH, where)
    names = CLASS_NAMES
    try:
        with open_member("batches.meta") as f:
            meta = safe_pickle.load(f, f"{where}/batches.meta")
        names = [n.decode() if isinstance(n, bytes) else n for n in meta[b"label_names"]]
    except safe_pickle.Refused:
        raise
    except (UserError, OSError, KeyError, TypeError, pickle.UnpicklingError, EOFError):
        pass  # the meta file is optional; the names are fixed anyway
    return Cifar10(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                   x_test, y_test, source=where, class_names=names)


def _read_batch(open_member, name, where):
    with open_member(name) as f:
        try:
            batch = safe_pickle.load(f, f"{where}/{name}")
            data, labels = batch[b"data"], batch[b"labels"]
        except safe_pickle.Refused:
            raise
        except Exception as e:  # truncated files raise EOFError, UnpicklingError, ValueError...
            raise UserError(f"{where}/{name}: truncated or not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and isinstance(labels, list)
            and all(type(v) is int for v in labels)):
        # numpy would expand nested lists (which a small pickle can share without bound) before any check
        raise UserError(f"{where}/{name}: expected a uint8 numpy image array and a list of integer labels, "
                        f"got {type(data).__name__} {getattr(data, 'dtype', '')} and {type(labels).__name__}")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise UserError(f"{where}/{name}: expected a (N, 3072) image array with N labels, "
                        f"got {data.shape} and {len(labels)} labels")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), _check_labels(np.asarray(labels), f"{where}/{name}")


def _read_tarball(path):
    try:
        tar = tarfile.open(path, "r:gz")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .tar.gz ({e})") from None
    with tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

        def open_member(name):
            if name not in members:
                raise UserError(f"{path}: has no member {name}; expected the official cifar-10-python.tar.gz")
            _check_size(members[name].size, f"{path}: member {name}")
            return tar.extractfile(members[name])

        try:
            return _read_batches(open_member, str(path))
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            raise UserError(f"{path}: truncated or corrupt archive ({e})") from None


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in f}
    except Exception as e:
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise UserError(f"{path}: missing arrays {', '.join(missing)} (an .npz needs x_train, y_train, x_test, y_test)")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"].reshape(-1)
        if x.ndim != 4 or x.shape[1:] != (32, 32, 3) or x.dtype != np.uint8:
            raise UserError(f"{path}: x_{split} has shape {x.shape} and dtype {x.dtype}, expected (N, 32, 32, 3) uint8")
        if len(y) != len(x):
            raise UserError(f"{path}: y_{split} has {len(y)} labels for {len(x)} images")
        arrays[f"y_{split}"] = _check_labels(y, f"{path}: y_{split}")
    return Cifar10(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], source=str(path))


def _read_kaggle(folder):
    """The competition's training images and labels; it has no test labels, so no test set."""
    x, y = read_training_images(folder, CLASS_NAMES)
    empty = np.zeros((0, *x.shape[1:]), np.uint8)
    return Cifar10(x, y, empty, np.zeros(0, np.int32), source=f"{folder} (Kaggle layout)")


def _check_labels(y, where):
    if y.size and (y.min() < 0 or y.max() >= len(CLASS_NAMES) or not np.issubdtype(y.dtype, np.integer)):
        raise UserError(f"{where}: labels must be integers in 0..9, found {y.min()}..{y.max()} ({y.dtype})")
    return y.astype(np.int32)


def keras_download():
    """``keras.datasets.cifar10.load_data()``, the download into Keras' cache, with its
    opening "Downloading data from ..." line held back until data arrives: a download
    that fails at once (offline) leaves the caller's one error line alone."""
    import keras  # lazy: Keras (and TensorFlow) only for its download and cache
    with contextlib.redirect_stdout(_HeldFirstLine(sys.stdout)):
        return keras.datasets.cifar10.load_data()


class _HeldFirstLine(io.TextIOBase):
    """A text stream that passes writes on to ``out``, except the first, which it keeps
    until a second write (Keras' progress bar) follows it."""

    def __init__(self, out):
        self.out, self.held = out, None

    def write(self, text):
        if self.held is None:
            self.held = text
        else:
            self.out.write(self.held + text)
            self.held = ""
        return len(text)

    def flush(self):
        self.out.flush()


def _keras_download():
    """Last resort for users who are online: Keras' own download into its cache."""
    try:
        (x_train, y_train), (x_test, y_test) = keras_download()
    except Exception as e:
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise UserError(f"no CIFAR-10 found and the Keras download failed ({reason}); {HOW_TO_POINT}") from None
    return Cifar10(x_train, y_train.reshape(-1).astype(np.int32), x_test, y_test.reshape(-1).astype(np.int32),
                   source="keras.datasets.cifar10 download")


# ---------------------------------------------------------------------------- splitting it

def stratified_indices(labels, per_class, seed):
    """``per_class`` random indices of every class (sorted), the same for the same seed."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if per_class > len(members):
            raise UserError(f"data.subset: {per_class} images per class asked, class {c} has {len(members)}")
        picked.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def stratified_split(labels, fraction, seed):
    """Split indices into (train, held_out) with ``fraction`` of every class held out; a
    ``fraction`` of 1 or more is a count of images, spread over the classes by their share."""
    rng = np.random.default_rng(seed)
    if fraction >= 1:
        if fraction >= len(labels):
            raise UserError(f"data.validation: {fraction} images to hold out, of {len(labels)} training images")
        fraction = fraction / len(labels)
    held = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        held.append(rng.choice(members, max(1, round(fraction * len(members))), replace=False))
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held), held


def validation_name(validation):
    """How a run's ``data.validation`` reads in headers and checkpoint records."""
    if validation == "test":
        return "the test set"
    amount = f"{validation:.0%}" if validation < 1 else f"{validation:,} images"
    return f"{amount} of the training set, held out"


def channel_stats(images):
    """Per-channel mean and standard deviation in pixel units (0..255), as lists."""
    flat = images.reshape(-1, images.shape[-1])
    mean = np.zeros(flat.shape[1])
    sq = np.zeros(flat.shape[1])
    for start in range(0, len(flat), 1 << 22):  # chunks keep float64 copies small
        chunk = flat[start:start + (1 << 22)].astype(np.float64)
        mean += chunk.sum(0)
        sq += (chunk ** 2).sum(0)
    mean /= len(flat)
    std = np.sqrt(sq / len(flat) - mean ** 2)
    return [float(m) for m in mean], [float(s) for s in std]


# ---------------------------------------------------------------------------- a run's splits

# (mean, std) per channel of the normalisations that need no statistics
RAW_SCALING = {"scale": ([0.0, 0.0, 0.0], [255.0, 255.0, 255.0]), "none": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])}

@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    validation: str          # "test set" or "N% of the training set"
    mean: list               # per-channel normalisation, pixel units
    std: list
    source: str
    class_names: list
    is_sample: bool
    whitening: object = None  # suite.data.whitening.Whitening for normalize: zca

    @property
    def identity(self):
        """The test images as ``suite.core.provenance.data_identity`` names them."""
        return data_identity(data_name(self.source, self.is_sample), self.x_test, self.y_test)

    @property
    def preprocessing(self):
        """The sidecar's record of the input scaling (``suite.data.preprocessing.input_scaling`` reads it)."""
        if self.whitening is not None:
            return {"normalize": "zca", "mean": self.mean, "std": self.std, "input_dtype": "uint8",
                    "zca": self.whitening.describe()}
        return {"mean": self.mean, "std": self.std, "input_dtype": "uint8",
                "note": "x_float = (uint8 pixels - mean) / std, per RGB channel"}


def data_name(source, is_sample):
    """What the images are, without where they lie: ``cifar10``, ``cifar10-sample`` or ``kaggle-cifar10``."""
    if is_sample:
        return "cifar10-sample"
    return "kaggle-cifar10" if source.endswith("(Kaggle layout)") else "cifar10"


def only_classes(data, names):
    """``data`` with the images of the classes ``names`` only, labelled by their place in ``names``."""
    unknown = [n for n in names if n not in data.class_names]
    if unknown:
        raise UserError(f"data.classes: no class {unknown[0]!r}{did_you_mean(unknown[0], data.class_names)}; "
                        f"the classes are {', '.join(data.class_names)}")
    relabel = np.full(len(data.class_names), -1, np.int32)
    relabel[[data.class_names.index(n) for n in names]] = np.arange(len(names))

    def keep(x, y):
        mask = relabel[y] >= 0
        return x[mask], relabel[y[mask]]

    return Cifar10(*keep(data.x_train, data.y_train), *keep(data.x_test, data.y_test), source=data.source,
                   class_names=list(names), is_sample=data.is_sample)


def prepare(data_cfg, seed, whitening=None):
    """Load CIFAR-10 as the config's ``data`` section asks: subset, validation split, statistics.
    ``normalize: zca`` fits the whitening on the training images unless ``whitening`` (a
    resumed run's own) is given."""
    data = load_cifar10(data_cfg["path"], data_cfg["source"])
    if data_cfg["classes"]:
        data = only_classes(data, data_cfg["classes"])
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    if not len(x_test) and (data_cfg["validation"] == "test" or data_cfg["test_subset"]):
        key = "data.validation" if data_cfg["validation"] == "test" else "data.test_subset"
        raise UserError(f"{key}: {data.source} has no test labels; validate on a held-out fraction of the "
                        f"training images (data.validation: 0.1) and leave data.test_subset unset")
    if data_cfg["subset"]:
        idx = stratified_indices(y_train, data_cfg["subset"], seed)
        x_train, y_train = x_train[idx], y_train[idx]
    if data_cfg["test_subset"]:
        idx = stratified_indices(y_test, data_cfg["test_subset"], seed)
        x_test, y_test = x_test[idx], y_test[idx]
    if data_cfg["validation"] == "test":
        x_val, y_val, validation = x_test, y_test, "the test set"
    else:
        keep, held = stratified_split(y_train, data_cfg["validation"], seed)
        x_val, y_val = x_train[held], y_train[held]
        x_train, y_train = x_train[keep], y_train[keep]
        validation = validation_name(data_cfg["validation"])
    if data_cfg["normalize"] in RAW_SCALING:
        mean, std = RAW_SCALING[data_cfg["normalize"]]
    else:  # zca keeps the channel statistics too: flip-and-crop pads with the mean colour
        mean, std = channel_stats(x_train)
    if data_cfg["normalize"] == "zca" and whitening is None:
        whitening = zca.fit(x_train, data_cfg["zca_bias"])
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, validation, mean, std,
                  data.source, data.class_names, data.is_sample,
                  whitening if data_cfg["normalize"] == "zca" else None)
