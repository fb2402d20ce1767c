"""A run folder, and a sweep folder, belong to one train.py at a time: a second one on it
stops at once with one line that names the holder, and changes nothing; a holder killed
with SIGKILL leaves no lock behind (``suite.core.lock``)."""

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from suite.commands import train
from conftest import REPO, mode, train_main
from suite.core import lock
from suite.core.errors import UserError
from suite.core.lock import lock_folder
from suite.workflows.train import new_run_dir

SMALL = ["model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=10", "data.test_subset=5",
         "training.batch_size=20", "training.verbose=0"]


def sets(*items):
    return [a for s in [*SMALL, *items] for a in ("--set", s)]


def stopped_run(out, epochs=3):
    """A run stopped after its first epoch, ready for --resume."""
    assert train.main(["--config", str(REPO / "configs/quickstart.yaml"), "--stop-after", "1",
                       *sets(f"training.epochs={epochs}", f"output.dir={out}")]) == 0
    [run] = list(out.iterdir())
    return run


def snapshot(folder):
    """Every file under ``folder``: its bytes and modification time."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def holder_pattern(pid):
    return f"is in use by process {pid} on {socket.gethostname()} (since "


def test_a_second_resume_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path, capsys, cifar_dir):
    run = stopped_run(tmp_path / "runs")
    holder = subprocess.Popen([sys.executable, "train.py", "--resume", str(run)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while str(holder.pid) not in (run / lock.FILE).read_text() and time.monotonic() < deadline:
            assert holder.poll() is None
            time.sleep(0.01)
        holder.send_signal(signal.SIGSTOP)  # it holds the folder, and stays so while the second one tries
        before = snapshot(run)
        second = subprocess.run([sys.executable, "train.py", "--resume", str(run)], cwd=REPO, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 2
        assert second.stdout == ""  # stopped before it read the data or built the model
        [line] = second.stderr.strip().splitlines()
        assert line.startswith(f"error: {run}: this run folder {holder_pattern(holder.pid)}"), line
        assert snapshot(run) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    capsys.readouterr()
    assert train.main(["--resume", str(run)]) == 0  # the killed holder's lock went with it
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2, 3]


def test_a_resume_of_a_folder_this_process_holds_is_refused(tmp_path, capsys, cifar_dir):
    run = stopped_run(tmp_path / "runs")
    capsys.readouterr()
    with lock_folder(run):
        before = snapshot(run)
        assert train.main(["--resume", str(run)]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: {run}: this run folder {holder_pattern(os.getpid())}"), line
        assert line.endswith("; wait until it ends, or stop it, and try again")
        assert snapshot(run) == before
    assert train.main(["--resume", str(run), "--dry-run"]) == 0  # a dry run writes nothing, and takes no lock


def test_a_sweep_holds_its_folder_and_the_run_folder_it_trains(tmp_path, capsys, cifar_dir):
    import keras

    out, seen = tmp_path / "runs", []

    class TryBoth(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            [folder] = out.glob("*-sweep-*")
            [run] = [p for p in folder.iterdir() if p.is_dir() and not (p / "metrics.json").exists()]
            for what, path in (("sweep folder", folder), ("run folder", run)):
                try:
                    lock_folder(path).release()
                    seen.append(f"{what} free")
                except UserError as e:
                    seen.append(f"{what} held" if holder_pattern(os.getpid()) in str(e) else str(e))

    argv = ["--config", str(REPO / "configs/quickstart.yaml"), *sets("training.epochs=1", f"output.dir={out}"),
            "--sweep", "training.batch_size=20,25"]
    assert train_main(argv, [TryBoth()]) == 0
    assert seen == ["sweep folder held", "run folder held"] * 2
    [folder] = out.glob("*-sweep-*")
    lock_folder(folder).release()  # and free once it ended

    with lock_folder(folder, "sweep folder"):
        before = snapshot(folder)
        capsys.readouterr()
        assert train.main(["--resume", str(folder)]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: {folder}: this sweep folder {holder_pattern(os.getpid())}"), line
        assert snapshot(folder) == before


@pytest.mark.fast
def test_a_new_run_folder_is_locked_from_its_first_moment(tmp_path):
    from suite.config import load_config

    cfg = load_config(REPO / "configs/shallownet.yaml", ["name=new", f"output.dir={tmp_path}"])
    with contextlib.ExitStack() as locks:
        run = new_run_dir(cfg, locks)
        with pytest.raises(UserError, match=holder_pattern(os.getpid()).replace("(", r"\(")):
            lock_folder(run)
        holder = json.loads((run / lock.FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    lock_folder(run).release()


@pytest.mark.fast
def test_a_file_system_without_locks_gets_a_warning_and_no_lock(tmp_path, capsys, monkeypatch):
    def refuse(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(lock.fcntl, "flock", refuse)
    lock_folder(tmp_path).release()
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"warning: {tmp_path}: the file system takes no locks (No locks available)")


@pytest.mark.fast
def test_the_lock_file_follows_the_umask(tmp_path, umask):
    umask(0o027)
    lock_folder(tmp_path).release()
    assert mode(tmp_path / lock.FILE) == 0o640
