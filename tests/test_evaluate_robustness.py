"""evaluate.py's robustness and calibration reports on real data: --corruptions made here
and from a real-layout CIFAR-10-C folder, --calibrate, and their one-line errors."""

import json

import numpy as np
import pytest

from test_evaluate import evaluate_main, metrics_of, one_error_line

from suite.data.corruptions import NAMES, corrupt

PNG = b"\x89PNG\r\n\x1a\n"


def test_corruptions_report_accuracy_by_corruption_and_severity(tmp_path, capsys, cifar_dir):
    code, out, err, report = evaluate_main(tmp_path, capsys, "--pretrained", "shallownet", "--limit", 60,
                                           "--corruptions", "gaussian_noise,contrast", "--severities", "1,5")
    assert code == 0, err
    c = metrics_of(report)["corruptions"]
    assert c["names"] == ["gaussian_noise", "contrast"] and c["severities"] == [1, 5]
    assert set(c["accuracy"]["contrast"]) == {"1", "5"} and c["images"] == 4 * 60
    # severity 5 hurts more than severity 1, and the means are what the cells make
    assert c["by_severity"]["5"] < c["by_severity"]["1"] and c["accuracy"]["contrast"]["5"] < 0.5
    for name in c["names"]:
        assert c["by_corruption"][name] == pytest.approx(np.mean(list(c["accuracy"][name].values())))
    assert c["mean_corruption_error"] == pytest.approx(1 - c["mean_corruption_accuracy"])
    clean_error = 1 - metrics_of(report)["accuracy"]
    assert c["relative_to_clean"] == pytest.approx(c["mean_corruption_error"] / clean_error)
    assert "corruptions (made here" in out and "gaussian_noise" in out
    for png in ("corruptions.png", "corruption_grid.png"):
        assert (report / png).read_bytes()[:8] == PNG


def test_a_real_layout_folder_is_read_instead(tmp_path, capsys, cifar):
    """A CIFAR-10-C folder (<name>.npy: severities 1-5 one after another, and labels.npy),
    here built from the first 40 test images: the figures are those of the same images."""
    x, y = cifar.x_test[:40], cifar.y_test[:40]
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    np.save(folder / "labels.npy", np.tile(y, 5).astype(np.int64))
    np.save(folder / "fog.npy", np.concatenate([corrupt(x, "fog", s, 3) for s in range(1, 6)]))
    code, out, err, real = evaluate_main(tmp_path, capsys, "--pretrained", "shallownet", "--limit", 40,
                                         "--corruptions", "fog", "--corruptions-dir", folder)
    assert code == 0, err
    code, out, err, made = evaluate_main(tmp_path, capsys, "--pretrained", "shallownet", "--limit", 40,
                                         "--corruptions", "fog", "--corruption-seed", 3)
    assert code == 0, err
    assert metrics_of(real)["corruptions"]["accuracy"] == metrics_of(made)["corruptions"]["accuracy"]
    assert "the real CIFAR-10-C in CIFAR-10-C/" in metrics_of(real)["corruptions"]["source"]
    assert not (real / "corruption_grid.png").exists()


@pytest.mark.parametrize("flags, message", [
    (["--corruptions", "gausian_noise"], "did you mean 'gaussian_noise'"),
    (["--corruptions", "all", "--severities", "0"], "0"),
    (["--corruptions", "all", "--severities", "6"], "6"),
    (["--corruptions-dir", "{tmp}"], "no labels.npy"),
], ids=["unknown corruption", "severity 0", "severity 6", "no labels.npy"])
def test_bad_corruption_arguments_are_one_line(flags, message, tmp_path, capsys):
    flags = [f.format(tmp=tmp_path) for f in flags]
    code, out, err, report = evaluate_main(tmp_path, capsys, "--pretrained", "shallownet", *flags)
    line = one_error_line(code, err, report)
    assert message in line, line
    assert out == ""  # stopped before anything was loaded or predicted


def test_calibrate_fits_on_training_images_and_says_which(tmp_path, capsys, cifar_dir):
    weights = tmp_path / "w" / "shallownet.weights.h5"
    weights.parent.mkdir()
    from suite.core.paths import WEIGHTS
    weights.write_bytes((WEIGHTS / "shallownet.weights.h5").read_bytes())
    sidecar = json.loads((WEIGHTS / "shallownet.json").read_text())
    (tmp_path / "w" / "shallownet.json").write_text(json.dumps(sidecar))
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", weights, "--limit", 300, "--calibrate")
    assert code == 0, err
    cal = metrics_of(report)["calibration"]
    assert cal["temperature"] > 0 and "training images" in cal["temperature_from"]
    assert cal["after_temperature"]["ece"] >= 0 and "after temperature scaling" in out
    # the shipped weights trained on every training image: said once, and T stays in the report
    assert err.count("warning: --calibrate") == 1
    assert json.loads((report / "temperature.json").read_text())["held_out"] is False
    assert "calibration" not in json.loads((tmp_path / "w" / "shallownet.json").read_text())
