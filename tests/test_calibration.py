"""Calibration measures against hand-computed cases, temperature scaling, the checkpoint
rule and provenance records: no data set, seconds."""

import json
import subprocess

import numpy as np
import pytest

from suite.analysis import calibration
from suite.core import provenance
from suite.core.errors import UserError
from suite.data.cifar10 import stratified_split, validation_name
from suite.weights.temperature import save_temperature, temperature_of
from suite.workflows import weight_source

pytestmark = pytest.mark.fast


def test_ece_by_hand():
    # confidences 0.9, 0.9 (one right) and 0.6, 0.6 (both right), two classes:
    # bin (13/15, 14/15]: accuracy 0.5, confidence 0.9; bin (8/15, 9/15]: accuracy 1, confidence 0.6
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    assert calibration.expected_calibration_error(probs, y) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
    counts, accuracy, confidence = calibration.confidence_bins(probs, y)
    assert counts.sum() == 4 and counts[13] == 2 and counts[8] == 2
    assert accuracy[13] == 0.5 and confidence[8] == pytest.approx(0.6)


def test_perfectly_calibrated_and_confidently_wrong():
    y = np.array([0, 1])
    assert calibration.expected_calibration_error(np.eye(2), y) == 0.0
    assert calibration.expected_calibration_error(np.eye(2)[::-1], y) == 1.0
    assert calibration.brier_score(np.eye(2), y) == 0.0 and calibration.brier_score(np.eye(2)[::-1], y) == 2.0


def test_nll_and_brier_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]])
    y = np.array([0, 2])
    assert calibration.negative_log_likelihood(probs, y) == pytest.approx(-(np.log(0.7) + np.log(0.25)) / 2)
    assert calibration.brier_score(probs, y) == pytest.approx(((0.09 + 0.04 + 0.01) + (0.0625 + 0.25 + 0.5625)) / 2)
    # a probability that underflowed to 0 gives a large, finite NLL
    assert np.isfinite(calibration.negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1])))


def test_temperature_scaling_recovers_the_temperature_that_made_the_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 10))
    true_probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=p) for p in true_probs])
    overconfident = calibration.with_temperature(true_probs, 1 / 2.5)  # logits x 2.5
    t = calibration.fit_temperature(overconfident, y)
    assert t == pytest.approx(2.5, rel=0.08)
    before = calibration.measures(overconfident, y)
    after = calibration.measures(calibration.with_temperature(overconfident, t), y)
    assert after["ece"] < before["ece"] / 3 and after["nll"] < before["nll"]
    # accuracy is unchanged by a temperature
    assert (calibration.with_temperature(overconfident, t).argmax(1) == overconfident.argmax(1)).all()


def test_reliability_diagram_is_a_png(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(10) * 0.3, 500)
    y = rng.integers(0, 10, 500)
    calibration.reliability_diagram(probs, y, tmp_path / "r.png", "test", after=calibration.with_temperature(probs, 2))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_a_temperature_is_kept_beside_weights_only_when_fitted_on_held_out_images(tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")
    sidecar = {"model": {"name": "lenet"}, "class_names": ["a", "b"]}
    (tmp_path / "w.json").write_text(json.dumps(sidecar))
    report = tmp_path / "report"
    report.mkdir()
    line = save_temperature(weights, 1.7, "seen images", False, report)
    assert "only" in line and json.loads((report / "temperature.json").read_text())["temperature"] == 1.7
    assert "calibration" not in json.loads((tmp_path / "w.json").read_text())
    line = save_temperature(weights, 1.4, "the run's 5,000 held-out images", True, report)
    kept = json.loads((tmp_path / "w.json").read_text())
    assert kept["model"] == sidecar["model"] and temperature_of(kept) == (1.4, "the run's 5,000 held-out images")
    assert temperature_of({}) == (None, None) and temperature_of({"calibration": {"temperature": -1}}) == (None, None)


def test_held_out_count_and_names():
    y = np.repeat(np.arange(10), 100)
    keep, held = stratified_split(y, 200, 0)
    assert len(held) == 200 and len(keep) == 800 and (np.bincount(y[held]) == 20).all()
    assert validation_name("test") == "the test set"
    assert validation_name(0.1) == "10% of the training set, held out"
    assert validation_name(5000) == "5,000 images of the training set, held out"
    with pytest.raises(UserError, match="1000 images to hold out"):
        stratified_split(y, 1000, 0)


def _checkpoint(tmp_path, checkpoint, validation=None):
    weights = tmp_path / "best.weights.h5"
    weights.write_bytes(b"")
    (tmp_path / "best.json").write_text(json.dumps({"model": {"name": "lenet"}, "checkpoint": checkpoint}))
    if validation is not None:
        (tmp_path / "config.yaml").write_text(f"data: {{validation: {validation}}}\n")
    return weights


def test_a_best_checkpoint_chosen_on_the_test_set_is_flagged_once(tmp_path, capsys):
    weights = _checkpoint(tmp_path, {"kind": "best", "epoch": 3, "monitor": "val_loss", "selected_on": "the test set"})
    chosen = weight_source.selection(weights, tmp_path, warn=True)
    assert chosen["test_set_selected"] is True and chosen["epoch"] == 3
    assert capsys.readouterr().err.count("warning:") == 1


def test_an_older_run_is_read_from_its_config(tmp_path, capsys):
    weights = _checkpoint(tmp_path, {"kind": "best", "epoch": 3, "monitor": "val_loss"}, validation=0.1)
    chosen = weight_source.selection(weights, tmp_path, warn=True)
    assert chosen["selected_on"] == "10% of the training set, held out" and chosen["test_set_selected"] is False
    assert capsys.readouterr().err == ""
    weights = _checkpoint(tmp_path, {"kind": "best", "epoch": 3, "monitor": "val_loss"}, validation="test")
    assert weight_source.selection(weights, tmp_path)["test_set_selected"] is True


def test_final_is_the_default_checkpoint():
    import argparse
    parser = argparse.ArgumentParser()
    weight_source.add_arguments(parser)
    assert parser.parse_args(["--run", "x"]).checkpoint == "final"


def test_provenance_names_versions_commit_and_data_never_a_path():
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    data = provenance.data_identity("cifar10", x, np.array([1, 2]))
    assert data == provenance.data_identity("cifar10", x.copy(), np.array([1, 2]))
    assert data["test_sha256"] != provenance.data_identity("cifar10", x[::-1].copy(), np.array([1, 2]))["test_sha256"]
    record = provenance.provenance("tensorflow", "CPU (2 cores)", "float32", data,
                                   argv=["/home/someone/suite/train.py", "--config", "configs/lenet.yaml"])
    assert record["command"] == "python train.py --config configs/lenet.yaml"
    assert set(record["versions"]) >= {"python", "tensorflow", "keras", "numpy", "jax"}
    assert record["versions"]["numpy"] == np.__version__ and record["suite"]["version"]
    head = subprocess.run(["git", "-C", str(provenance.CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout (CI's clone is one); an unpacked archive has no commit to name
        assert record["suite"]["commit"] == head.stdout.strip() and isinstance(record["suite"]["dirty"], bool)
    assert str(provenance.CHECKOUT) not in json.dumps(record)


def test_every_command_is_warned_through_weights_file(tmp_path, capsys):
    """evaluate.py, predict.py, visualize.py and export.py find --run weights through
    ``weights_file``: the best checkpoint of a run that validated on the test set warns once."""
    import argparse
    _checkpoint(tmp_path, {"kind": "best", "epoch": 2, "monitor": "val_loss"}, validation="test")
    parser = argparse.ArgumentParser()
    weight_source.add_arguments(parser)
    path, run_dir = weight_source.weights_file(parser.parse_args(["--run", str(tmp_path), "--checkpoint", "best"]))
    assert path.name == "best.weights.h5" and run_dir == tmp_path
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "best.weights.h5 is the epoch with the best val_loss on the test set" in err
    with pytest.raises(UserError, match="no final.weights.h5"):
        weight_source.weights_file(parser.parse_args(["--run", str(tmp_path)]))
