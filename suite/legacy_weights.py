"""Weights files: tell the two HDF5 layouts apart, check them against a model, load them.

* **Keras 3** ``x.weights.h5`` (``model.save_weights``; what the suite writes): a
  ``layers/<snake_case class name>[_N]/vars/<i>`` dataset per variable. Loaded with Keras'
  own ``load_weights`` after ``check_keras3`` has compared every variable's shape, so a
  file of another architecture fails with one line that names the layer and both shapes.
* **Keras 2** HDF5 (``model.save_weights("x.h5")`` in Keras 2, or the ``model_weights``
  group of a whole-model ``.h5``), such as the study project's
  ``all_cnn_weights_0.9088_0.4994.hdf5``: the root attribute ``layer_names`` lists every
  layer in order, each layer's group has the attribute ``weight_names``
  (``b"conv2d_1/kernel:0"``, ...) and the arrays sit at ``<layer>/<weight_name>``.
  ``load_legacy`` loads such a file into a registry model by the order of the layers
  that have weights (weightless layers, such as Dropout or Activation, are skipped on
  both sides), checking the count and every shape first. As Keras 2 did, kernels of
  convolution layers saved under the Theano backend (root attribute ``backend``) are
  flipped spatially; files written by Keras 1 are not converted.

Problems raise ``UserError`` with one line that names the file, the layer (index and
name) and the shapes. Only ``h5py`` and ``numpy`` are imported here; Keras is reached
through the model that is passed in.
"""

import os
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np

from suite.errors import UserError

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
    return name in group.attrs or f"{name}0" in group.attrs


def _read_attr(group, name):
    """A list-of-strings attribute, also in Keras 2's chunked form (``name0``, ``name1``, ...)."""
    if name in group.attrs:
        values = list(np.atleast_1d(group.attrs[name]))
    else:
        values, n = [], 0
        while f"{name}{n}" in group.attrs:
            values.extend(np.atleast_1d(group.attrs[f"{name}{n}"]))
            n += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


# ---------------------------------------------------------------------------- shared checks

def _shapes(shapes):
    return ", ".join(str(tuple(int(d) for d in s)) for s in shapes) or "none"


def weighted_layers(model):
    """The model's layers that hold weights, in order (what a Keras 2 file lists)."""
    return [layer for layer in model.layers if layer.weights]


# ---------------------------------------------------------------------------- Keras 2 files

def read_legacy(path):
    """``(layers, info)``: ``[(name, [(weight_name, array), ...]), ...]`` for every layer
    the file lists (weightless ones with an empty list), and the root attributes."""
    path = Path(path)
    with _open(path) as f:
        root = _legacy_root(f)
        if root is None:
            raise UserError(f"{path}: not a Keras 2 weights file (no layer_names attribute)")
        try:
            info = {key: _read_attr(root, key)[0] if _has_attr(root, key) else None
                    for key in ("backend", "keras_version")}
            layers = []
            for name in _read_attr(root, "layer_names"):
                if name not in root:
                    raise UserError(f"{path}: layer_names lists {name!r} but the file has no group of that name "
                                    "(truncated or corrupt)")
                group = root[name]
                weights = []
                for weight_name in _read_attr(group, "weight_names"):
                    if weight_name not in group:
                        raise UserError(f"{path}: layer {name!r} lists weight {weight_name!r} but the file has no "
                                        "such dataset (truncated or corrupt)")
                    weights.append((weight_name, np.asarray(group[weight_name])))
                layers.append((name, weights))
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise UserError(f"{path}: unreadable Keras 2 weights (truncated or corrupt: {_h5_reason(e)})") from None
    return layers, info


def load_legacy(model, path):
    """Load a Keras 2 HDF5 weights file into ``model`` by the order of the weighted layers.

    Checks the number of weighted layers and, layer by layer, the number and shape of the
    arrays; on a mismatch raises UserError naming the layer (1-based index among the
    weighted layers, the file's name and the model's) and both shapes. Returns a dict
    describing the file (layers, backend, keras_version, theano_kernels_flipped).
    """
    path = Path(path)
    layers, info = read_legacy(path)
    in_file = [(name, weights) for name, weights in layers if weights]
    in_model = weighted_layers(model)
    counts = f"file: {len(in_file)} layers with weights, model {model.name!r}: {len(in_model)}"
    old = f"; the file was written by Keras {info['keras_version']}, whose layouts are not converted" \
        if (info["keras_version"] or "").startswith("1") else ""
    for i, ((name, weights), layer) in enumerate(zip(in_file, in_model), start=1):
        got = [w.shape for _, w in weights]
        want = [tuple(v.shape) for v in layer.weights]
        if got != want:
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
    flip = (info["backend"] or "") == "theano"
    for (name, weights), layer in zip(in_file, in_model):
        arrays = [w for _, w in weights]
        if flip and type(layer).__name__ in CONV_LAYERS:
            # Keras 2's conv_utils.convert_kernel: Theano convolves, TensorFlow correlates.
            arrays[0] = np.ascontiguousarray(arrays[0][(slice(None, None, -1),) * (arrays[0].ndim - 2)])
        layer.set_weights(arrays)
    return {"layers": len(in_file), "backend": info["backend"], "keras_version": info["keras_version"],
            "theano_kernels_flipped": flip}


# ---------------------------------------------------------------------------- Keras 3 files

def _snake_case(name):
    """keras.src.utils.naming.to_snake_case, which names a layer's group in the file."""
    import re
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


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


def check_keras3(model, path):
    """Compare a Keras 3 ``.weights.h5`` with ``model`` variable by variable, before Keras loads it."""
    path = Path(path)
    with _open(path) as f:
        try:
            in_file = _file_entries(f)
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"{path}: unreadable Keras 3 weights (truncated or corrupt: {_h5_reason(e)})") from None
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
