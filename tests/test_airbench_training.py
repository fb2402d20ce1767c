"""configs/airbench94.yaml trained on small subsets of the real CIFAR-10: the recipe runs
end to end under TensorFlow and JAX, records its scores with and without test-time
augmentation, resumes bit for bit, and evaluate.py applies TTA to its weights."""

import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO, train_run

SMALL = ["data.subset=20", "data.test_subset=10", "training.batch_size=50", "training.verbose=0"]


def history(run_dir):
    return json.loads((run_dir / "history.json").read_text())


def test_the_recipe_trains_and_scores_with_and_without_tta(tmp_path, cifar_dir, capsys):
    code, run = train_run(tmp_path, *SMALL, "training.epochs=2", config="configs/airbench94.yaml")
    assert code == 0
    header = capsys.readouterr().out
    assert "weight decay 0.00133043 (coupled, every trained variable)" in header
    assert "flip alternating, crop 2, crop_fill reflect; flip-and-crop in the input" in header
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tta"] == 2
    for key in ("final_test_accuracy", "final_test_accuracy_tta", "final_test_loss_tta"):
        assert 0 <= metrics[key] <= (1 if "accuracy" in key else 10), key
    assert history(run)["learning_rate"][0] == pytest.approx(1.5 * 0.2)


def weights_of(path):
    with h5py.File(path) as f:
        names = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
        return {n: f[n][()] for n in names}


def test_a_resumed_run_is_bit_exact_with_every_trick(tmp_path, cifar_dir):
    """3 epochs straight == 2, stop, resume: the slow weights, the frozen whitening bias,
    the learning-rate groups and the alternating flip all continue where they were."""
    from suite.commands import train

    sets = [*SMALL, "training.epochs=3", "training.deterministic=true", "optimizer.lookahead_every=3",
            "optimizer.train_epochs={whiten/bias: 2}"]
    code, straight = train_run(tmp_path / "a", *sets, config="configs/airbench94.yaml")
    assert code == 0
    code, chunked = train_run(tmp_path / "b", *sets, config="configs/airbench94.yaml", extra=["--stop-after", "2"])
    assert code == 0 and history(chunked)["epoch"] == [1, 2]
    assert train.main(["--resume", str(chunked)]) == 0
    a, b = history(straight), history(chunked)
    assert a["loss"] == b["loss"] and a["val_loss"] == b["val_loss"]
    wa, wb = weights_of(straight / "final.weights.h5"), weights_of(chunked / "final.weights.h5")
    assert wa.keys() == wb.keys() and wa
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_trains_a_few_batches_under_jax(tmp_path, cifar_dir):
    proc = subprocess.run([sys.executable, "train.py", "--config", "configs/airbench94.yaml",
                           *[a for s in [*SMALL, "training.epochs=1", f"output.dir={tmp_path}"] for a in ("--set", s)]],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "backend     jax" in proc.stdout
    metrics = json.loads((next(tmp_path.iterdir()) / "metrics.json").read_text())
    assert metrics["backend"] == "jax" and "final_test_accuracy_tta" in metrics


def test_evaluate_applies_tta_to_the_run(tmp_path, cifar_dir):
    code, run = train_run(tmp_path / "runs", *SMALL, "training.epochs=1", "training.tta=0",
                          config="configs/airbench94.yaml")
    assert code == 0
    proc = subprocess.run([sys.executable, "evaluate.py", "--run", str(run), "--tta", "--limit", "200",
                           "--out-dir", str(tmp_path / "eval")], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"^tta +level 2: the image and its mirror image", proc.stdout, re.M)
    report = json.loads((next((tmp_path / "eval").iterdir()) / "metrics.json").read_text())
    assert report["tta"] == 2 and report["images"] == 200
