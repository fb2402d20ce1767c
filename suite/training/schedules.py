"""Learning-rate schedules, picked by name in the config's ``schedule`` section.

Each schedule is a function registered in ``SCHEDULES``: it gets the initial learning
rate, the steps per epoch and the number of epochs, and its keyword-only parameters are
the ``schedule`` keys it takes (their defaults and rules included; see
``suite.core.registry``). It returns a float (a constant rate) or a
``keras.optimizers.schedules.LearningRateSchedule`` driven by the optimizer's
iteration counter. The counter is part of the saved training state, so a resumed run
continues its schedule exactly where it stopped. Epoch-based parameters (``every``,
``milestones``, ``warmup_epochs``) are turned into iterations with the steps per epoch.
Keras' own schedules are used wherever one fits; the formulas are in docs/training.md.
"""

import keras
from keras import ops
from keras.optimizers import schedules

from suite.core import rules
from suite.core.registry import Registry

SCHEDULES = Registry("schedule")


@keras.saving.register_keras_serializable(package="suite")
class StepDecay(schedules.LearningRateSchedule):
    """The study project's step decay: ``lr0 * factor ** floor((1 + epoch) / every)``.

    Note the ``1 +``: with ``every=5`` the first drop comes after 4 epochs, as in the
    PyImageSearch ``step_decay`` function this reproduces.
    """

    def __init__(self, initial_learning_rate, factor, every, steps_per_epoch):
        self.initial_learning_rate = float(initial_learning_rate)
        self.factor = float(factor)
        self.every = int(every)
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        epoch = ops.floor(ops.cast(step, "float32") / self.steps_per_epoch)
        drops = ops.floor((1.0 + epoch) / self.every)
        return self.initial_learning_rate * ops.power(self.factor, drops)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "factor": self.factor,
                "every": self.every, "steps_per_epoch": self.steps_per_epoch}


@SCHEDULES.register
def constant(lr, steps_per_epoch, epochs):
    """lr0 throughout."""
    return lr


@SCHEDULES.register
def step(lr, steps_per_epoch, epochs, *, factor: rules.FRACTION = 0.5, every: rules.count = 5):
    """lr0 * factor ** floor((1 + e) / every), the study project's step decay."""
    return StepDecay(lr, factor, every, steps_per_epoch)


@SCHEDULES.register
def time(lr, steps_per_epoch, epochs, *, decay: rules.NON_NEGATIVE = 0.0):
    """lr0 / (1 + decay * t): Keras 2's optimizer ``decay``, which Keras 3 dropped."""
    return schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay)


@SCHEDULES.register
def polynomial(lr, steps_per_epoch, epochs, *, power: rules.POSITIVE = 1.0, end_lr: rules.NON_NEGATIVE = 0.0):
    """(lr0 - end_lr) * (1 - t / T) ** power + end_lr over the whole run (linear when power is 1)."""
    return schedules.PolynomialDecay(lr, decay_steps=epochs * steps_per_epoch, end_learning_rate=end_lr, power=power)


@SCHEDULES.register
def exponential(lr, steps_per_epoch, epochs, *, rate: rules.FRACTION = 0.96, every: rules.count = 5,
                staircase: rules.FLAG = False):
    """lr0 * rate ** (t / (every * steps per epoch)), floored with ``staircase``."""
    return schedules.ExponentialDecay(lr, decay_steps=every * steps_per_epoch, decay_rate=rate, staircase=staircase)


def _milestones_before_end(params, cfg):
    milestones, epochs = params["milestones"], cfg["training"]["epochs"]
    if milestones and milestones[-1] >= epochs:
        return "milestones", f"{milestones[-1]} is not before the last epoch ({epochs})"
    return None


@SCHEDULES.register(check=_milestones_before_end)
def piecewise(lr, steps_per_epoch, epochs, *, milestones: rules.MILESTONES = (), factor: rules.FRACTION = 0.5):
    """lr0 * factor ** (number of milestones <= e), the ResNet paper's."""
    # Keras switches value *after* a boundary step; "- 1" makes epoch m's first step use the new value.
    boundaries = [m * steps_per_epoch - 1 for m in milestones]
    values = [lr * factor ** i for i in range(len(boundaries) + 1)]
    return schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else lr


def _warmup_before_end(params, cfg):
    epochs = cfg["training"]["epochs"]
    return ("warmup_epochs", f"must be < training.epochs ({epochs})") if params["warmup_epochs"] >= epochs else None


@SCHEDULES.register(check=_warmup_before_end)
def cosine(lr, steps_per_epoch, epochs, *, warmup_epochs: rules.NON_NEGATIVE = 0.0, min_lr: rules.NON_NEGATIVE = 0.0):
    """Linear warmup from 0 over ``warmup_epochs``, then cosine decay to ``min_lr``."""
    total, warmup = epochs * steps_per_epoch, round(warmup_epochs * steps_per_epoch)
    alpha = min_lr / lr
    if warmup == 0:
        return schedules.CosineDecay(lr, decay_steps=total, alpha=alpha)
    return schedules.CosineDecay(0.0, decay_steps=total - warmup, alpha=alpha, warmup_target=lr, warmup_steps=warmup)


def build_schedule(cfg, steps_per_epoch):
    """The learning rate for the optimizer: a float for ``constant``, else a schedule."""
    s = cfg["schedule"]
    return SCHEDULES.call(s["name"], (cfg["optimizer"]["lr"], steps_per_epoch, cfg["training"]["epochs"]), s)


def learning_rate_at(schedule, step):
    """The learning rate (a Python float) that ``schedule`` gives at iteration ``step``."""
    if not isinstance(schedule, schedules.LearningRateSchedule):
        return float(schedule)
    return float(ops.convert_to_numpy(schedule(step)))


@keras.saving.register_keras_serializable(package="suite")
class LinearWarmupDecay(schedules.LearningRateSchedule):
    """Linear from ``start * lr0`` to ``lr0`` over the first ``warmup`` fraction of the
    ``total`` steps, then linear to ``end * lr0`` at the last: airbench94's ``get_lr``
    (Jordan 2024, ``legacy/airbench94.py``: start 0.2, warmup 0.23, end 0.07)."""

    def __init__(self, initial_learning_rate, total, warmup, start, end):
        self.initial_learning_rate, self.total = float(initial_learning_rate), int(total)
        self.warmup, self.start, self.end = float(warmup), float(start), float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup_steps = float(int(self.total * self.warmup))
        rising = self.start + (1.0 - self.start) * step / max(warmup_steps, 1.0)
        falling = 1.0 + (self.end - 1.0) * (step - warmup_steps) / max(self.total - warmup_steps, 1.0)
        return self.initial_learning_rate * ops.where(step < warmup_steps, rising, falling)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "total": self.total, "warmup": self.warmup,
                "start": self.start, "end": self.end}


@SCHEDULES.register
def linear_warmup(lr, steps_per_epoch, epochs, *, warmup: rules.UNIT = 0.23, start: rules.NON_NEGATIVE = 0.2,
                  end: rules.NON_NEGATIVE = 0.07):
    """lr0 * (start -> 1) linearly over the first ``warmup`` of the run, then (1 -> end): airbench94's."""
    return LinearWarmupDecay(lr, epochs * steps_per_epoch, warmup, start, end)
