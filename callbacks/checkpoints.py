"""Checkpoints that survive being killed at any moment.

* ``BestCheckpoint``: the network's weights at its best epoch (``monitor``/``mode``
  as in ``keras.callbacks.ModelCheckpoint``), with a JSON sidecar that says which model
  and preprocessing they need. Only the network is saved, not the scaling and
  augmentation layers in front of it, so the file loads into ``models.create(name)``.
* ``TrainingState``: everything needed to continue: all weights, the optimizer's
  variables (its iteration count drives the learning-rate schedule), the random
  generators' states and the number of completed epochs, in one file.

Keras' ModelCheckpoint and BackupAndRestore write in place, so a kill during a write
leaves a corrupt file; both of these write to a temporary name and rename it.
"""

from pathlib import Path

import h5py
import keras
import numpy as np

from suite.atomic import atomic_path, write_json
from suite.errors import UserError
from suite.sidecar import read_sidecar, sidecar_path

STATE_GROUP = "suite_state"


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


def _seed_variables(model):
    return [v for v in model.variables if "seed_generator_state" in v.path]


class TrainingState(keras.callbacks.Callback):
    def __init__(self, path, describe):
        super().__init__()
        self.path, self.describe = Path(path), describe

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(self.path, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp))
            with h5py.File(tmp, "a") as f:
                group = f.create_group(STATE_GROUP)
                group.attrs["epochs_done"] = epoch + 1
                for i, var in enumerate(_seed_variables(self.model)):
                    group.create_dataset(f"seed_{i}", data=keras.ops.convert_to_numpy(var.value))
        write_json(sidecar_path(self.path), self.describe(epoch + 1))


def restore_state(model, path):
    """Load a TrainingState file into the compiled ``model``; return the epochs it had done."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            group = f[STATE_GROUP]
            epochs_done = int(group.attrs["epochs_done"])
            seeds = [np.asarray(group[f"seed_{i}"]) for i in range(len(group))]
            saved_slots = len(f["optimizer/vars"]) if "optimizer/vars" in f else 0
    except (OSError, KeyError) as e:
        raise UserError(f"{path}: not a readable training state ({type(e).__name__}: {e})") from None
    model.optimizer.build(model.trainable_variables)  # so that its slots exist to be filled
    if saved_slots != len(model.optimizer.variables):  # Keras would only warn and skip them
        raise UserError(f"{path}: does not fit this run's model: it holds {saved_slots} optimizer variables, "
                        f"the run's optimizer has {len(model.optimizer.variables)}")
    try:
        model.load_weights(str(path))
    except Exception as e:
        raise UserError(f"{path}: does not fit this run's model ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    variables = _seed_variables(model)
    if len(variables) != len(seeds):
        raise UserError(f"{path}: holds {len(seeds)} random-generator states, the model has {len(variables)}")
    for var, value in zip(variables, seeds):
        var.assign(value)
    return epochs_done
