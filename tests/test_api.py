"""The Python API (``suite.api``, docs/api.md): each command's options are the API's, option by
option; train, evaluate, predict and load work from Python on the shipped sample and give
back what they made; configs come as a path, a shipped name or a dict; mistakes are one
UserError line; every command answers ``--version`` and runs as ``python -m suite.commands.<name>``."""

import argparse
import dataclasses
import importlib
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from PIL import Image

import suite
from suite.api import options as api_options
from suite.core.errors import UserError
from suite.core.paths import SAMPLE
from conftest import REPO

# Each command with the options it cannot run without (beside its subcommand and positionals) and its dataclass.
COMMANDS = {
    "evaluate": (["--pretrained", "x"], api_options.EvaluateOptions),
    "predict": (["--pretrained", "x"], api_options.PredictOptions),
    "export": (["--pretrained", "x", "-o", "out"], api_options.ExportOptions),
    "visualize": (["--pretrained", "x"], api_options.VisualizeOptions),
    "compare": ([], api_options.CompareOptions),
    "results": ([], api_options.ResultsOptions),
    "models": ([], api_options.ModelsOptions),
}


def argument_lists(command, required):
    """One argument list per subcommand of ``command``'s parser (the parser is caught as it
    parses), each with ``x`` for every required positional."""
    caught = []
    original = argparse.ArgumentParser.parse_args

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise SystemExit(0)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", catch), pytest.raises(SystemExit):
        command.parse_args([])
    assert original is argparse.ArgumentParser.parse_args
    subparsers = [a for a in caught[0]._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = {None: caught[0]} if not subparsers else subparsers[0].choices
    lists = []
    for sub, parser in parsers.items():
        positionals = [a for a in parser._actions if not a.option_strings and a.nargs not in ("?", "*")
                       and not isinstance(a, argparse._SubParsersAction)]
        lists.append([*([sub] if sub else []), *(["x"] * len(positionals)), *required])
    return lists


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_a_command_is_an_api_option_with_the_same_default(name):
    """A new command-line option (or subcommand) must join ``suite.api.options``, one field with
    the option's name and default, so that the command and the API never take different things."""
    required, kind = COMMANDS[name]
    command = importlib.import_module(f"suite.commands.{name}")
    defaults = api_options.defaults(kind)
    seen = set()
    for argv in argument_lists(command, required):
        parsed = vars(command.parse_args(argv))
        given = {k for k, v in parsed.items() if v == "x" or (isinstance(v, list) and v == ["x"])}
        given |= {"pretrained", "out", "command"}
        assert set(parsed) <= set(defaults), f"{name}: options the API lacks: {set(parsed) - set(defaults)}"
        assert {k: v for k, v in parsed.items() if k not in given} == \
            {k: defaults[k] for k in parsed if k not in given}, f"{name} {argv}: a default differs"
        seen |= set(parsed)
    assert seen == set(defaults), f"{name}: API options no command takes: {set(defaults) - seen}"


@pytest.mark.fast
def test_train_options_are_the_api_keywords():
    import inspect

    from suite.commands import train

    parsed = vars(train.parse_args(["--config", "c"]))
    keywords = inspect.signature(suite.train).parameters
    assert set(parsed) - {"settings"} <= set(keywords)
    assert all(keywords[k].default in (parsed[k], ()) for k in parsed if k not in ("settings", "config"))


@pytest.mark.fast
def test_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match=r"evaluate: no option 'limt' \(did you mean 'limit'\?\)"):
        suite.evaluate("allcnn_c", limt=10)
    with pytest.raises(UserError, match=r"quickstartt: no such config file, and no shipped config of that name "
                                        r"\(did you mean 'quickstart'\?\)"):
        suite.train("quickstartt")
    with pytest.raises(UserError, match="give a config to train, or resume="):
        suite.train()
    with pytest.raises(UserError, match=r"config: training.batch_sise: unknown key \(did you mean 'batch_size'\?\)"):
        suite.train({"model": {"name": "shallownet"}, "training": {"batch_sise": 2}}, dry_run=True)
    with pytest.raises(UserError, match="give the weights once"):
        suite.load("allcnn_c", pretrained="allcnn_c")


def test_train_evaluate_predict_and_load_from_python(tmp_path, capsys):
    """A dict config on the shipped sample, 2 epochs: the Run, then its weights evaluated,
    predicted and loaded; training prints one line per epoch where output is no terminal."""
    config = {"name": "api", "model": {"name": "shallownet"}, "data": {"source": "sample", "subset": 20},
              "training": {"epochs": 2, "batch_size": 50}, "output": {"dir": str(tmp_path / "runs")}}
    run = suite.train(config, overrides={"data.test_subset": 10})
    printed = capsys.readouterr().out
    assert "\r" not in printed and len([line for line in printed.splitlines() if " - loss: " in line]) == 2
    assert run.exit_code == 0 and run.status == "completed" and run.folder.parent == tmp_path / "runs"
    assert run.history["epoch"] == [1, 2] and run.config["data"]["test_subset"] == 10
    assert run.metrics["test_images"] == 100 and 0 <= run.metrics["final_test_accuracy"] <= 1
    sample = np.load(SAMPLE)
    images = sample["x_test"][:4]
    probs = run.model.predict(images, verbose=0)
    assert probs.shape == (4, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)

    report = suite.evaluate(run=run.folder, data="sample", limit=50, out_dir=tmp_path / "reports")
    assert report.exit_code == 0 and report.folder.parent == tmp_path / "reports"
    assert report.metrics["images"] == 50 and (report.folder / "confusion.png") in report.files
    assert report.text.startswith("== evaluate ")

    Image.fromarray(images[0]).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not an image")
    found = suite.predict([tmp_path / "a.png", tmp_path / "b.png"], run.folder, top=2)
    assert found.exit_code == 1 and found.failed == 1 and found.files == [tmp_path / "a.png"]
    assert found.labels == [found.top(2)[0][1][0][0]] and found.probabilities.shape == (1, 10)

    net = suite.load(run.folder)
    assert net.classify(images[0]) == net.class_names[int(probs[0].argmax())]
    np.testing.assert_allclose(net.probabilities(images), probs, atol=1e-5)
    heat = net.gradcam(images[:2])
    assert heat.shape == (2, 32, 32) and heat.min() >= 0 and heat.max() <= 1

    again = suite.api.Run.open(run.folder)
    assert again.metrics == run.metrics and repr(again).startswith("Run(")


def test_a_shipped_config_by_name_from_another_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = suite.train("quickstart", dry_run=True)
    assert run.folder is None and run.exit_code == 0 and run.model.name == "minivggnet_trainer"
    assert "== quickstart ==" in capsys.readouterr().out and not list(tmp_path.iterdir())


# evaluate.py and export.py load TensorFlow for their help texts (batch sizes, formats): seconds, so not fast.
@pytest.mark.parametrize("name", [*(pytest.param(n, marks=pytest.mark.fast) for n in
                                    ("train", "predict", "visualize", "compare", "results", "models")),
                                  "evaluate", "export"])
def test_every_command_runs_with_python_dash_m_and_has_a_version(name, tmp_path):
    proc = subprocess.run([sys.executable, "-m", f"suite.commands.{name}", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("python -m models ", f"{name}.py ")) and " 0.1.0 (cifar10-cnn-suite; " in proc.stdout


def test_python_dash_m_runs_the_command_and_the_shim_runs_it_too(tmp_path):
    """``python -m suite.commands.train`` once exited 0 doing nothing."""
    for argv in ([sys.executable, "-m", "suite.commands.train", "--config", "nope.yaml"],
                 [sys.executable, str(REPO / "train.py"), "--config", "nope.yaml"]):
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and proc.stderr.strip() == "error: nope.yaml: config file not found"


@pytest.mark.fast
def test_the_api_is_reachable_from_suite_and_typed():
    assert set(suite.api.__all__) <= set(dir(suite))
    for name in ("Run", "Sweep", "Report", "Predictions", "Network", "Exported", "Drawn"):
        assert dataclasses.is_dataclass(getattr(suite, name)), name
    assert "Example::" in suite.train.__doc__ and "Example::" in suite.evaluate.__doc__


def test_the_first_import_of_keras_is_quiet_whoever_makes_it(tmp_path):
    """A module with a plain ``import keras`` at its top (``suite.core.quiet``'s finder): none
    of TensorFlow's C++ start-up lines on stderr, and its CPU kernels chosen before it loaded."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    code = ("import suite.data.preprocessing, sys, keras; "
            "print('tensorflow' in sys.modules, keras.__loader__.__class__.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout.split() == ["True", "SourceFileLoader"]
