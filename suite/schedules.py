"""Learning-rate schedules, picked by name in the config's ``schedule`` section.

All of them are ``keras.optimizers.schedules.LearningRateSchedule`` objects driven by
the optimizer's iteration counter. The counter is part of the saved training state, so
a resumed run continues its schedule exactly where it stopped. Epoch-based parameters
(``every``, ``milestones``, ``warmup_epochs``) are turned into iterations with the
number of steps per epoch. Keras' own schedules are used wherever one fits:

=========== ======================================================= =====================
name        learning rate at iteration t (epoch e = t // steps)       built on
=========== ======================================================= =====================
constant    lr0                                                       --
step        lr0 * factor ** floor((1 + e) / every)                    StepDecay (below)
time        lr0 / (1 + decay * t)   (Keras 2's optimizer ``decay``)   InverseTimeDecay
polynomial  (lr0 - end) * (1 - t / T) ** power + end                  PolynomialDecay
exponential lr0 * rate ** (t / (every * steps))  (floor if staircase) ExponentialDecay
piecewise   lr0 * factor ** (number of milestones <= e)               PiecewiseConstantDecay
cosine      linear 0 -> lr0 over the warmup, then cosine to min_lr    CosineDecay
=========== ======================================================= =====================
"""

import keras
from keras import ops
from keras.optimizers import schedules


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


def build_schedule(cfg, steps_per_epoch):
    """The learning rate for the optimizer: a float for ``constant``, else a schedule."""
    s, lr0 = cfg["schedule"], cfg["optimizer"]["lr"]
    total = cfg["training"]["epochs"] * steps_per_epoch
    name = s["name"]
    if name == "constant":
        return lr0
    if name == "step":
        return StepDecay(lr0, s["factor"], s["every"], steps_per_epoch)
    if name == "time":
        return schedules.InverseTimeDecay(lr0, decay_steps=1, decay_rate=s["decay"])
    if name == "polynomial":
        return schedules.PolynomialDecay(lr0, decay_steps=total, end_learning_rate=s["end_lr"], power=s["power"])
    if name == "exponential":
        return schedules.ExponentialDecay(lr0, decay_steps=s["every"] * steps_per_epoch,
                                          decay_rate=s["rate"], staircase=s["staircase"])
    if name == "piecewise":
        # Keras switches value *after* a boundary step; "- 1" makes epoch m's first step use the new value.
        boundaries = [m * steps_per_epoch - 1 for m in s["milestones"]]
        values = [lr0 * s["factor"] ** i for i in range(len(boundaries) + 1)]
        return schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else lr0
    if name == "cosine":
        warmup = round(s["warmup_epochs"] * steps_per_epoch)
        alpha = s["min_lr"] / lr0
        if warmup == 0:
            return schedules.CosineDecay(lr0, decay_steps=total, alpha=alpha)
        return schedules.CosineDecay(0.0, decay_steps=total - warmup, alpha=alpha,
                                     warmup_target=lr0, warmup_steps=warmup)
    raise ValueError(f"unknown schedule {name!r}")  # the config check makes this unreachable


def learning_rate_at(schedule, step):
    """The learning rate (a Python float) that ``schedule`` gives at iteration ``step``."""
    if not isinstance(schedule, schedules.LearningRateSchedule):
        return float(schedule)
    return float(ops.convert_to_numpy(schedule(step)))
