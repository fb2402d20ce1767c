"""Checkpoints that survive being killed at any moment, cheap enough to write every epoch.

* ``BestCheckpoint``: the network's weights at its best epoch (``monitor``/``mode``
  as in ``keras.callbacks.ModelCheckpoint``), with a JSON sidecar that says which model
  and preprocessing they need. Only the network is saved, not the scaling and
  augmentation layers in front of it, so the file loads into ``suite.models.create(name)``.
* ``TrainingState``: everything needed to continue: all weights, the optimizer's
  variables (its iteration count drives the learning-rate schedule), the random
  generators' states and the number of completed epochs, in one file (``state.h5``).

Keras' ModelCheckpoint and BackupAndRestore write in place, so a kill during a write
leaves a corrupt file; both of these write to a temporary name and rename it
(``suite.core.atomic``). ``python bench/checkpoints.py`` times both saves.
"""

import json
import math
from pathlib import Path

import h5py
import keras
import numpy as np

from suite.core.atomic import atomic_path, write_json
from suite.core.errors import UserError
from suite.weights.sidecar import read_sidecar, sidecar_path


def save_weights_atomic(model, path, sidecar=None):
    """``model.save_weights(path)`` and its sidecar JSON, each written then renamed."""
    path = Path(path)
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    if sidecar is not None:
        write_json(sidecar_path(path), sidecar)


def numpy_values(variables):
    return [keras.ops.convert_to_numpy(v.value) for v in variables]


class BestCheckpoint(keras.callbacks.Callback):
    def __init__(self, net, path, monitor, mode, describe):
        """``describe(epoch, value)`` returns the sidecar dict for the weights of ``epoch``."""
        super().__init__()
        self.net, self.path, self.monitor, self.mode, self.describe = net, Path(path), monitor, mode, describe
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
            save_weights_atomic(self.net, self.path, self.describe(epoch + 1, value))


STATE_FORMAT = "cifar10-suite-training-state/2"  # /1 had one dataset per variable


class TrainingState(keras.callbacks.Callback):
    """Every variable of the model (weights, batch-norm statistics, random-generator
    states) and of the optimizer (slots, iteration count, loss scale), by position.

    Written with h5py directly, each group's variables concatenated into one dataset per
    dtype, with their shapes and paths beside them: HDF5's cost per dataset it creates
    made one dataset per variable slower (``python bench/checkpoints.py``). Positions are
    stable because the model is rebuilt from the same config.
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


def epochs_saved(path):
    """The epochs the training state at ``path`` holds; 0 if there is none, or none readable."""
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs["epochs_done"])
    except (OSError, KeyError, ValueError, TypeError):
        return 0


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
