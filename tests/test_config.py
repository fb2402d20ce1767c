"""Configs: base inheritance, --set overrides, and one clear line for every kind of bad input.

The table of bad inputs runs through train.py's own entry point: each must exit with
status 2, print one line on stderr naming the file (or --set) and the key or line, and
create no run folder.
"""

from pathlib import Path

import pytest
import yaml

from suite.commands import train
from suite.config import dump_config, load_config
from suite.core.errors import UserError

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parent.parent
VALID = "model: {name: shallownet}\ntraining: {epochs: 1}\n"

# (case id, config text, --set items, substrings the error line must contain)
BAD = [
    ("empty file", "", [], ["empty config file"]),
    ("comment only", "# nothing here\n", [], ["empty config file"]),
    ("yaml syntax", "model: {name: shallownet\ntraining: [\n", [], ["YAML syntax error", "bad.yaml:"]),
    ("bad indentation", "model:\n  name: shallownet\n   params: {}\n", [], ["YAML syntax error"]),
    ("top level list", "- model\n- training\n", [], ["top level must be a mapping"]),
    ("list for a mapping", VALID + "optimizer: [sgd, 0.1]\n", [], ["optimizer: must be a mapping"]),
    ("unknown section", VALID + "optimiser: {lr: 0.1}\n", [], ["optimiser: unknown key", "did you mean 'optimizer'"]),
    ("unknown nested key", "model: {name: shallownet}\ntraining: {epochs: 1, bach_size: 64}\n", [],
     ["training.bach_size: unknown key", "did you mean 'batch_size'"]),
    ("misspelled optimizer key", VALID + "optimizer: {momentun: 0.9}\n", [], ["optimizer.momentun", "did you mean 'momentum'"]),
    ("string for int", "model: {name: shallownet}\ntraining: {epochs: ten}\n", [], ["training.epochs: must be an integer"]),
    ("float for int", VALID + "training: {epochs: 1, batch_size: 64.5}\n", [], ["training.batch_size: must be an integer"]),
    ("bool for number", VALID + "optimizer: {lr: true}\n", [], ["optimizer.lr: must be a number > 0"]),
    ("negative lr", VALID + "optimizer: {lr: -0.1}\n", [], ["optimizer.lr: must be a number > 0, got -0.1"]),
    ("zero lr", VALID + "optimizer: {lr: 0}\n", [], ["optimizer.lr: must be a number > 0"]),
    ("zero batch size", "model: {name: shallownet}\ntraining: {epochs: 1, batch_size: 0}\n", [],
     ["training.batch_size: must be >= 1"]),
    ("momentum out of range", VALID + "optimizer: {momentum: 1.5}\n", [], ["optimizer.momentum: must be a number in [0, 1)"]),
    ("missing model", "training: {epochs: 1}\n", [], ["model.name: required"]),
    ("unknown model", "model: {name: minivgg}\ntraining: {epochs: 1}\n", [],
     ["model.name: unknown model 'minivgg'", "did you mean 'minivggnet'"]),
    ("unknown model knob", "model: {name: minivggnet, params: {batchnorm: true}}\ntraining: {epochs: 1}\n", [],
     ["model.params.batchnorm: unknown key", "did you mean 'batch_norm'"]),
    ("wrong knob type", "model: {name: minivggnet, params: {batch_norm: 'yes'}}\ntraining: {epochs: 1}\n", [],
     ["model.params.batch_norm: must be true or false like the default True, got 'yes'"]),
    ("infinite knob", "model: {name: minivggnet, params: {dropout: .inf}}\ntraining: {epochs: 1}\n", [],
     ["model.params.dropout: must be a finite number like the default 0.5, got inf"]),
    ("unknown optimizer", VALID + "optimizer: {name: sgdd}\n", [], ["optimizer.name: unknown value 'sgdd'", "did you mean 'sgd'"]),
    ("optimizer key it doesn't take", VALID + "optimizer: {name: adam, nesterov: true}\n", [],
     ["optimizer.nesterov: adam takes no 'nesterov'"]),
    ("unknown schedule", VALID + "schedule: {name: cosin}\n", [], ["schedule.name: unknown value 'cosin'", "did you mean 'cosine'"]),
    ("schedule parameter it doesn't take", VALID + "schedule: {name: cosine, factor: 0.5}\n", [],
     ["schedule.factor: schedule 'cosine' takes no 'factor'"]),
    ("milestone past the end", VALID + "schedule: {name: piecewise, milestones: [5]}\n", [],
     ["schedule.milestones: 5 is not before the last epoch"]),
    ("unknown augmentation", VALID + "augment: {cutout: 8}\n", [], ["augment.cutout: unknown key"]),
    ("crop out of range", VALID + "augment: {crop: -2}\n", [], ["augment.crop: must be an integer number of pixels"]),
    ("unknown precision", VALID + "runtime: {precision: fp16}\n", [], ["runtime.precision: unknown value 'fp16'"]),
    ("steps per execution", VALID + "runtime: {steps_per_execution: fast}\n", [],
     ["runtime.steps_per_execution: must be auto or an integer >= 1, got 'fast'"]),
    ("unknown monitor", VALID + "callbacks: {monitor: val_acc}\n", [], ["callbacks.monitor", "did you mean 'val_accuracy'"]),
    ("validation fraction", VALID + "data: {validation: 1.5}\n", [], ["data.validation: must be 'test', a fraction in (0, 1) or a count"]),
    ("validation count", VALID + "data: {validation: 0}\n", [], ["data.validation: must be", "got 0"]),
    ("missing base", "base: nothere.yaml\n" + VALID, [], ["base: nothere.yaml not found"]),
    ("base cycle", "base: loop_b.yaml\n" + VALID, [], ["base: forms a cycle"]),
    ("--set unknown key", VALID, ["training.epochz=3"], ["--set: training.epochz: unknown key", "did you mean 'epochs'"]),
    ("--set unparsable value", VALID, ["optimizer.lr=[1,"], ["--set optimizer.lr: cannot parse value"]),
    ("--set without =", VALID, ["optimizer.lr"], ["--set optimizer.lr: expected key.sub=value"]),
    ("--set wrong type", VALID, ["training.epochs=2.5"], ["--set: training.epochs: must be an integer"]),
    ("python object tag", "model: !!python/object/apply:os.system ['echo hacked']\ntraining: {epochs: 1}\n", [],
     ["YAML tag", "is not allowed"]),
    ("python name tag", VALID + "name: !!python/name:os.system\n", [], ["YAML tag", "is not allowed"]),
    ("data path missing", VALID + "data: {path: /nonexistent/cifar}\n", [], ["data.path: /nonexistent/cifar does not exist"]),
    ("data path holds something else", VALID + "data: {path: not_cifar}\n", [], ["data.path", "holds no CIFAR-10 python batches"]),
    ("sample with a path", VALID + "data: {source: sample, path: /tmp}\n", [], ["data.path: the sample has no path"]),
]


@pytest.mark.parametrize("case,text,sets,expected", BAD, ids=[c[0] for c in BAD])
def test_bad_config_gives_one_line_and_exit_2(tmp_path, capsys, case, text, sets, expected):
    (tmp_path / "loop_a.yaml").write_text("base: bad.yaml\n" + VALID)
    (tmp_path / "loop_b.yaml").write_text("base: loop_a.yaml\n" + VALID)
    (tmp_path / "not_cifar").mkdir()
    (tmp_path / "not_cifar" / "notes.txt").write_text("not a data set")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text.replace("not_cifar", str(tmp_path / "not_cifar")))
    out = tmp_path / "runs"
    args = ["--config", str(cfg), "--set", f"output.dir={out}"]
    for s in sets:
        args += ["--set", s]
    assert train.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("error: ")
    assert ("--set" in line) if sets else ("bad.yaml" in line or "loop_" in line), line
    for part in expected:
        assert part in line, line
    assert not out.exists(), "a run folder was created for a bad config"


def test_base_inheritance_and_set_overrides(tmp_path):
    (tmp_path / "parent.yaml").write_text(
        "model: {name: minivggnet, params: {batch_norm: true}}\n"
        "optimizer: {name: sgd, lr: 0.01, momentum: 0.9, nesterov: true}\n"
        "schedule: {name: step, factor: 0.5, every: 5}\ntraining: {epochs: 40, batch_size: 64}\n")
    (tmp_path / "child.yaml").write_text(
        "base: parent.yaml\nschedule: {name: step, factor: 0.25}\ntraining: {epochs: 20}\n")
    cfg = load_config(tmp_path / "child.yaml", ["optimizer.lr=0.05", "augment.flip=true", "schedule.every=4"])
    assert cfg["name"] == "child"
    assert cfg["model"] == {"name": "minivggnet", "params": {"batch_norm": True}, "init": None, "freeze": []}
    assert cfg["schedule"] == {**cfg["schedule"], "name": "step", "factor": 0.25, "every": 4}
    assert cfg["training"]["epochs"] == 20 and cfg["training"]["batch_size"] == 64
    assert cfg["optimizer"]["lr"] == 0.05 and cfg["optimizer"]["nesterov"] is True
    assert cfg["augment"]["flip"] is True


def test_changing_a_schedule_name_replaces_the_parents_parameters(tmp_path):
    (tmp_path / "parent.yaml").write_text(VALID + "schedule: {name: step, factor: 0.5, every: 5}\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nschedule: {name: cosine, warmup_epochs: 0}\n")
    assert load_config(tmp_path / "child.yaml")["schedule"]["name"] == "cosine"


def test_an_error_in_a_base_names_the_base_file(tmp_path):
    (tmp_path / "parent.yaml").write_text(VALID + "optimizer: {lr: -1}\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ntraining: {epochs: 3}\n")
    with pytest.raises(UserError, match=r"parent\.yaml: optimizer\.lr: must be a number > 0"):
        load_config(tmp_path / "child.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_validates_builds_its_model_and_reloads_resolved(tmp_path, path):
    from suite import models

    cfg = load_config(path)
    net = models.create(cfg["model"]["name"], **cfg["model"]["params"])
    assert net.output_shape == (None, 10)
    resolved = tmp_path / "config.yaml"
    resolved.write_text(dump_config(cfg))
    assert load_config(resolved) == cfg
    assert "base" not in yaml.safe_load(resolved.read_text())
