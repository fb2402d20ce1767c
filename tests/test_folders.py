"""New folders and file names (``suite.core.folders``): a run or report folder appears whole,
never under a name already taken, with the umask's permissions; one that cannot be made is
one line, before any training."""

import os

import pytest

from conftest import REPO, train_run
from suite.config import load_config
from suite.core.errors import UserError
from suite.core.folders import new_file_name, new_folder
from suite.workflows.train import new_run_dir

pytestmark = pytest.mark.fast


def test_new_folders_never_reuse_a_name_and_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        first = new_folder(tmp_path / "runs", "x", "output.dir: cannot write run folders into")
        second = new_folder(tmp_path / "runs", "x", "output.dir: cannot write run folders into",
                            fill=lambda draft: (draft / "config.yaml").write_text("kept"))
    finally:
        os.umask(old)
    assert first != second and second.name.startswith(first.name.split("-2")[0])
    assert (first.stat().st_mode & 0o777) == 0o750 == (second.stat().st_mode & 0o777)
    assert (second / "config.yaml").read_text() == "kept" and list(first.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([first.name, second.name])  # no draft left
    png = new_file_name(tmp_path / "figs", "compare", ".png")
    png.write_bytes(b"")
    assert new_file_name(tmp_path / "figs", "compare", ".png") != png
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"--out-dir: cannot create a report folder in .*file/sub \(Not a directory\)"):
        new_folder(blocker / "sub", "eval-x", "--out-dir: cannot create a report folder in")


def test_an_existing_run_folder_is_never_reused(tmp_path):
    cfg = load_config(REPO / "configs/shallownet.yaml", ["name=same", f"output.dir={tmp_path}"])
    first = new_run_dir(cfg)
    (first / "keep.txt").write_text("precious")
    second = new_run_dir(cfg)
    assert first != second and (first / "keep.txt").read_text() == "precious"
    assert (second / "config.yaml").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_output_folder_that_cannot_be_written_is_reported_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _ = train_run(blocker / "runs", "model.name=shallownet", "model.params={}", "data.source=sample",
                        "data.subset=10", "data.test_subset=5", "training.batch_size=20", "training.epochs=1")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "output.dir: cannot write run folders into" in err[0], err
