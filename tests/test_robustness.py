"""Bad data, corrupt files, kills, Ctrl-C and NaN: a clear line, nothing lost, always resumable."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from suite.commands import train
from conftest import REPO, train_run

SMALL = ["model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=10",
         "data.test_subset=5", "training.batch_size=20"]


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def linked_copy(cifar_dir, dst, skip=(), replace=None):
    """A CIFAR folder of links to the real batches, without ``skip`` and with ``replace`` files."""
    dst.mkdir()
    for f in cifar_dir.resolve().iterdir():
        if f.name not in skip:
            (dst / f.name).symlink_to(f)
    for name, data in (replace or {}).items():
        (dst / name).unlink()
        (dst / name).write_bytes(data)
    return dst


def bad_npz(path, **override):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8), "y_train": np.repeat(np.arange(10), 2),
              "x_test": rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8), "y_test": np.arange(10)}
    np.savez(path, **{**arrays, **override})
    return path


DATA_ERRORS = [
    ("missing batch", lambda d, c: linked_copy(c, d / "c", skip={"data_batch_3"}), "data_batch_3: missing"),
    ("truncated batch", lambda d, c: linked_copy(c, d / "c", replace={"test_batch": (c / "test_batch").read_bytes()[:500_000]}),
     "test_batch: truncated or not a CIFAR-10 batch"),
    ("garbage batch", lambda d, c: linked_copy(c, d / "c", replace={"data_batch_1": np.random.default_rng(0).bytes(4096)}),
     "data_batch_1: truncated or not a CIFAR-10 batch"),
    ("npz wrong shape", lambda d, c: bad_npz(d / "x.npz", x_train=np.zeros((20, 32, 32), np.uint8)),
     "x_train has shape (20, 32, 32)"),
    ("npz labels out of range", lambda d, c: bad_npz(d / "x.npz", y_train=np.full(20, 12)), "labels must be integers in 0..9"),
    ("npz missing arrays", lambda d, c: np.savez(d / "x.npz", x_train=np.zeros((2, 32, 32, 3), np.uint8)) or d / "x.npz",
     "missing arrays y_train, x_test, y_test"),
    ("corrupt tar.gz", lambda d, c: (d / "c.tar.gz").write_bytes(os.urandom(1000)) and d / "c.tar.gz",
     "not a readable .tar.gz"),
]


def test_a_multi_line_error_is_printed_on_one_line(capsys):
    from suite.core.errors import UserError, run_cli

    def fails(_):
        raise UserError("weights.h5: not an HDF5 file (OSError: unable to open\n  file signature not found)")

    assert run_cli(fails, None) == 2
    assert one_error_line(capsys) == "error: weights.h5: not an HDF5 file (OSError: unable to open file signature not found)"


@pytest.mark.parametrize("case,make,expected", DATA_ERRORS, ids=[c[0] for c in DATA_ERRORS])
def test_bad_data_gives_one_line(tmp_path, capsys, cifar_dir, case, make, expected):
    path = make(tmp_path, cifar_dir)
    code = train.main(["--config", str(REPO / "configs/shallownet.yaml"), "--set", f"data.path={path}",
                       "--set", f"output.dir={tmp_path / 'runs'}", "--set", "training.epochs=1"])
    assert code == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_no_data_reachable_says_how_to_point_at_a_copy(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CIFAR10_PATH", str(tmp_path / "nowhere"))
    assert train.main(["--config", str(REPO / "configs/shallownet.yaml"), "--set", f"output.dir={tmp_path}/runs"]) == 2
    line = one_error_line(capsys)
    assert "CIFAR10_PATH" in line and "does not exist" in line and "point data.path" in line


def snapshot(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.suffix in (".h5", ".json") and p.name != "metrics.json"}


def test_corrupt_or_foreign_state_is_refused_and_left_alone(tmp_path, capsys, cifar_dir):
    code, run = train_run(tmp_path / "a", *SMALL, "training.epochs=2", name="victim")
    assert code == 0
    # a run stopped after epoch 1, so that it can be resumed
    assert train.main(["--config", str(run / "config.yaml"), "--stop-after", "1",
                       "--set", f"output.dir={tmp_path / 'b'}"]) == 0
    stopped = next((tmp_path / "b").iterdir())
    state = stopped / "state.h5"
    whole = state.read_bytes()
    state.write_bytes(whole[: len(whole) // 2])
    before = snapshot(stopped)
    capsys.readouterr()
    assert train.main(["--resume", str(stopped)]) == 2
    line = one_error_line(capsys)
    assert "state.h5" in line and "not a readable training state" in line
    assert snapshot(stopped) == before
    # the state of another model
    code, other = train_run(tmp_path / "c", "model.name=lenet", *SMALL[1:], "training.epochs=1")
    shutil.copy(other / "state.h5", state)
    capsys.readouterr()
    assert train.main(["--resume", str(stopped)]) == 2
    assert "does not fit this run's model" in one_error_line(capsys)


def test_nan_loss_stops_with_a_reason_and_keeps_the_last_good_checkpoint(tmp_path, capsys, cifar_dir):
    assert train.main(["--config", str(REPO / "configs/quickstart.yaml"), "--stop-after", "1",
                       *[a for s in SMALL + ["training.epochs=3", "callbacks.nan_check_every=1",
                                             f"output.dir={tmp_path}", "training.verbose=0"] for a in ("--set", s)]]) == 0
    run = next(tmp_path.iterdir())
    good = snapshot(run)
    config = (run / "config.yaml").read_text().replace("lr: 0.01", "lr: 1.0e+30")
    (run / "config.yaml").write_text(config)  # sabotage: the resumed epochs diverge at once
    capsys.readouterr()
    assert train.main(["--resume", str(run)]) == 1
    err = capsys.readouterr().err
    assert "training stopped: loss became nan" in err and "last good checkpoints (epoch 1)" in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "loss became nan at epoch 2" in metrics["reason"]
    # the checkpoints are the last good ones; provenance.json gained the process that resumed
    before, after = json.loads(good.pop("provenance.json")), json.loads((run / "provenance.json").read_text())
    assert after[0] == before[0] and [s["from_epoch"] for s in after] == [1, 2]
    assert {k: v for k, v in snapshot(run).items() if k != "provenance.json"} == good
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]


# ---------------------------------------------------------------------------- kills

EPOCHS = 6
KILL_ARGS = ["--config", "configs/quickstart.yaml", "--set", "model.name=shallownet", "--set", "model.params={}",
             "--set", "data.source=cifar10", "--set", "data.subset=100", "--set", "data.test_subset=10",
             "--set", "training.batch_size=50", "--set", f"training.epochs={EPOCHS}", "--set", "training.verbose=0",
             "--set", "schedule.name=step", "--set", "schedule.factor=0.5", "--set", "schedule.every=2",
             "--set", "augment.flip=false"]


def start(args, out):
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def runs(out):
    """The run folders (a run folder appears whole, with its config.yaml)."""
    return [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []


def wait_for(predicate, proc, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.0005)
    return False


def intact(run):
    """Every file a killed run left must be whole: JSON parses, HDF5 opens, weights load."""
    for name in ("history.json", "best.json", "state.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    for name in ("best.weights.h5", "state.h5"):
        if (run / name).exists():
            with h5py.File(run / name, "r") as f:
                assert len(f.keys()) > 0


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_until_done(tmp_path, cifar_dir):
    rng = random.Random(7)
    out = tmp_path / "runs"
    proc = start(KILL_ARGS + ["--set", f"output.dir={out}"], out)
    assert wait_for(lambda: runs(out), proc)
    run = runs(out)[0]
    kills = {"while writing": 0, "mid-epoch": 0}
    for attempt in range(6):
        if attempt % 2 == 0:   # the moment a checkpoint or history file is half-written
            hit = wait_for(lambda: any(p.name.startswith(".") and ".tmp" in p.name for p in run.iterdir()), proc)
            kind = "while writing"
        else:                  # somewhere inside an epoch
            hit = wait_for(lambda: (run / "history.json").exists(), proc)
            time.sleep(rng.uniform(0.05, 0.6))
            kind = "mid-epoch"
        if proc.poll() is not None:
            break              # it finished before we could kill it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills[kind] += hit
        intact(run)
        proc = start(["--resume", str(run)], out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    assert kills["while writing"] >= 1 and kills["mid-epoch"] >= 1, kills
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    assert history["learning_rate"] == pytest.approx([0.01 * 0.5 ** ((1 + e) // 2) for e in range(EPOCHS)])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == EPOCHS
    intact(run)
    assert not [p for p in run.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_saves_the_state_and_says_how_to_resume(sig, tmp_path, cifar_dir):
    out = tmp_path / "runs"
    proc = start(KILL_ARGS + ["--set", f"output.dir={out}"], out)
    assert wait_for(lambda: runs(out) and (runs(out)[0] / "history.json").exists(), proc)
    run = runs(out)[0]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert f"Resume with: python train.py --resume {run}" in err and "Traceback" not in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["reason"] == f"stopped by {sig.name}"
    done = json.loads((run / "history.json").read_text())["epoch"]
    assert done == list(range(1, len(done) + 1)) and len(done) < EPOCHS
    proc = start(["--resume", str(run)], out)
    assert proc.wait(timeout=300) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == list(range(1, EPOCHS + 1))
