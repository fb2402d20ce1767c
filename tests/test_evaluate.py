"""evaluate.py on real data: the report folder, the model sources (sidecar, config, --model),
the sample, Keras 2 legacy weights, and every one-line error."""

import csv
import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from suite.commands import evaluate
from conftest import REPO
from suite.weights import formats as legacy_weights
from suite.core.errors import UserError
from suite.workflows.evaluate import training_images

PNG = b"\x89PNG\r\n\x1a\n"
LEGACY_IMAGES = 300


# ---------------------------------------------------------------------------- helpers

def evaluate_main(tmp_path, capsys, *args):
    """Run evaluate.main in this process; return (exit code, stdout, stderr, report folder or None)."""
    out_dir = tmp_path / "evals"
    before = set(out_dir.glob("eval-*")) if out_dir.exists() else set()
    code = evaluate.main([*map(str, args), "--out-dir", str(out_dir)])
    captured = capsys.readouterr()
    new = sorted(set(out_dir.glob("eval-*")) - before) if out_dir.exists() else []
    assert len(new) <= 1
    return code, captured.out, captured.err, (new[0] if new else None)


def one_error_line(code, err, report):
    """Exit 2, one line `error: ...` on stderr, no traceback, no report folder."""
    assert code == 2
    assert report is None
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def metrics_of(report):
    return json.loads((report / "metrics.json").read_text())


def keras2_name(layer, counters):
    """Keras 2's automatic layer names: snake-case class name and a counter from 1."""
    base = legacy_weights._snake_case(type(layer).__name__)
    counters[base] = counters.get(base, 0) + 1
    return f"{base}_{counters[base]}"


def write_keras2(path, net, whole_model=False, backend="tensorflow", chunk_layer_names=False, flip_kernels=False):
    """``net``'s weights in exactly the layout Keras 2 wrote: ``save_weights("x.h5")`` (or the
    ``model_weights`` group of ``model.save``): attribute ``layer_names`` (bytes) listing every
    layer, weightless ones included; per layer a group with attribute ``weight_names``
    (``b"conv2d_1/kernel:0"``, ...) and the datasets at ``<layer>/<weight name>``."""
    counters = {}
    with h5py.File(path, "w") as f:
        if whole_model:
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential"}).encode()
            f.create_group("optimizer_weights")
            root = f.create_group("model_weights")
        else:
            root = f
        names = []
        for layer in net.layers:
            if type(layer).__name__ == "InputLayer":
                continue  # Keras 2's Sequential models did not list their input
            name = keras2_name(layer, counters)
            names.append(name.encode())
            group = root.create_group(name)
            weight_names = [f"{name}/{v.name}:0" for v in layer.weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names]) if weight_names else []
            for weight_name, value in zip(weight_names, layer.get_weights()):
                if flip_kernels and value.ndim == 4:
                    value = value[::-1, ::-1]
                group.create_dataset(weight_name, data=value)
        if chunk_layer_names:  # Keras 2 split attributes over 64 KB into layer_names0, layer_names1, ...
            root.attrs["layer_names0"] = np.array(names[:3])
            root.attrs["layer_names1"] = np.array(names[3:])
        else:
            root.attrs["layer_names"] = np.array(names)
        root.attrs["backend"] = backend.encode()
        root.attrs["keras_version"] = b"2.1.2"


def he_random_weights(net, seed):
    """Known random weights (He-normal kernels, small random biases): confident, distinct outputs."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        values = []
        for v in layer.weights:
            shape = tuple(v.shape)
            if len(shape) > 1:
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, np.sqrt(2 / fan_in), shape).astype("float32"))
            else:
                values.append(rng.normal(0, 0.05, shape).astype("float32"))
        if values:
            layer.set_weights(values)


@pytest.fixture(scope="session")
def tiny_expected(tiny_run, cifar):
    """What Keras itself says about tiny_run's best weights on the first 500 test images."""
    import keras

    from suite import models
    from suite.data.preprocessing import input_scaling, wrap
    side = json.loads((tiny_run / "best.json").read_text())
    net = models.create(side["model"]["name"], **side["model"]["params"])
    net.load_weights(str(tiny_run / "best.weights.h5"))
    model = wrap(net, input_scaling(side["preprocessing"]))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    x, y = cifar.x_test[:500], cifar.y_test[:500]
    loss, acc = model.evaluate(x, y, batch_size=250, verbose=0)
    return {"loss": loss, "accuracy": acc, "probs": model.predict(x, batch_size=250, verbose=0)}


@pytest.fixture(scope="session")
def legacy_file(tmp_path_factory, cifar):
    """allcnn_c_study with known random weights, written as a Keras 2 file, and its predictions."""
    from suite import models
    from suite.data.preprocessing import standardize, wrap
    net = models.create("allcnn_c_study")
    he_random_weights(net, seed=2015)
    path = tmp_path_factory.mktemp("legacy") / "all_cnn_weights_test.hdf5"
    write_keras2(path, net)
    probs = wrap(net, standardize([0.0] * 3, [255.0] * 3)).predict(cifar.x_test[:LEGACY_IMAGES], batch_size=100, verbose=0)
    return path, probs


# ---------------------------------------------------------------------------- reports
def test_progress_is_shown_while_predicting(tiny_run, tmp_path, capsys):
    # stderr is not a terminal here (a log): a line at each tenth of the images
    code, out, err, _ = evaluate_main(tmp_path, capsys, "--run", tiny_run, "--limit", 500, "--batch-size", 50)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("predicted ")]
    assert [line.split(" images")[0] for line in lines] == [f"predicted {n}/500" for n in range(50, 501, 50)]
    assert "predicted 50/500" not in out  # stdout stays the report


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    from suite.analysis.inference import Progress
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = Progress(300)
    for done in (100, 200, 300):
        bar.update(done)
    err = capsys.readouterr().err
    assert "300/300" in err and "predicted" not in err  # Keras' Progbar, drawn on stderr


def test_run_writes_the_whole_report(tiny_run, tiny_expected, cifar, tmp_path, capsys):
    code, out, err, report = evaluate_main(tmp_path, capsys, "--run", tiny_run, "--checkpoint", "best", "--limit", 500)
    assert code == 0, err
    assert report.name.startswith(f"eval-{tiny_run.name}-best-")
    assert {p.name for p in report.iterdir()} == {"metrics.json", "per_class.csv", "report.txt", "confusion.png",
                                                  "misclassified.png", "predictions.npz", "reliability.png"}
    m = metrics_of(report)
    y = cifar.y_test[:500]
    # the same figures as Keras' own evaluate of the same weights on the same images
    assert m["accuracy"] == pytest.approx(tiny_expected["accuracy"], abs=1e-6)
    assert m["loss"] == pytest.approx(tiny_expected["loss"], rel=1e-5)
    predictions = np.load(report / "predictions.npz")
    np.testing.assert_allclose(predictions["probs"], tiny_expected["probs"], atol=1e-6)
    assert (predictions["y_true"] == y).all()
    # the files agree with each other
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 500 == m["images"]
    assert (cm.sum(axis=1) == np.bincount(y, minlength=10)).all()
    assert np.trace(cm) / 500 == pytest.approx(m["accuracy"])
    assert (np.bincount(y * 10 + predictions["y_pred"], minlength=100).reshape(10, 10) == cm).all()
    for c, row in zip(m["per_class"], cm):
        i = m["class_names"].index(c["class"])
        assert c["support"] == row.sum()
        assert c["recall"] == pytest.approx(cm[i, i] / row.sum())
        assert c["precision"] == pytest.approx(cm[i, i] / cm[:, i].sum() if cm[:, i].sum() else 0.0)
    assert m["weighted_avg"]["recall"] == pytest.approx(m["accuracy"])
    with open(report / "per_class.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == m["class_names"] + ["macro_avg", "weighted_avg"]
    assert float(rows[3]["f1"]) == pytest.approx(m["per_class"][3]["f1"], abs=1e-6)
    off = cm - np.diag(np.diag(cm))
    assert m["most_confused"][0]["count"] == off.max()
    assert m["images_per_sec"] > 0 and m["is_sample"] is False and m["split"] == "test"
    assert m["weights"] == str(tiny_run / "best.weights.h5") and m["model"] == "shallownet"
    assert m["backend"] and m["device"] and m["checkpoint"]["kind"] == "best"
    # the run validated on the test set, so its best checkpoint was chosen there: said once, and kept
    assert m["checkpoint"]["selected_on"] == "the test set" and m["test_set_selected_checkpoint"] is True
    assert err.count("warning: best.weights.h5 is the epoch with the best val_loss on the test set") == 1
    assert "SELECTED on these test images" in out
    # what made the report, with no path of this machine for the data
    assert m["provenance"]["versions"]["keras"] and m["provenance"]["data"]["name"] == "cifar10"
    assert m["data"]["test_images"] == 500 and "/" not in json.dumps(m["data"])
    # calibration, from the same probabilities
    from suite.analysis import calibration
    assert m["calibration"]["ece"] == pytest.approx(calibration.expected_calibration_error(tiny_expected["probs"], y),
                                                    abs=1e-6)
    # what is printed is what report.txt holds
    assert out.strip() == (report / "report.txt").read_text().strip()
    assert f"accuracy {m['accuracy']:.4f}" in out and "images/s" in out and "most confused" in out
    assert f"{m['most_confused'][0]['true']:>10} -> {m['most_confused'][0]['predicted']}" in out
    for png in ("confusion.png", "misclassified.png", "reliability.png"):
        assert (report / png).read_bytes()[:8] == PNG and (report / png).stat().st_size > 20_000


def test_run_matches_the_runs_own_test_figures(tiny_run, cifar, tmp_path, capsys):
    """Like for like: the run evaluated its best weights on a stratified test subset; so do we."""
    from suite.config import load_config
    from suite.data.cifar10 import stratified_indices
    cfg = load_config(tiny_run / "config.yaml")
    idx = stratified_indices(cifar.y_test, cfg["data"]["test_subset"], cfg["training"]["seed"])
    subset = tmp_path / "test_subset.npz"
    np.savez(subset, x_train=cifar.x_train[:10], y_train=cifar.y_train[:10],
             x_test=cifar.x_test[idx], y_test=cifar.y_test[idx])
    code, out, err, report = evaluate_main(tmp_path, capsys, "--run", tiny_run, "--checkpoint", "best",
                                           "--data-path", subset)
    assert code == 0, err
    m, run = metrics_of(report), json.loads((tiny_run / "metrics.json").read_text())
    assert m["images"] == len(idx) == 200
    assert m["accuracy"] == pytest.approx(run["best_test_accuracy"], abs=1e-6)
    assert m["loss"] == pytest.approx(run["best_test_loss"], rel=1e-4)


def test_weights_with_sidecar_config_or_final(tiny_run, tiny_expected, tmp_path, capsys):
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", tiny_run / "best.weights.h5", "--limit", 200)
    assert code == 0, err
    m = metrics_of(report)
    assert m["model_from"] == "sidecar best.json" and "[from sidecar best.json]" in out
    assert report.name.startswith("eval-best-")
    np.testing.assert_allclose(np.load(report / "predictions.npz")["probs"], tiny_expected["probs"][:200], atol=1e-6)
    # the same model and scaling from the run's config instead of the sidecar
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", tiny_run / "best.weights.h5",
                                           "--config", tiny_run / "config.yaml", "--limit", 200)
    assert code == 0, err
    assert metrics_of(report)["accuracy"] == m["accuracy"] and metrics_of(report)["model_from"].startswith("--config")
    code, out, err, report = evaluate_main(tmp_path, capsys, "--run", tiny_run, "--limit", 50)  # final by default
    assert code == 0, err
    m = metrics_of(report)
    assert m["weights"].endswith("final.weights.h5") and m["checkpoint"]["kind"] == "final" and m["images"] == 50
    assert m["test_set_selected_checkpoint"] is False and "warning" not in err


def test_sample_says_it_is_the_sample(tiny_run, tmp_path, capsys):
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", tiny_run / "best.weights.h5", "--data", "sample")
    assert code == 0, err
    m = metrics_of(report)
    assert m["is_sample"] is True and m["split"] == "sample" and m["images"] == 500
    assert "not on the CIFAR-10 test set" in m["note"] and m["data"]["name"] == "cifar10-sample" and len(m["data"]["test_sha256"]) == 64
    assert "-sample-" in report.name
    assert "NOT the CIFAR-10 test set" in out and "SAMPLE loss" in out and "test loss" not in out


def test_standardize_statistics_are_the_ones_training_used(cifar):
    """--config with normalize: standardize takes the mean/std of the training images the run saw."""
    import argparse

    from suite.config import load_config
    from suite.data.cifar10 import prepare
    cfg = load_config(REPO / "configs/quickstart.yaml",
                      ["data.source=cifar10", "data.subset=40", "data.validation=0.25", "data.normalize=standardize"])
    args = argparse.Namespace(data="cifar10", data_path=None)
    x, _ = training_images(cfg, cifar, args)
    splits = prepare(cfg["data"], cfg["training"]["seed"])
    assert (x == splits.x_train).all() and len(x) == 300


# ---------------------------------------------------------------------------- Keras 2 legacy weights

def test_legacy_round_trip_predicts_as_the_original(legacy_file, cifar, tmp_path, capsys):
    path, probs = legacy_file
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", path, "--model", "allcnn_c_study",
                                           "--normalize", "scale", "--limit", LEGACY_IMAGES)
    assert code == 0, err
    saved = np.load(report / "predictions.npz")
    np.testing.assert_allclose(saved["probs"], probs, atol=1e-5)
    assert (saved["y_pred"] == probs.argmax(1)).all()
    m = metrics_of(report)
    assert m["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == cifar.y_test[:LEGACY_IMAGES]))
    assert m["weights_format"] == "keras2" and m["legacy"]["layers"] == 9
    assert "Keras 2 HDF5 (legacy)" in out and "9 weighted layers loaded by order" in out
    assert report.name.startswith("eval-all_cnn_weights_test-")


def test_legacy_loader_agrees_with_keras_and_reads_every_layout(tmp_path):
    """Whole-model files, chunked layer_names and Theano kernels load to the original weights;
    and Keras 3's own reader of Keras 2 files loads the test's file to the same weights."""
    from suite import models
    net = models.create("lenet")
    he_random_weights(net, seed=1)
    want = net.get_weights()
    layouts = {"plain.h5": {}, "whole.h5": {"whole_model": True, "chunk_layer_names": True},
               "theano.h5": {"backend": "theano", "flip_kernels": True}}
    for name, kwargs in layouts.items():
        write_keras2(tmp_path / name, net, **kwargs)
        assert legacy_weights.detect_format(tmp_path / name) == legacy_weights.LEGACY
        fresh = models.create("lenet")
        info = legacy_weights.load_legacy(fresh, tmp_path / name)
        assert info["layers"] == 4 and info["theano_kernels_flipped"] == (name == "theano.h5")
        for a, b in zip(fresh.get_weights(), want):
            np.testing.assert_array_equal(a, b)
    by_keras = models.create("lenet")
    by_keras.load_weights(str(tmp_path / "plain.h5"))
    for a, b in zip(by_keras.get_weights(), want):
        np.testing.assert_array_equal(a, b)


def test_legacy_count_and_missing_dataset_errors(legacy_file, tmp_path):
    from suite import models
    path, _ = legacy_file
    short = tmp_path / "short.h5"
    shutil.copy(path, short)
    with h5py.File(short, "a") as f:
        names = list(f.attrs["layer_names"])
        f.attrs["layer_names"] = np.array([n for n in names if n != b"conv2d_9"])
    with pytest.raises(UserError) as e:
        legacy_weights.load_legacy(models.create("allcnn_c_study"), short)
    assert "file: 8 layers with weights, model 'allcnn_c_study': 9" in str(e.value)
    assert "the first 8 match" in str(e.value) and "'conv2d" in str(e.value)
    broken = tmp_path / "broken.h5"
    shutil.copy(path, broken)
    with h5py.File(broken, "a") as f:
        del f["conv2d_3/conv2d_3/bias:0"]
    with pytest.raises(UserError, match=r"layer 'conv2d_3' lists weight 'conv2d_3/bias:0' .*truncated or corrupt"):
        legacy_weights.load_legacy(models.create("allcnn_c_study"), broken)


# ---------------------------------------------------------------------------- errors

def test_keras3_weights_of_another_architecture(tiny_run, tmp_path, capsys):
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", tiny_run / "best.weights.h5", "--model", "lenet")
    line = one_error_line(code, err, report)
    assert "does not fit model 'lenet'" in line and "weighted layer 1" in line
    assert "(3, 3, 3, 32)" in line and "(5, 5, 3, 20)" in line


def test_keras_load_weights_errors_become_one_line(tiny_run):
    """Without the shape check first, Keras' own multi-line error is caught and rephrased."""
    from suite import models
    with pytest.raises(UserError) as e:
        legacy_weights.load_keras3(models.create("lenet"), tiny_run / "best.weights.h5", check_first=False)
    message = str(e.value)
    assert "\n" not in message and "Keras could not load it into model 'lenet'" in message
    assert "(5, 5, 3, 20)" in message and "(3, 3, 3, 32)" in message and "Target variable" not in message


def test_legacy_weights_of_another_architecture(legacy_file, tmp_path, capsys):
    path, _ = legacy_file
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", path, "--model", "lenet")
    line = one_error_line(code, err, report)
    assert "weighted layer 1 is 'conv2d_1' with shapes (3, 3, 3, 96), (96,) in the file" in line
    assert "(5, 5, 3, 20), (20,) in the model" in line and "file: 9 layers with weights, model 'lenet': 4" in line


@pytest.mark.parametrize("fmt", ["keras3", "keras2"])
@pytest.mark.parametrize("damage", ["half", "random"])
def test_truncated_or_corrupt_files(fmt, damage, tiny_run, legacy_file, tmp_path, capsys):
    source = tiny_run / "best.weights.h5" if fmt == "keras3" else legacy_file[0]
    bad = tmp_path / ("bad.weights.h5" if fmt == "keras3" else "bad.hdf5")
    data = source.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "half" else np.random.default_rng(0).bytes(len(data) // 4))
    shutil.copy(tiny_run / "best.json", tmp_path / "bad.json")
    code, out, err, report = evaluate_main(tmp_path, capsys, "--weights", bad, "--model", "shallownet")
    line = one_error_line(code, err, report)
    assert f"{bad}: not a readable HDF5 weights file (truncated or corrupt" in line


def test_missing_sidecar_and_no_model(tiny_run, legacy_file, tmp_path, capsys):
    lone = tmp_path / "lone.weights.h5"
    shutil.copy(tiny_run / "best.weights.h5", lone)
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--weights", lone)))
    assert "no sidecar lone.json beside it" in line and "--model" in line
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--weights", legacy_file[0])))
    assert "Keras 2 weights carry no model description" in line and "--model allcnn_c_study" in line


def test_no_data_reachable(tiny_run, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CIFAR10_PATH", str(empty))
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--run", tiny_run)))
    assert f"CIFAR10_PATH: {empty} holds no CIFAR-10 python batches" in line


def test_unknown_model_and_bad_arguments(legacy_file, tiny_run, tmp_path, capsys):
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--weights", legacy_file[0], "--model", "allcnn")))
    assert "unknown model 'allcnn'" in line and "allcnn_c_study" in line
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--weights", legacy_file[0],
                                                   "--model", "allcnn_c_study", "--param", "dropout=2")))
    assert "dropout must be a number in [0, 1)" in line
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--run", tmp_path / "nowhere")))
    assert "no such folder" in line
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--weights", tmp_path / "none.weights.h5")))
    assert "no such weights file" in line
    line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, "--run", tiny_run, "--normalize", "scale")))
    assert "--normalize go with --model" in line
    for flag in ("--pretrained", "--run", "--weights"):
        line = one_error_line(*_drop_out(evaluate_main(tmp_path, capsys, flag, "")))
        assert f"{flag} is empty" in line


def _drop_out(result):
    code, _, err, report = result
    return code, err, report


def test_errors_from_a_real_process_have_no_traceback(tmp_path, legacy_file):
    """As a user sees it: exit status 2 and the error line last on stderr, no traceback
    (TensorFlow's C++ start-up lines may come before it once Keras is imported)."""
    random = tmp_path / "random.weights.h5"
    random.write_bytes(np.random.default_rng(1).bytes(4096))
    for args, expect, only_line in (
            (["--weights", random], "not a readable HDF5 weights file", True),        # before Keras is imported
            (["--weights", legacy_file[0], "--model", "nosuch"], "unknown model 'nosuch'", False)):
        proc = subprocess.run([sys.executable, "evaluate.py", *map(str, args), "--out-dir", str(tmp_path / "out")],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[-1].startswith("error: ") and expect in lines[-1]
        assert sum(line.startswith("error:") for line in lines) == 1
        if only_line:
            assert len(lines) == 1, proc.stderr
        assert proc.stdout == "" and not (tmp_path / "out").exists()
