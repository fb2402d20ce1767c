"""Checkpoints that survive being killed at any moment, cheap enough to write every epoch.

* ``BestCheckpoint``: the network's weights at its best epoch (``monitor``/``mode``
  as in ``keras.callbacks.ModelCheckpoint``), with a JSON sidecar that says which model
  and preprocessing they need. Only the network is saved, not the scaling and
  augmentation layers in front of it, so the file loads into ``models.create(name)``.
* ``TrainingState``: everything needed to continue: all weights, the optimizer's
  variables (its iteration count drives the learning-rate schedule), the random
  generators' states and the number of completed epochs, in one file (``state.h5``).

Keras' ModelCheckpoint and BackupAndRestore write in place, so a kill during a write
leaves a corrupt file; both of these write to a temporary name and rename it.

Seconds per save for ResNet-110 on the 2-core CPU (547 network variables; 879 with the
optimizer's), ``python bench/checkpoints.py``: the best checkpoint 0.56 through
``save_weights``, 0.05 with ``WeightsWriter``; the state 0.24 with a dataset per variable,
0.15 with a dataset per dtype (most of it is reading the variables out).
"""

import json
import math
import tempfile
from pathlib import Path

import h5py
import keras
import numpy as np

from suite.atomic import atomic_path, write_json
from suite.errors import UserError
from suite.sidecar import read_sidecar, sidecar_path


def save_weights_atomic(model, path, sidecar=None):
    """``model.save_weights(path)`` and its sidecar JSON, each written then renamed."""
    path = Path(path)
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    if sidecar is not None:
        write_json(sidecar_path(path), sidecar)


def numpy_values(variables):
    return [keras.ops.convert_to_numpy(v.value) for v in variables]


class WeightsWriter:
    """Writes the file that ``net.save_weights`` writes, in a fraction of its time.

    Keras finds a model's variables by walking every attribute of every layer in Python,
    on every call. A run's file layout never changes, so this learns it once: it saves
    the network through Keras with every variable holding its own number (``i + 1``),
    reads back which dataset holds which variable and where in the file its bytes lie
    (h5py stores them uncompressed and in one piece), and puts the values back. A save is
    then a copy of that file's bytes with the current values written over each dataset's.
    The first save checks that h5py reads its file back as the values; if not, or if a
    dataset cannot be told apart (a variable too small to carry its number, a dataset
    that is not a variable), every save goes through Keras.
    """

    def __init__(self, net):
        self.net = net
        self.template = None  # the probe file's bytes
        self.layout = None    # [(index in self.variables(), byte offset of its dataset)]

    def variables(self):
        """What ``save_weights`` saves: the network's variables and, once compiled, its optimizer's."""
        optimizer = getattr(self.net, "optimizer", None)
        return self.net.variables + (optimizer.variables if optimizer is not None else [])

    def save(self, path):
        if self.layout is None:
            self._learn_layout()
        if not self.layout:
            return save_weights_atomic(self.net, path)
        with atomic_path(path, suffix=".weights.h5") as tmp:
            tmp.write_bytes(self._fill(numpy_values(self.variables())))

    def _fill(self, values):
        data = bytearray(self.template)
        for i, offset in self.layout:
            raw = np.ascontiguousarray(values[i]).tobytes()
            data[offset:offset + len(raw)] = raw
        return data

    def _learn_layout(self):
        variables = self.variables()
        values = numpy_values(variables)
        with tempfile.TemporaryDirectory() as folder:
            probe = Path(folder) / "probe.weights.h5"
            try:
                for i, (var, value) in enumerate(zip(variables, values)):
                    var.assign(np.full(value.shape, i + 1).astype(value.dtype))
                self.net.save_weights(str(probe))
            finally:
                for var, value in zip(variables, values):
                    var.assign(value)
            self.template = probe.read_bytes()
            where = _locate_variables(probe, values)
            self.layout = sorted(where.values())
            if self.layout:
                probe.write_bytes(self._fill(values))
                with h5py.File(probe, "r") as f:
                    if not all(np.array_equal(f[name][()], values[i]) for name, (i, _) in where.items()):
                        self.layout = []


def _locate_variables(probe, values):
    """``{dataset name: (variable index, byte offset)}`` from a probe file, or ``{}``."""
    where, seen = {}, set()
    with h5py.File(probe, "r") as f:
        for name in dataset_names(f):
            dataset = f[name]
            data, offset = dataset[()], dataset.id.get_offset()
            marks = np.unique(data)
            i = int(marks[0]) - 1 if marks.size == 1 else -1
            if not 0 <= i < len(values) or offset is None or i in seen \
                    or data.shape != values[i].shape or data.dtype != values[i].dtype:
                return {}
            where[name] = (i, offset)
            seen.add(i)
    return where


def dataset_names(h5file):
    names = []
    h5file.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


class BestCheckpoint(keras.callbacks.Callback):
    def __init__(self, net, path, monitor, mode, describe):
        """``describe(epoch, value)`` returns the sidecar dict for the weights of ``epoch``."""
        super().__init__()
        self.net, self.path, self.monitor, self.mode, self.describe = net, Path(path), monitor, mode, describe
        self.writer = WeightsWriter(net)
        previous = read_sidecar(self.path, missing_ok=True) if self.path.exists() else None
        self.best = previous["checkpoint"]["value"] if previous else None
        self.best_epoch = previous["checkpoint"]["epoch"] if previous else None

    def improved(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor not in logs:
            raise UserError(f"callbacks.monitor: {self.monitor!r} is not among this run's metrics ({', '.join(logs)})")
        value = float(logs[self.monitor])
        if self.improved(value):
            self.best, self.best_epoch = value, epoch + 1
            self.writer.save(self.path)
            write_json(sidecar_path(self.path), self.describe(epoch + 1, value))


STATE_FORMAT = "cifar10-suite-training-state/2"  # /1 had one dataset per variable


class TrainingState(keras.callbacks.Callback):
    """Every variable of the model (weights, batch-norm statistics, random-generator
    states) and of the optimizer (slots, iteration count, loss scale), by position.

    Written with h5py directly, each group's variables concatenated into one dataset per
    dtype, with their shapes and paths beside them: Keras' ``save_weights`` walks the
    model in Python on every call, and HDF5 spends about 0.2 ms on each dataset it
    creates. Positions are stable because the model is rebuilt from the same config.
    """

    def __init__(self, path, describe):
        super().__init__()
        self.path, self.describe = Path(path), describe

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = STATE_FORMAT
            f.attrs["epochs_done"] = epoch + 1
            for group, variables in _state_variables(self.model).items():
                _write_group(f.create_group(group), variables)
        write_json(sidecar_path(self.path), self.describe(epoch + 1))


def _state_variables(model):
    return {"model": model.variables, "optimizer": model.optimizer.variables}


def _write_group(group, variables):
    values = numpy_values(variables)
    dtypes = [str(v.dtype) for v in values]
    group.attrs["shapes"] = json.dumps([list(v.shape) for v in values])
    group.attrs["dtypes"] = json.dumps(dtypes)
    group.attrs["paths"] = json.dumps([v.path for v in variables])
    for dtype in sorted(set(dtypes)):
        group.create_dataset(dtype, data=np.concatenate([v.ravel() for v in values if str(v.dtype) == dtype]))


def _read_group(group):
    """The stored values of one group, in order."""
    shapes, dtypes = json.loads(group.attrs["shapes"]), json.loads(group.attrs["dtypes"])
    flat = {dtype: group[dtype][()] for dtype in set(dtypes)}
    used = dict.fromkeys(flat, 0)
    values = []
    for shape, dtype in zip(shapes, dtypes):
        start, used[dtype] = used[dtype], used[dtype] + math.prod(shape)
        values.append(flat[dtype][start:used[dtype]].reshape(shape))
    if any(used[dtype] != flat[dtype].size for dtype in flat):
        raise ValueError("the stored values do not add up to the stored shapes")
    return values


def restore_state(model, path):
    """Load a TrainingState file into the compiled ``model``; return the epochs it had done."""
    path = Path(path)
    model.optimizer.build(model.trainable_variables)  # so that its slots exist to be filled
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != STATE_FORMAT:
                raise KeyError(f"no {STATE_FORMAT!r} format mark")
            epochs_done = int(f.attrs["epochs_done"])
            assignments = []
            for group, variables in _state_variables(model).items():
                saved = _read_group(f[group])
                if len(saved) != len(variables):
                    raise UserError(f"{path}: does not fit this run's model: it holds {len(saved)} {group} "
                                    f"variables, the run's {group} has {len(variables)}")
                for i, (var, value) in enumerate(zip(variables, saved)):
                    if tuple(value.shape) != tuple(var.shape):
                        raise UserError(f"{path}: does not fit this run's model: {group} variable {i} "
                                        f"({var.path}) has shape {tuple(var.shape)}, the file {tuple(value.shape)}")
                    assignments.append((var, value))
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(f"{path}: not a readable training state ({type(e).__name__}: {e})") from None
    for var, value in assignments:
        var.assign(value)
    return epochs_done
