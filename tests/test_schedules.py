"""Every learning-rate schedule against values computed by hand."""

import copy
import math

import pytest

from suite.config import DEFAULTS
from suite.training.schedules import build_schedule, learning_rate_at

pytestmark = pytest.mark.fast

STEPS = 10  # steps per epoch in every case below


def schedule(name, lr, epochs=10, **params):
    cfg = copy.deepcopy(DEFAULTS)
    cfg["schedule"].update(name=name, **params)
    cfg["optimizer"]["lr"] = lr
    cfg["training"]["epochs"] = epochs
    return build_schedule(cfg, STEPS)


CASES = {
    "constant": (schedule("constant", 0.1), [(0, 0.1), (57, 0.1), (99, 0.1)]),
    # lr0 * factor ** floor((1 + epoch) / every): epochs 0-3 -> 0.01, 4-8 -> 0.005, 9-13 -> 0.0025
    "step": (schedule("step", 0.01, factor=0.5, every=5),
             [(0, 0.01), (37, 0.01), (40, 0.005), (89, 0.005), (90, 0.0025)]),
    "step 0.25": (schedule("step", 0.01, factor=0.25, every=5), [(39, 0.01), (40, 0.0025), (95, 0.000625)]),
    # Keras 2's decay=0.01/40: lr0 / (1 + decay * t)
    "time": (schedule("time", 0.01, decay=0.00025), [(0, 0.01), (1000, 0.008), (4000, 0.005)]),
    # (lr0 - end) * (1 - t/T) ** power + end, T = 10 epochs * 10 steps
    "linear": (schedule("polynomial", 0.1, power=1.0, end_lr=0.0), [(0, 0.1), (50, 0.05), (75, 0.025), (100, 0.0)]),
    "quadratic": (schedule("polynomial", 0.1, power=2.0, end_lr=0.01), [(50, 0.09 * 0.25 + 0.01), (100, 0.01)]),
    # lr0 * rate ** (t / (every * steps))
    "exponential": (schedule("exponential", 0.1, rate=0.5, every=2),
                    [(0, 0.1), (10, 0.1 * math.sqrt(0.5)), (20, 0.05), (40, 0.025)]),
    "staircase": (schedule("exponential", 0.1, rate=0.5, every=2, staircase=True), [(19, 0.1), (20, 0.05), (39, 0.05)]),
    # x factor at the first step of each milestone epoch
    "piecewise": (schedule("piecewise", 0.1, milestones=[3, 6], factor=0.1),
                  [(0, 0.1), (29, 0.1), (30, 0.01), (59, 0.01), (60, 0.001), (99, 0.001)]),
    # linear 0 -> lr0 over 2 epochs, then cosine from lr0 to min_lr over the 8 left
    "cosine warmup": (schedule("cosine", 0.1, warmup_epochs=2, min_lr=0.001),
                      [(0, 0.0), (10, 0.05), (20, 0.1), (60, 0.1 * (0.99 * 0.5 + 0.01)), (100, 0.001)]),
    "cosine": (schedule("cosine", 0.1), [(0, 0.1), (50, 0.05), (100, 0.0)]),
    # x 0.2 -> 1 over int(100 * 0.25) = 25 steps, then 1 -> 0.1 over the 75 left
    "linear warmup": (schedule("linear_warmup", 2.0, warmup=0.25, start=0.2, end=0.1),
                      [(0, 0.4), (10, 2.0 * (0.2 + 0.8 * 10 / 25)), (25, 2.0), (55, 2.0 * (1 - 0.9 * 30 / 75)),
                       (100, 0.2)]),
}


@pytest.mark.parametrize("case", CASES)
def test_schedule_values(case):
    sched, expected = CASES[case]
    for step, lr in expected:
        assert learning_rate_at(sched, step) == pytest.approx(lr, rel=1e-5, abs=1e-9), f"{case} at step {step}"


def test_step_decay_matches_the_study_projects_formula():
    sched = schedule("step", 0.01, factor=0.5, every=5)
    for epoch in range(10):
        assert learning_rate_at(sched, epoch * STEPS) == pytest.approx(0.01 * 0.5 ** math.floor((1 + epoch) / 5))
