"""A run folder and its files are as readable as the umask says (the files that are written
atomically, and their temporary names: tests/test_atomic_files.py)."""

import pytest

from conftest import mode, train_run


@pytest.mark.parametrize("mask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_run_folder_and_files_follow_the_umask(mask, folder_mode, file_mode, umask, tmp_path, cifar_dir):
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
