"""The weights that ship in weights/ give their recorded figures again on the real CIFAR-10
test images (through ``suite.models.create`` and ``evaluate.py``), and ``results.py record``
copies a run's records and ships its weights so that they load by name."""

import json
import math
import shutil

import numpy as np
import pytest

from suite import models
from suite.commands import results
from conftest import REPO
from suite.models import pretrained
from suite.workflows import results as records
from test_evaluate import evaluate_main, metrics_of
from test_results import one_error_line

FIRST = records.FIRST_TEST  # test images each shipped weights file is checked on


@pytest.mark.parametrize("name", models.list_models(pretrained=True))
def test_shipped_weights_give_their_sidecar_figure_on_the_first_1000_test_images(name, cifar):
    sidecar = json.loads((pretrained.WEIGHTS_DIR / f"{name}.json").read_text())
    net = models.create(name, pretrained=True)
    probs = net.predict(cifar.x_test[:FIRST], batch_size=250, verbose=0)
    assert probs.shape == (FIRST, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)  # probabilities, from uint8 input
    accuracy = float(np.mean(probs.argmax(axis=1) == cifar.y_test[:FIRST]))
    # The figure these images gave when the weights were shipped, to within one image
    # (another CPU may round one borderline prediction the other way).
    assert accuracy == pytest.approx(sidecar[f"test_accuracy_first_{FIRST}"], abs=1.5 / FIRST), name
    p = sidecar["test_accuracy"]  # on all 10,000 test images
    tolerance = 3 * math.sqrt(p * (1 - p) / FIRST)  # three binomial standard errors of a 1,000-image estimate
    assert abs(accuracy - p) <= tolerance, (name, accuracy, p, tolerance)


WEIGHTS = REPO / "weights" / "allcnn_c.weights.h5"


def test_shipped_weights_reach_the_accuracy_in_their_sidecar(tmp_path, capsys, cifar_dir):
    sidecar = json.loads(WEIGHTS.with_name("allcnn_c.json").read_text())
    assert sidecar["model"] == {"name": "allcnn_c", "params": {"final_relu": False}}
    code, _, _, report = evaluate_main(tmp_path, capsys, "--weights", str(WEIGHTS), "--limit", "1000")
    assert code == 0
    m = metrics_of(report)
    assert m["images"] == 1000 and not m["is_sample"]
    assert m["accuracy"] == pytest.approx(sidecar["test_accuracy_first_1000"], abs=0.0015)
    assert (REPO / "results" / "studies" / "allcnn_c_pretrained" / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", models.list_models(pretrained=True))
def test_evaluate_takes_pretrained_weights_by_name(name, tmp_path, capsys, cifar):
    code, out, _, report = evaluate_main(tmp_path, capsys, "--pretrained", name, "--limit", "200", "--batch-size", "100")
    assert code == 0 and f"weights/{name}.weights.h5" in out
    m = metrics_of(report)
    assert m["images"] == 200 and m["model"] == name
    probs = models.create(name, pretrained=True).predict(cifar.x_test[:200], batch_size=100, verbose=0)
    # what models.create's network predicts, to within one borderline image
    assert m["accuracy"] == pytest.approx(float(np.mean(probs.argmax(axis=1) == cifar.y_test[:200])), abs=1.5 / 200)


def test_record_refuses_a_subset_run_and_writes_nothing(tiny_run, tmp_path, capsys):
    code = results.main(["--results", str(tmp_path / "results"), "record", str(tiny_run)])
    assert "a record is a run on the full CIFAR-10" in one_error_line(capsys, code)
    assert not (tmp_path / "results").exists()


def test_record_copies_the_files_and_ships_weights_that_load_by_name(tiny_run, tmp_path, capsys, monkeypatch,
                                                                      fixed_batch, cifar):
    # The tiny run stands in for a full one (its metrics say so): what is tested is the copying.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(train_images=records.FULL_TRAIN, test_images=records.FULL_TEST)
    (run / "metrics.json").write_text(json.dumps(metrics))
    out, weights = tmp_path / "results", tmp_path / "weights"
    args = ["--results", str(out), "record", str(run), "--weights", "--weights-dir", str(weights)]

    assert results.main(args) == 0
    capsys.readouterr()
    record = out / metrics["name"]
    for name in records.RECORD_FILES:
        assert (record / name).read_bytes() == (run / name).read_bytes()
    assert not list(record.glob("*.weights.h5"))  # a record holds no weights
    shipped = weights / "shallownet.weights.h5"
    assert shipped.read_bytes() == (run / "final.weights.h5").read_bytes()
    sidecar = json.loads((weights / "shallownet.json").read_text())
    assert sidecar["test_accuracy"] == metrics["final_test_accuracy"]
    net, _ = pretrained.load_wrapped(shipped, models.create)
    probs = net.predict(cifar.x_test[:FIRST], batch_size=250, verbose=0)
    assert sidecar[f"test_accuracy_first_{FIRST}"] == float(np.mean(probs.argmax(axis=1) == cifar.y_test[:FIRST]))
    assert sidecar["model"]["name"] == "shallownet" and sidecar["epochs"] == 2
    assert "shallownet" in (out / "README.md").read_text()

    before = {p: p.read_bytes() for p in [*record.iterdir(), shipped]}
    assert "--replace" in one_error_line(capsys, results.main(args))
    assert {p: p.read_bytes() for p in before} == before

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    assert models.list_models(pretrained=True) == ["shallownet"]
    net = models.create("shallownet", pretrained=True)
    own = models.create("shallownet")
    own.load_weights(str(run / "final.weights.h5"))
    images = fixed_batch[0]
    expected = own.predict(images.astype("float32") / 255.0, verbose=0)  # the run's normalize: scale
    np.testing.assert_allclose(net.predict(images, verbose=0), expected, atol=1e-5)
