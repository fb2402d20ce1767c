"""ZCA whitening (``data.normalize: zca``): whitened training images have about the identity
as covariance, the Keras layers compute what numpy does under both backends, and a run's
whitening is the one its evaluation, visualisation and export use (or they stop with one
line)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from suite.commands import evaluate
from suite import models
from conftest import REPO, train_run
from suite.models.pretrained import load_wrapped
from suite.data import whitening
from suite.config import load_config
from suite.data.cifar10 import stratified_indices


def test_whitened_training_images_have_about_the_identity_as_covariance(cifar):
    # the centre 16x16 of 3,000 real training images: 768 dimensions keep the eigendecomposition
    # 64 times cheaper than the full images' 3,072, and there are still more images than dimensions
    images = cifar.x_train[stratified_indices(cifar.y_train, 300, 0)][:, 8:24, 8:24]
    fitted = whitening.fit(images, bias=1e-8)
    out = keras.ops.convert_to_numpy(fitted.layers()(images)).reshape(len(images), -1).astype(np.float64)
    assert np.abs(out.mean(0)).max() < 1e-2
    cov = out.T @ out / len(out)
    # GCN takes each image's mean out, so the constant direction carries nothing; every other has variance 1
    d = cov.shape[0]
    expected = np.eye(d) - 1.0 / d
    assert np.abs(np.diag(cov) - np.diag(expected)).max() < 0.02
    assert np.abs(cov - expected).max() < 0.02
    # the same images standardised per channel are far from white: neighbouring pixels correlate
    raw = images.reshape(len(images), -1).astype(np.float64)
    raw = (raw - raw.mean(0)) / raw.std(0)
    assert (raw[:, 0] * raw[:, 3]).mean() > 0.8  # pixels (0, 0) and (0, 1), red


def test_the_gram_route_for_few_images_gives_the_full_computation(cifar):
    images = cifar.x_train[:40, 8:24, 8:24]
    small = whitening.fit(images)  # 40 images < 768 dimensions: through the 40 x 40 Gram matrix
    x = whitening.gcn(images.reshape(40, -1).astype(np.float64)) - small.mean
    lam, vectors = np.linalg.eigh(x.T @ x / 40)
    full = (vectors / np.sqrt(np.maximum(lam, 0) + whitening.BIAS)) @ vectors.T
    np.testing.assert_allclose(small.matrix, full, atol=2e-4 * np.abs(full).max())


def test_the_layers_compute_the_numpy_whitening_under_tensorflow_and_jax(cifar, tmp_path):
    fitted = whitening.fit(cifar.x_train[:300])
    fitted.save(tmp_path / whitening.FILE)
    images = cifar.x_test[:16]
    expected = fitted.apply(images)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fitted.layers()(images)), expected, atol=2e-3)
    np.save(tmp_path / "x.npy", images)
    script = ("import sys, numpy as np, keras; from suite.data import whitening; "
              "w = whitening.read(sys.argv[1]); assert keras.backend.backend() == 'jax'; "
              "np.save(sys.argv[3], keras.ops.convert_to_numpy(w.layers()(np.load(sys.argv[2]))))")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / whitening.FILE), str(tmp_path / "x.npy"),
                          str(tmp_path / "jax.npy")], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), expected, atol=2e-3)


@pytest.fixture(scope="module")
def zca_run(tmp_path_factory, cifar_dir):
    code, run_dir = train_run(tmp_path_factory.mktemp("zca"), "model.name=shallownet", "model.params={}",
                              "data.source=cifar10", "data.subset=20", "data.test_subset=10",
                              "data.normalize=zca", "augment={flip: true, crop: 4}", "training.epochs=1", name="zca")
    assert code == 0
    return run_dir


def test_a_run_writes_its_whitening_and_every_sidecar_names_it(zca_run, cifar):
    written = whitening.read(zca_run / whitening.FILE)
    assert written.images == 200 and written.bias == 0.1 and written.matrix.shape == (3072, 3072)
    for sidecar in ("final.json", "best.json"):
        pre = json.loads((zca_run / sidecar).read_text())["preprocessing"]
        assert pre["normalize"] == "zca" and pre["zca"]["sha256"] == written.sha256
        assert pre["zca"]["file"] == whitening.FILE and pre["zca"]["fit_images"] == 200


def test_evaluation_applies_the_runs_whitening(zca_run, cifar, tmp_path, capsys):
    model, _ = load_wrapped(zca_run / "final.weights.h5", models.create)
    x = cifar.x_test[:100]
    net = models.create("shallownet")
    net.load_weights(str(zca_run / "final.weights.h5"))
    by_hand = net.predict(whitening.read(zca_run / whitening.FILE).apply(x), verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_hand, atol=1e-4)
    assert evaluate.main(["--run", str(zca_run), "--checkpoint", "final", "--limit", "100",
                          "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "GCN + ZCA whitening" in out
    metrics = json.loads(next(tmp_path.glob("eval-*/metrics.json")).read_text())
    assert metrics["accuracy"] == pytest.approx(float(np.mean(by_hand.argmax(1) == cifar.y_test[:100])))


def test_visualize_and_export_use_the_runs_whitening(zca_run, cifar, tmp_path, capsys):
    from suite.commands import export
    from suite.commands import visualize
    from test_export import check_both

    assert visualize.main(["gradcam", "--run", str(zca_run), "--checkpoint", "final", "--count", "2",
                           "--out-dir", str(tmp_path / "vis")]) == 0
    folder = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert [f.name for f in folder.glob("*.png")] == ["gradcam-conv2d.png"]
    out = tmp_path / "exported"
    assert export.main(["--run", str(zca_run), "--checkpoint", "final", "-o", str(out)]) == 0
    capsys.readouterr()
    model, _ = load_wrapped(zca_run / "final.weights.h5", models.create)
    images = cifar.x_test[:32]
    check_both(out, zca_run.name, images, model.predict(images, verbose=0), tmp_path)


def test_a_changed_or_missing_whitening_file_is_one_error_line(zca_run, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(zca_run, run_dir)
    other = whitening.read(run_dir / whitening.FILE)
    other.matrix = other.matrix * 1.01
    other.save(run_dir / whitening.FILE)
    assert evaluate.main(["--run", str(run_dir), "--checkpoint", "final", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the whitening these weights were trained with" in err[0]
    (run_dir / whitening.FILE).unlink()
    assert evaluate.main(["--run", str(run_dir), "--checkpoint", "final", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "whitening.npz: missing" in err[0]
    assert not list(tmp_path.glob("eval-*"))


def test_a_resumed_run_keeps_the_whitening_it_started_with(tmp_path, monkeypatch, cifar_dir):
    from suite.commands import train

    args = ["--config", str(REPO / "configs/quickstart.yaml"), "--stop-after", "1"]
    for item in ("model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=10",
                 "data.test_subset=5", "data.normalize=zca", "training.epochs=2", "training.verbose=0",
                 f"output.dir={tmp_path}"):
        args += ["--set", item]
    assert train.main(args) == 0
    run_dir = next(tmp_path.glob("*"))
    started_with = whitening.read(run_dir / whitening.FILE).sha256

    def refit(*args, **kwargs):
        raise AssertionError("a resumed run fitted its whitening again")

    monkeypatch.setattr(whitening, "fit", refit)
    assert train.main(["--resume", str(run_dir)]) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2
    assert json.loads((run_dir / "final.json").read_text())["preprocessing"]["zca"]["sha256"] == started_with


def test_the_all_cnn_configs_whiten_as_the_paper_did():
    for name in ("allcnn_c", "allcnn_c_aug"):
        assert load_config(REPO / "configs" / f"{name}.yaml")["data"]["normalize"] == "zca"
