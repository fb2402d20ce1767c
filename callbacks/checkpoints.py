"""Checkpoints that survive being killed at any moment.

* ``BestCheckpoint``: the network's weights at its best epoch (``monitor``/``mode``
  as in ``keras.callbacks.ModelCheckpoint``), with a JSON sidecar that says which model
  and preprocessing they need. Only the network is saved, not the scaling and
  augmentation layers in front of it, so the file loads into ``models.create(name)``.
* ``TrainingState``: everything needed to continue: all weights, the optimizer's
  variables (its iteration count drives the learning-rate schedule), the random
  generators' states and the number of completed epochs, in one file (``state.h5``).

Keras' ModelCheckpoint and BackupAndRestore write in place, so a kill during a write
leaves a corrupt file; both of these write to a temporary name and rename it.
"""

from pathlib import Path

import h5py
import keras

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


STATE_FORMAT = "cifar10-suite-training-state/1"


class TrainingState(keras.callbacks.Callback):
    """Every variable of the model (weights, batch-norm statistics, random-generator
    states) and of the optimizer (slots, iteration count, loss scale), by position.

    Written with h5py directly: Keras' ``save_weights`` spends 0.1-0.2 s per call walking
    the model's attributes in Python (ResNet-20, 2-core CPU), which every epoch would pay
    twice; this takes a few milliseconds. Positions are stable because the model is
    rebuilt from the same config; each dataset also records the variable's path.
    """

    def __init__(self, path, describe):
        super().__init__()
        self.path, self.describe = Path(path), describe

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = STATE_FORMAT
            f.attrs["epochs_done"] = epoch + 1
            for group, variables in _state_variables(self.model).items():
                g = f.create_group(group)
                for i, var in enumerate(variables):
                    g.create_dataset(f"{i:05d}", data=keras.ops.convert_to_numpy(var.value)).attrs["path"] = var.path
        write_json(sidecar_path(self.path), self.describe(epoch + 1))


def _state_variables(model):
    return {"model": model.variables, "optimizer": model.optimizer.variables}


def restore_state(model, path):
    """Load a TrainingState file into the compiled ``model``; return the epochs it had done."""
    path = Path(path)
    model.optimizer.build(model.trainable_variables)  # so that its slots exist to be filled
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != STATE_FORMAT:
                raise KeyError(f"no {STATE_FORMAT!r} format mark")
            epochs_done = int(f.attrs["epochs_done"])
            values = []
            for group, variables in _state_variables(model).items():
                saved = f[group]
                if len(saved) != len(variables):
                    raise UserError(f"{path}: does not fit this run's model: it holds {len(saved)} {group} "
                                    f"variables, the run's {group} has {len(variables)}")
                for i, var in enumerate(variables):
                    value = saved[f"{i:05d}"][()]
                    if tuple(value.shape) != tuple(var.shape):
                        raise UserError(f"{path}: does not fit this run's model: {group} variable {i} "
                                        f"({var.path}) has shape {tuple(var.shape)}, the file {tuple(value.shape)}")
                    values.append((var, value))
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"{path}: not a readable training state ({type(e).__name__}: {e})") from None
    for var, value in values:
        var.assign(value)
    return epochs_done
