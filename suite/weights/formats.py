"""Weights files: tell the two HDF5 layouts apart by their contents, check every layer
against the model before any weight is assigned, and load them with Keras' own readers.

* **Keras 3** ``x.weights.h5`` (``model.save_weights``; what the suite writes): a
  ``layers/<snake_case class name>[_N]/vars/<i>`` dataset per variable. ``check_keras3``
  compares every variable's shape first (Keras assigns layer by layer and stops at the
  first mismatch with a multi-line message), so a file of another architecture fails
  with one line that names the layer and both shapes; then Keras' ``load_weights``.
* **Keras 2** HDF5 (``model.save_weights("x.h5")`` in Keras 2, or the ``model_weights``
  group of a whole-model ``.h5``), such as the study project's
  ``all_cnn_weights_0.9088_0.4994.hdf5``: the attribute ``layer_names`` lists every
  layer in order, each layer's group lists its ``weight_names``. Keras 3 reads these
  with ``keras.src.legacy.saving.legacy_h5_format.load_weights_from_hdf5_group``, by
  the order of the layers that have weights; ``load_legacy`` adds what it lacks: the
  count and every shape checked before any is assigned, and, as Keras 2 did, the
  spatial flip of convolution kernels saved under the Theano backend (root attribute
  ``backend``). Files written by Keras 1 are not converted.

Keras picks its reader by the file name; here the format is told by the contents
(``detect_format``), so a Keras 2 file named ``.weights.h5`` or a Keras 3 file named
``.h5`` loads too. Problems raise ``UserError`` with one line that names the file, the
layer (index and name) and the shapes.
"""

import os
import tempfile
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np
from keras.src.legacy.saving.legacy_h5_format import load_attributes_from_hdf5_group, load_weights_from_hdf5_group
from keras.src.utils.naming import to_snake_case as _snake_case

from suite.core.errors import UserError

KERAS3 = "keras3"
LEGACY = "keras2"
FORMAT_NAMES = {KERAS3: "Keras 3 .weights.h5", LEGACY: "Keras 2 HDF5 (legacy)"}
CONV_LAYERS = ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose")


# ---------------------------------------------------------------------------- which format

def detect_format(path):
    """``KERAS3`` or ``LEGACY`` for a readable weights file; UserError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file")
    with _open(path) as f:
        if _legacy_root(f) is not None:
            return LEGACY
        if isinstance(f.get("layers"), h5py.Group) or isinstance(f.get("vars"), h5py.Group):
            return KERAS3
        top = ", ".join(list(f.keys())[:6]) or "nothing"
    raise UserError(f"{path}: an HDF5 file, but neither Keras 3 weights (layers/, vars/) nor Keras 2 weights "
                    f"(a layer_names attribute); its top level holds {top}")


def _open(path):
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 weights file (truncated or corrupt: {_h5_reason(e)})") from None


def _h5_reason(e):
    """h5py's message without its 'Unable to synchronously open file' preamble, on one line."""
    text = " ".join(str(e).split())
    if "(" in text and text.endswith(")"):
        text = text[text.index("(") + 1:-1]
    return text


def _legacy_root(f):
    """The group that holds ``layer_names``: the root, or ``model_weights`` of a whole-model file."""
    if _has_attr(f, "layer_names"):
        return f
    group = f.get("model_weights")
    if isinstance(group, h5py.Group) and _has_attr(group, "layer_names"):
        return group
    return None


def _has_attr(group, name):
    return name in group.attrs or f"{name}0" in group.attrs  # Keras 2 chunks long lists: name0, name1, ...


def _shapes(shapes):
    return ", ".join(str(tuple(int(d) for d in s)) for s in shapes) or "none"


# ---------------------------------------------------------------------------- Keras 2 files

def weighted_layers(model):
    """The model's layers that hold weights, in order (what a Keras 2 file lists)."""
    return [layer for layer in model.layers if layer.weights]


def _legacy_order(layer):
    """A layer's variables in the order Keras 2 saved them (Keras' ``_legacy_weights``)."""
    return layer.trainable_weights + layer.non_trainable_weights


def _text_attr(group, name):
    value = group.attrs.get(name)
    return value.decode("utf8") if isinstance(value, bytes) else (None if value is None else str(value))


def _legacy_layers(path, root):
    """``[(name, [shapes])]`` of the layers with weights that the file lists, each listed
    dataset checked to be there."""
    layers = []
    for name in load_attributes_from_hdf5_group(root, "layer_names"):
        if name not in root:
            raise UserError(f"{path}: layer_names lists {name!r} but the file has no group of that name "
                            "(truncated or corrupt)")
        group = root[name]
        shapes = []
        for weight_name in load_attributes_from_hdf5_group(group, "weight_names"):
            if weight_name not in group:
                raise UserError(f"{path}: layer {name!r} lists weight {weight_name!r} but the file has no "
                                "such dataset (truncated or corrupt)")
            shapes.append(group[weight_name].shape)
        if shapes:
            layers.append((name, shapes))
    return layers


def _check_legacy(path, model, in_file, keras_version):
    """Every weighted layer's count and shapes against the model; UserError on the first mismatch."""
    in_model = weighted_layers(model)
    counts = f"file: {len(in_file)} layers with weights, model {model.name!r}: {len(in_model)}"
    old = f"; the file was written by Keras {keras_version}, whose layouts are not converted" \
        if (keras_version or "").startswith("1") else ""
    for i, ((name, got), layer) in enumerate(zip(in_file, in_model), start=1):
        want = [tuple(v.shape) for v in _legacy_order(layer)]
        if [tuple(s) for s in got] != want:
            raise UserError(
                f"{path}: does not fit model {model.name!r}: weighted layer {i} is {name!r} with shapes "
                f"{_shapes(got)} in the file but {layer.name!r} ({type(layer).__name__}) with shapes "
                f"{_shapes(want)} in the model ({counts}){old}")
    if len(in_file) != len(in_model):
        n = min(len(in_file), len(in_model))
        extra = (f"the file's layer {n + 1} is {in_file[n][0]!r}" if len(in_file) > n
                 else f"the model's layer {n + 1} is {in_model[n].name!r} ({type(in_model[n]).__name__})")
        raise UserError(f"{path}: does not fit model {model.name!r}: {counts}; the first {n} match, "
                        f"{extra}{old}")


def load_legacy(model, path):
    """Load a Keras 2 HDF5 weights file into ``model`` by the order of the weighted layers.

    Checks the number of weighted layers and, layer by layer, the number and shape of the
    arrays, before Keras assigns any; on a mismatch raises UserError naming the layer
    (1-based index among the weighted layers, the file's name and the model's) and both
    shapes. Returns a dict describing the file (layers, backend, keras_version,
    theano_kernels_flipped).
    """
    path = Path(path)
    with _open(path) as f:
        root = _legacy_root(f)
        if root is None:
            raise UserError(f"{path}: not a Keras 2 weights file (no layer_names attribute)")
        info = {key: _text_attr(root, key) for key in ("backend", "keras_version")}
        try:
            in_file = _legacy_layers(path, root)
            _check_legacy(path, model, in_file, info["keras_version"])
            load_weights_from_hdf5_group(root, model)
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise UserError(f"{path}: unreadable Keras 2 weights (truncated or corrupt: {_h5_reason(e)})") from None
    flip = (info["backend"] or "") == "theano"
    if flip:
        for layer in weighted_layers(model):
            if type(layer).__name__ in CONV_LAYERS:
                # Keras 2's conv_utils.convert_kernel: Theano convolves, TensorFlow correlates.
                kernel = keras.ops.convert_to_numpy(layer.kernel)
                layer.kernel.assign(np.ascontiguousarray(kernel[(slice(None, None, -1),) * (kernel.ndim - 2)]))
    return {"layers": len(in_file), "backend": info["backend"], "keras_version": info["keras_version"],
            "theano_kernels_flipped": flip}


# ---------------------------------------------------------------------------- Keras 3 files

def _own_variables(layer):
    own = getattr(layer, "_trainable_variables", None)
    if own is None:
        return list(layer.weights)
    return list(own) + list(getattr(layer, "_non_trainable_variables", []))


def _model_entries(model, prefix="layers"):
    """``[(file group, layer, [shapes])]`` for every layer with variables of its own, in the
    order and under the group names Keras 3's ``save_weights`` uses (nested models recursed)."""
    entries, used = [], {}
    for layer in model.layers:
        key = _snake_case(type(layer).__name__)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        group = f"{prefix}/{key}"
        if hasattr(layer, "layers") and type(layer).__name__ in ("Functional", "Sequential", "Model"):
            entries.extend(_model_entries(layer, f"{group}/layers"))
        own = _own_variables(layer)
        if own:
            entries.append((group, layer, [tuple(v.shape) for v in own]))
    return entries


def _file_entries(f):
    """``{group: [shapes]}`` for every ``.../vars`` group of a Keras 3 file that holds arrays."""
    found = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.endswith("vars") and len(obj):
            keys = sorted(obj.keys(), key=lambda k: int(k) if k.isdigit() else k)
            found[name[: -len("/vars")] if name != "vars" else ""] = [obj[k].shape for k in keys]

    f.visititems(visit)
    return found


def layer_shapes(path, model):
    """``({group: [shapes]}, {group: (layer name, [shapes])})``: the layers with weights of a
    Keras 3 file and of ``model``, under the group names Keras' ``save_weights`` uses."""
    path = Path(path)
    with _open(path) as f:
        try:
            in_file = _file_entries(f)
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"{path}: unreadable Keras 3 weights (truncated or corrupt: {_h5_reason(e)})") from None
    return in_file, {group: (layer.name, shapes) for group, layer, shapes in _model_entries(model)}


def check_keras3(model, path):
    """Compare a Keras 3 ``.weights.h5`` with ``model`` variable by variable, before Keras loads it."""
    path = Path(path)
    in_file, _ = layer_shapes(path, model)
    in_model = _model_entries(model)
    counts = f"file: {len(in_file)} layers with weights, model {model.name!r}: {len(in_model)}"
    for i, (group, layer, want) in enumerate(in_model, start=1):
        where = f"weighted layer {i}, {layer.name!r} ({type(layer).__name__}, {group} in the file)"
        if group not in in_file:
            raise UserError(f"{path}: does not fit model {model.name!r}: {where} with shapes {_shapes(want)} "
                            f"has no weights in the file ({counts})")
        got = in_file[group]
        if list(got) != want:
            raise UserError(f"{path}: does not fit model {model.name!r}: {where}: shapes {_shapes(got)} in the "
                            f"file, {_shapes(want)} in the model ({counts})")
    extra = sorted(set(in_file) - {group for group, _, _ in in_model})
    if extra:
        raise UserError(f"{path}: does not fit model {model.name!r}: the file also holds weights for "
                        f"{', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}, which the model lacks ({counts})")


def load_keras3(model, path, check_first=True):
    """``model.load_weights(path)`` for a Keras 3 file, with Keras' errors turned into one line."""
    path = Path(path)
    if check_first:
        check_keras3(model, path)
    link_dir = None
    target = path
    if not path.name.endswith(".weights.h5"):  # Keras picks the reader by the file name
        link_dir = tempfile.mkdtemp(prefix="weights-")
        target = Path(link_dir) / "linked.weights.h5"
        os.symlink(path.resolve(), target)
    try:
        with warnings.catch_warnings():  # Keras warns about every container it skips on the way to an error
            warnings.simplefilter("ignore")
            model.load_weights(str(target))
    except Exception as e:  # Keras raises ValueError, OSError, KeyError... with multi-line messages
        raise UserError(f"{path}: Keras could not load it into model {model.name!r} "
                        f"({type(e).__name__}: {_keras_reason(e)})") from None
    finally:
        if link_dir:
            os.remove(target)
            os.rmdir(link_dir)
    return {"layers": len(_model_entries(model))}


def _keras_reason(e):
    """The informative line of a Keras loading error, without the variable's values."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith(("A total of", "List of objects"))),
                  lines[0] if lines else "no message")
    detail = detail.split(" Target variable:")[0].split(" Expected: [")[0]
    return detail if len(detail) <= 300 else detail[:297] + "..."


def load_weights_file(model, path, fmt=None):
    """Load either format into ``model``; returns ``(format, info)``."""
    fmt = fmt or detect_format(path)
    info = load_legacy(model, path) if fmt == LEGACY else load_keras3(model, path)
    return fmt, info
