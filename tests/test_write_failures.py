"""A write that fails (a full disk, a quota, an I/O error) is one ``error:`` line naming the
file and the cause, exit status 1, no traceback, and nothing already written is lost: a
run keeps its last complete epoch and says how to resume, and resumes to the end.

A full disk is simulated without mounting anything, two ways: in this process every file
synced under a folder fails with ENOSPC (where a full disk, a quota or NFS report it when
the data cannot be stored, and where every writer of the suite passes: ``suite.core.atomic``),
and in a child process the file-size limit (``RLIMIT_FSIZE``) makes the kernel refuse the
writes themselves, HDF5's included (EFBIG, "File too large")."""

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from suite.commands import compare
from suite.commands import evaluate
from suite.commands import export
from suite.commands import predict
from suite.commands import results
from suite.commands import train
from suite.commands import visualize
from suite.callbacks.checkpoints import epochs_saved
from conftest import REPO, train_main
from suite.core.atomic import atomic_path, write_error, write_json
from suite.core.errors import WriteError

ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
SMALL = ["model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=10", "data.test_subset=5",
         "training.batch_size=20", "training.verbose=0"]


class FullDisk:
    """``fill(folder)``: from then on, every file synced under ``folder`` fails with ENOSPC;
    ``free()``: the space is back."""

    def __init__(self, monkeypatch):
        self.folders, real = [], os.fsync

        def fsync(fd):
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and any(_holds(folder, info) for folder in self.folders):
                raise OSError(errno.ENOSPC, ENOSPC)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    def fill(self, folder):
        self.folders.append(Path(folder))

    def free(self):
        self.folders.clear()


def _holds(folder, info):
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):  # a temporary renamed meanwhile
            if os.path.samestat(info, path.stat()):
                return True
    return False


@pytest.fixture
def disk(monkeypatch):
    return FullDisk(monkeypatch)


def train_args(out, *sets, epochs=3):
    sets = [*SMALL, f"training.epochs={epochs}", f"output.dir={out}", *sets]
    return ["--config", str(REPO / "configs/quickstart.yaml"), *[a for s in sets for a in ("--set", s)]]


def when(hook, epoch=None, action=None):
    """A callback (train.py runs it before its own) that calls ``action()`` at ``hook``
    (``on_epoch_end`` of 1-based ``epoch``, or ``on_train_end``)."""
    import keras

    class At(keras.callbacks.Callback):
        pass

    if epoch is None:
        setattr(At, hook, lambda self, logs=None: action())
    else:
        setattr(At, hook, lambda self, e, logs=None: action() if e + 1 == epoch else None)
    return At()


def error_lines(err):
    """stderr without blank lines and the suite's warnings (no Graphviz here, say)."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]


def whole(run, epochs):
    """The run's state, best checkpoint and history are whole, at ``epochs``."""
    assert epochs_saved(run / "state.h5") == epochs
    with h5py.File(run / "best.weights.h5", "r") as f:
        assert len(f.keys()) > 0
    assert json.loads((run / "history.json").read_text())["epoch"][:epochs] == list(range(1, epochs + 1))
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------------------- training

def test_a_full_disk_mid_run_keeps_the_last_epoch_and_resumes_to_the_end(tmp_path, capsys, disk, cifar_dir):
    out = tmp_path / "runs"
    code = train_main(train_args(out), [when("on_epoch_end", 2, lambda: disk.fill(out))])
    [run] = list(out.iterdir())
    assert code == 1
    err = capsys.readouterr().err
    assert error_lines(err) == [f"error: cannot write {run}/history.json ({ENOSPC}); epochs 1-1 are saved in {run}.",
                                f"Resume with: python train.py --resume {run}"]
    whole(run, 1)
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    assert not (run / "metrics.json").exists()

    disk.free()
    assert train.main(["--resume", str(run)]) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2, 3]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_a_full_disk_after_the_last_epoch_resumes_to_the_final_files(tmp_path, capsys, disk, cifar_dir):
    out = tmp_path / "runs"
    code = train_main(train_args(out, epochs=2), [when("on_train_end", action=lambda: disk.fill(out))])
    [run] = list(out.iterdir())
    assert code == 1
    [line, resume] = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: cannot write {run}/") and line.endswith(f"({ENOSPC}); epochs 1-2 are saved in {run}.")
    assert resume == f"Resume with: python train.py --resume {run}"
    whole(run, 2)
    assert not (run / "final.weights.h5").exists() and not (run / "metrics.json").exists()

    disk.free()
    assert train.main(["--resume", str(run)]) == 0
    assert "only its final weights and metrics are missing" in capsys.readouterr().out
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2 and (run / "final.weights.h5").is_file()


# The file-size limit drops to LIMIT bytes when epoch 2 ends: the history (about 1 KB) still fits,
# the checkpoints (about 1.3 and 2.6 MB of HDF5) do not, and the kernel refuses their writes.
LIMIT = 100_000
LIMITED = """
import resource, signal, sys
from suite.api import train  # first: importing suite makes the first import of Keras quiet
from suite.commands.train import parse_args
from suite.core.errors import run_cli
import keras

class FileSizeLimit(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == 2:  # before train.py's own callbacks write epoch 2
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))

options = {k: v for k, v in vars(parse_args(sys.argv[2:])).items() if k != "settings"}
sys.exit(run_cli(lambda given: train(**given, callbacks=[FileSizeLimit()]).exit_code, options))
"""


def test_writes_the_kernel_refuses_are_one_line_in_a_real_process(tmp_path, cifar_dir):
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-c", LIMITED, str(LIMIT), *train_args(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    [run] = list(out.iterdir())
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    [line, resume] = error_lines(proc.stderr)
    failed = line.removeprefix(f"error: cannot write {run}/").split(" ")[0]
    assert failed in ("best.weights.h5", "state.h5"), line
    assert line.endswith(f"({os.strerror(errno.EFBIG)}); epochs 1-1 are saved in {run}.")
    assert resume == f"Resume with: python train.py --resume {run}"
    assert epochs_saved(run / "state.h5") == 1 and json.loads((run / "history.json").read_text())["epoch"][0] == 1

    resumed = subprocess.run([sys.executable, "train.py", "--resume", str(run)], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2, 3]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


# ---------------------------------------------------------------------------- the other commands

def image_files(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


# name: (main, its arguments given the run and the output folder, the file there that must survive)
COMMANDS = {
    "evaluate": (evaluate.main, lambda run, out, tmp: ["--run", run, "--limit", "20", "--out-dir", out], None),
    "predict": (predict.main, lambda run, out, tmp: [image_files(tmp / "images"), "--run", run,
                                                     "--csv", out / "p.csv"], "p.csv"),
    "visualize": (visualize.main, lambda run, out, tmp: ["filters", "--run", run, "--out-dir", out], None),
    "export": (export.main, lambda run, out, tmp: ["--run", run, "-o", out / "exported"], None),
    "compare curves": (compare.main, lambda run, out, tmp: ["curves", run, "-o", out / "c.png"], "c.png"),
    "compare table": (compare.main, lambda run, out, tmp: ["table", run, "--md", out / "t.md"], "t.md"),
    "results readme": (results.main, lambda run, out, tmp: ["--results", out, "readme"], "README.md"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_full_disk_is_one_line_for_every_command(command, tmp_path, capsys, disk, tiny_run):
    main, arguments, kept = COMMANDS[command]
    out = tmp_path / "out"
    out.mkdir()
    if kept:
        (out / kept).write_text("written before\n")
    argv = [str(a) for a in arguments(tiny_run, out, tmp_path)]
    disk.fill(out)
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]  # after evaluate's progress lines
    assert err.splitlines()[-1] == line and "Traceback" not in err, err
    assert line.startswith(f"error: cannot write {out}/") and line.endswith(f" ({ENOSPC})"), line
    if kept:
        assert (out / kept).read_text() == "written before\n"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


# ---------------------------------------------------------------------------- the pieces

@pytest.mark.fast
def test_a_failed_write_names_the_file_and_leaves_the_old_one(tmp_path, disk):
    path = tmp_path / "history.json"
    write_json(path, {"epoch": [1]})
    disk.fill(tmp_path)
    with pytest.raises(WriteError) as failure:
        write_json(path, {"epoch": [1, 2]})
    assert str(failure.value) == f"cannot write {path} ({ENOSPC})" and failure.value.errno == errno.ENOSPC
    assert json.loads(path.read_text()) == {"epoch": [1]} and os.listdir(tmp_path) == ["history.json"]


@pytest.mark.fast
def test_an_error_about_another_file_or_a_bug_passes_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "copy.json") as tmp:
            tmp.write_bytes((tmp_path / "missing.json").read_bytes())  # the file read is missing
    with pytest.raises(RuntimeError, match="a bug"):
        with atomic_path(tmp_path / "x.json"):
            raise RuntimeError("a bug")
    assert not list(tmp_path.iterdir())


@pytest.mark.fast
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full (Linux)")
def test_h5py_on_a_full_device_is_named_in_the_system_words(tmp_path):
    with pytest.raises(Exception) as raised:
        with h5py.File("/dev/full", "w") as f:
            f.create_dataset("x", data=np.zeros(100_000))
    failure = write_error(raised.value, tmp_path / "state.h5")
    assert str(failure) == f"cannot write {tmp_path / 'state.h5'} ({ENOSPC})"
    # h5py's RuntimeError from a failed close carries the errno in its words only
    closing = RuntimeError("Can't decrement id ref count (unable to extend file properly, errno = 28, "
                           "error message = 'No space left on device')")
    assert write_error(closing, tmp_path / "state.h5").strerror == ENOSPC
