"""Files written atomically (``suite.core.atomic``): their temporary names and folders follow the
umask, and each rename into place is followed by a sync of its folder."""

import os
import stat

import pytest

from conftest import mode
from suite.core.atomic import atomic_path, temporary_dir, write_json

pytestmark = pytest.mark.fast


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
