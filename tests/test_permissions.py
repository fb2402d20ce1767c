"""Run folders and their files are as readable as the umask says, and renames are synced."""

import os
import stat

import pytest

from conftest import train_run
from suite.atomic import atomic_path, temporary_dir, write_json


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test; the previous one comes back afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_run_folder_and_files_follow_the_umask(mask, folder_mode, file_mode, umask, tmp_path):
    umask(mask)
    code, run_dir = train_run(tmp_path / "runs", "model.name=shallownet", "model.params={}", "data.source=cifar10",
                              "data.subset=10", "data.test_subset=5", "training.batch_size=20", "training.epochs=1")
    assert code == 0
    files = {p.relative_to(run_dir).as_posix(): mode(p) for p in run_dir.rglob("*") if p.is_file()}
    # write_text / write_json, weights through atomic_path (WeightsWriter and Keras' save_weights), h5py, figures
    assert {"config.yaml", "history.json", "metrics.json", "best.weights.h5", "best.json", "state.h5",
            "final.weights.h5", "curves.png", "model.txt"} <= set(files)
    assert files == dict.fromkeys(files, file_mode)
    assert mode(run_dir) == folder_mode


def test_temporary_files_and_folders_follow_the_umask(umask, tmp_path):
    umask(0o027)
    with atomic_path(tmp_path / "x.weights.h5") as tmp:
        assert tmp.name.startswith(".x.weights.h5.") and tmp.name.endswith(".tmp.weights.h5")
        assert mode(tmp) == 0o640
        tmp.write_bytes(b"weights")
    assert mode(tmp_path / "x.weights.h5") == 0o640 and not tmp.exists()
    folder = temporary_dir(tmp_path, prefix=".run-")
    assert folder.name.startswith(".run-") and folder.name.endswith(".tmp") and mode(folder) == 0o750
    assert temporary_dir(tmp_path, prefix=".run-") != folder  # a fresh name each time


def test_each_rename_is_followed_by_a_sync_of_its_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append("sync folder" if os.path.samestat(info, os.stat(tmp_path)) else
                      "sync file" if stat.S_ISREG(info.st_mode) else "sync other")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda *a: events.append("rename") or real_replace(*a))
    write_json(tmp_path / "a.json", {"x": 1})
    assert events == ["sync file", "rename", "sync folder"]
