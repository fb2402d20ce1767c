"""train.py end to end on small real subsets: the run folder, the monitor, resume, devices, backends."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from suite.commands import train
from conftest import REPO, train_run
from suite.analysis import model_files
from suite.config import load_config
from suite.training.schedules import build_schedule, learning_rate_at

PNG = b"\x89PNG\r\n\x1a\n"


def history(run_dir):
    return json.loads((run_dir / "history.json").read_text())


def test_run_folder_holds_everything(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    assert {"config.yaml", "model.txt", "history.json", "curves.png", "metrics.json",
            "best.weights.h5", "best.json", "state.h5", "state.json",
            "final.weights.h5", "final.json"} <= names
    assert (tiny_run / "curves.png").read_bytes()[:8] == PNG
    assert "conv2d" in (tiny_run / "model.txt").read_text()
    h = history(tiny_run)
    assert h["epoch"] == [1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_time", "train_images_per_sec"):
        assert len(h[key]) == 2 and all(isinstance(v, float) for v in h[key]), key
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert m["status"] == "completed" and m["epochs_run"] == 2 and m["train_images"] == 300
    assert 0 <= m["final_test_accuracy"] <= 1 and m["final_test_loss"] > 0 and m["train_images_per_sec"] > 0
    assert m["best_epoch"] in (1, 2) and m["best_value"] == min(h["val_loss"])
    best = json.loads((tiny_run / "best.json").read_text())
    assert best["model"]["name"] == "shallownet" and best["checkpoint"]["epoch"] == m["best_epoch"]
    assert best["preprocessing"]["std"] == [255.0, 255.0, 255.0]
    # the resolved config reproduces the run: same settings when loaded again
    assert load_config(tiny_run / "config.yaml")["data"]["subset"] == 30


def test_learning_rate_of_every_epoch_is_in_the_history(tmp_path, cifar_dir):
    code, run = train_run(tmp_path, "model.name=shallownet", "model.params={}", "data.source=cifar10",
                          "data.subset=10", "data.test_subset=5", "training.epochs=4", "training.batch_size=20",
                          "schedule.name=step", "schedule.factor=0.5", "schedule.every=2")
    assert code == 0
    # step decay: 0.01 * 0.5 ** floor((1 + epoch) / 2) for epochs 0..3
    assert history(run)["learning_rate"] == pytest.approx([0.01, 0.005, 0.005, 0.0025])


def test_missing_graphviz_warns_once_and_training_goes_on(tmp_path, capsys, monkeypatch, cifar_dir):
    monkeypatch.setattr(model_files.shutil, "which", lambda name: None)
    code, run = train_run(tmp_path, "model.name=shallownet", "model.params={}", "data.source=cifar10",
                          "data.subset=5", "data.test_subset=2", "training.epochs=1")
    assert code == 0 and (run / "metrics.json").exists() and not (run / "model.png").exists()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "diagram" in line]
    assert len(warnings) == 1 and "install Graphviz" in warnings[0]


def test_the_diagram_is_renamed_into_place_only_when_drawn(tmp_path, capsys, monkeypatch):
    # Graphviz is not installed here, so plot_model is a stand-in that writes what it is asked to
    asked = []

    def plot_model(net, to_file, **kwargs):
        asked.append(to_file)
        Path(to_file).write_bytes(b"<svg/>" if to_file.endswith(".svg") else b"")

    monkeypatch.setattr(model_files.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(model_files.keras.utils, "plot_model", plot_model)
    model_files.write_diagram(None, tmp_path / "net.svg")
    assert asked[0].endswith(".svg") and (tmp_path / "net.svg").read_bytes() == b"<svg/>"
    model_files.write_diagram(None, tmp_path / "model.png")  # writes nothing: no empty model.png
    assert not (tmp_path / "model.png").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["net.svg"]
    assert capsys.readouterr().err.strip() == "warning: no model diagram (RuntimeError: plot_model wrote nothing)"


def test_resumed_run_equals_uninterrupted_run(tmp_path, cifar_dir):
    """2 epochs, stop, resume a third == 3 epochs straight: history, learning rates and weights."""
    sets = ["data.source=cifar10", "data.subset=20", "data.test_subset=5", "training.epochs=3",
            "training.batch_size=50", "training.deterministic=true", "augment.crop=4",
            "schedule.name=cosine", "schedule.warmup_epochs=1"]  # minivggnet: BN and dropout states too
    code, straight = train_run(tmp_path / "a", *sets)
    assert code == 0
    code = train.main(["--config", str(REPO / "configs/quickstart.yaml"), "--stop-after", "2",
                       "--set", f"output.dir={tmp_path / 'c'}"] + [a for s in sets + ["training.verbose=0"]
                                                                   for a in ("--set", s)])
    assert code == 0
    chunked = next((tmp_path / "c").iterdir())
    assert history(chunked)["epoch"] == [1, 2]
    assert json.loads((chunked / "metrics.json").read_text())["status"] == "interrupted"
    assert train.main(["--resume", str(chunked)]) == 0
    a, b = history(straight), history(chunked)
    assert a["epoch"] == b["epoch"] == [1, 2, 3]
    assert a["learning_rate"] == b["learning_rate"]
    for key in ("loss", "val_loss", "accuracy"):
        assert a[key] == pytest.approx(b[key], rel=1e-5), key
    with h5py.File(straight / "final.weights.h5") as fa, h5py.File(chunked / "final.weights.h5") as fb:
        names = []
        fa.visit(lambda n: names.append(n) if isinstance(fa[n], h5py.Dataset) else None)
        assert names
        for n in names:
            np.testing.assert_array_equal(fa[n][()], fb[n][()], err_msg=n)
    cfg = load_config(chunked / "config.yaml")
    sched = build_schedule(cfg, steps_per_epoch=4)
    assert b["learning_rate"] == pytest.approx([learning_rate_at(sched, e * 4) for e in range(3)])


def optimizer_steps(run_dir):
    """The optimizer's iteration count in a run's training state."""
    from suite.callbacks.checkpoints import _read_group
    with h5py.File(run_dir / "state.h5") as f:
        paths = json.loads(f["optimizer"].attrs["paths"])
        return int(_read_group(f["optimizer"])[next(i for i, p in enumerate(paths) if p.endswith("iteration"))])


def test_several_steps_per_execution_stop_at_each_epoch_end(tmp_path, cifar_dir):
    """5 batches an epoch in executions of 2 steps (2, 2, 1): 2 epochs are 10 optimizer
    steps, not 12, and the run equals one with a step per execution."""
    sets = ["model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=25",
            "data.test_subset=5", "training.epochs=2", "training.batch_size=50", "training.deterministic=true"]
    code, multi = train_run(tmp_path / "a", *sets, "runtime.steps_per_execution=2")
    assert code == 0
    code, single = train_run(tmp_path / "b", *sets, "runtime.steps_per_execution=1")
    assert code == 0
    assert optimizer_steps(multi) == optimizer_steps(single) == 10
    a, b = history(multi), history(single)
    for key in ("loss", "val_loss", "accuracy"):
        assert a[key] == pytest.approx(b[key], rel=1e-5), key


def run_cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_mirrored_strategy_over_two_logical_cpus(tmp_path, cifar_dir):
    proc = run_cli("--config", "configs/quickstart.yaml", "--set", "runtime.cpu_devices=2",
                   "--set", "data.source=cifar10", "--set", "data.subset=10", "--set", "data.test_subset=5",
                   "--set", "training.epochs=2", "--set", "training.verbose=2", "--set", f"output.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MirroredStrategy over 2 devices" in proc.stdout
    assert "precision   float32 (auto; mixed bfloat16 stays off on the CPU: " in proc.stdout  # the header says why
    run = next(tmp_path.iterdir())
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2


def test_trains_under_the_jax_backend(tmp_path, cifar_dir):
    proc = run_cli("--config", "configs/quickstart.yaml", "--set", "data.source=cifar10", "--set", "data.subset=10",
                   "--set", "data.test_subset=5", "--set", "training.epochs=1", "--set", "augment.crop=4",
                   "--set", "augment.translate=0.1", "--set", "data.normalize=zca", "--set", f"output.dir={tmp_path}",
                   env={"KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "backend     jax" in proc.stdout and "XLA on" in proc.stdout
    run = next(tmp_path.iterdir())
    assert json.loads((run / "metrics.json").read_text())["backend"] == "jax"
    assert json.loads((run / "final.json").read_text())["preprocessing"]["normalize"] == "zca"
    assert (run / "whitening.npz").is_file()


def test_full_data_set_with_set_to_shorten_it(tmp_path, cifar_dir):
    code, run = train_run(tmp_path, "model.name=shallownet", "model.params={}", "data.source=cifar10",
                          "training.epochs=1", "training.batch_size=500")
    assert code == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["train_images"] == 50000 and m["test_images"] == 10000 and not m["is_sample"]
