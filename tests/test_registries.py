"""The registries behind the config's optimizer, schedule and augment sections, the
settings table and the evaluation reports."""

import inspect
import re

import numpy as np
import pytest

from suite.commands import train
from suite.analysis import reports
from suite.core import rules
from suite.config import DEFAULTS, SETTINGS, dump_config, load_config
from suite.core.errors import UserError
from suite.core.registry import Registry
from suite.training.optim import OPTIMIZERS, build_optimizer
from suite.training.schedules import SCHEDULES, build_schedule, learning_rate_at

pytestmark = pytest.mark.fast

VALID = "model: {name: shallownet}\ntraining: {epochs: 4}\n"


def halving(lr, steps_per_epoch, epochs, *, every: rules.count = 2, floor: rules.NON_NEGATIVE = 0.0):
    """A schedule registered by a test: lr0 halved, never below ``floor`` (``every`` is only checked)."""
    return max(lr / 2, floor)


@pytest.fixture
def registered_halving(monkeypatch):
    monkeypatch.setitem(SCHEDULES._entries, "halving", (halving, None))
    return halving


def test_a_registered_schedule_is_a_config_choice_checked_against_its_signature(tmp_path, registered_halving):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(VALID + "schedule: {name: halving, floor: 1}\n")
    cfg = load_config(cfg_file)
    assert cfg["schedule"] == {"name": "halving", "every": 2, "floor": 1.0}  # the default, and an int made a float
    assert learning_rate_at(build_schedule(cfg, 10), 0) == 1.0
    (tmp_path / "resolved.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "resolved.yaml") == cfg
    for text, message in (("{name: halving, every: 0}", "schedule.every: must be >= 1, got 0"),
                          ("{name: halving, floor: -1}", "schedule.floor: must be a number >= 0, got -1"),
                          ("{name: halving, factor: 0.5}", "schedule 'halving' takes no 'factor' (it takes every, floor)"),
                          ("{name: halvng}", "unknown value 'halvng' (did you mean 'halving'?)")):
        cfg_file.write_text(VALID + f"schedule: {text}\n")
        with pytest.raises(UserError, match=re.escape(message)):
            load_config(cfg_file)


def test_defaults_come_from_the_registered_signatures():
    sgd = inspect.signature(OPTIMIZERS.get("sgd")).parameters
    assert DEFAULTS["optimizer"]["name"] == "sgd"
    assert DEFAULTS["optimizer"]["momentum"] == sgd["momentum"].default == 0.9
    assert DEFAULTS["augment"] == {"flip": False, "crop": 0, "crop_fill": "mean", "translate": 0.0}
    assert set(DEFAULTS) == set(SETTINGS)


def test_a_run_folders_resolved_config_of_the_previous_format_still_loads(tmp_path):
    """The config.yaml that train.py wrote before the registries (DEFAULTS order, every key)."""
    old = tmp_path / "config.yaml"
    old.write_text(
        "name: old\nmodel:\n  name: resnet20\n  params: {}\n"
        "data: {source: cifar10, path: null, subset: 10, test_subset: null, validation: test, normalize: standardize}\n"
        "augment: {flip: true, crop: 4, translate: 0.0}\n"
        "optimizer: {name: sgd, lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 0.0001, "
        "weight_decay_mode: auto, clipnorm: null}\n"
        "schedule: {name: piecewise, milestones: [2], factor: 0.1}\n"
        "training: {epochs: 3, batch_size: 128, eval_batch_size: 500, seed: 42, deterministic: false, "
        "label_smoothing: 0.0, verbose: 1}\n"
        "callbacks: {monitor: val_loss, mode: auto, tensorboard: false, early_stopping: null, nan_check_every: 20}\n"
        "runtime: {precision: auto, jit_compile: auto, strategy: auto, memory_growth: true, cpu_devices: 1, "
        "threads: null, steps_per_execution: auto, augment_in: auto}\noutput: {dir: outputs}\n")
    cfg = load_config(old)
    assert cfg["schedule"] == {"name": "piecewise", "milestones": [2], "factor": 0.1}
    assert cfg["optimizer"]["nesterov"] is False and cfg["augment"]["crop"] == 4
    assert build_optimizer(cfg, 0.1).momentum == 0.9


def test_settings_lists_every_key_with_its_default(capsys):
    assert train.main(["--settings"]) == 0
    out = capsys.readouterr().out
    for section, values in DEFAULTS.items():
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            dotted = f"{section}.{key}" if key else section
            assert any(line.split()[0] == dotted for line in out.splitlines()), dotted
    assert "schedule.milestones" in out and "a sorted list of distinct epochs >= 1 (piecewise)" in out


def test_a_registered_report_adds_its_lines_and_metrics(tmp_path, monkeypatch):
    def top2(ev, out):
        hits = float(np.mean([y in np.argsort(-p)[:2] for p, y in zip(ev.probs, ev.y)]))
        return [f"top-2 accuracy {hits:.2f}"], {"top2_accuracy": hits}

    only_loss = Registry("report")
    only_loss.register(reports.loss_and_accuracy)
    only_loss.register(top2)
    monkeypatch.setattr(reports, "REPORTS", only_loss)
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]], np.float32)
    ev = reports.Evaluation(np.zeros((4, 2, 2, 3), np.uint8), np.array([0, 2, 2, 2]), probs, ["a", "b", "c"],
                            "net", False, 100.0, 0.04)
    lines, metrics = reports.run_reports(ev, tmp_path)
    assert metrics["accuracy"] == 0.5 and metrics["top2_accuracy"] == 0.75
    assert lines[-1] == "top-2 accuracy 0.75" and "accuracy 0.5000" in lines[0]
