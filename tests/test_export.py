"""export.py: the .keras file loads in a process that cannot import the suite, the SavedModel
takes uint8 images, and both predict what the suite predicts; the ONNX and TFLite files give
the Keras model's classes and probabilities in onnxruntime and the TFLite interpreter."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from suite.commands import export
from suite import models
from conftest import train_run
from suite.models.pretrained import load_with_sidecar
from suite.data.preprocessing import input_scaling, wrap
from suite.workflows.export import CHECK_IMAGES, PACKAGES, TOLERANCE, portable_copy

# Loads the .keras file with every module of the suite made unimportable.
KERAS_ONLY = textwrap.dedent("""
    import importlib.abc, sys
    class NoSuite(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("models", "suite", "callbacks", "train", "evaluate", "export"):
                raise ImportError("the suite's code is not available here: " + name)
    sys.meta_path.insert(0, NoSuite())
    import keras, numpy as np
    model = keras.saving.load_model(sys.argv[1])
    np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
""")


def exported(tmp_path, capsys, *args):
    out = tmp_path / "exported"
    assert export.main([*map(str, args), "-o", str(out)]) == 0
    capsys.readouterr()
    return out


def check_both(out, name, images, expected, tmp_path):
    np.save(tmp_path / "x.npy", images)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-I", "-c", KERAS_ONLY, str(out / f"{name}.keras"), str(tmp_path / "x.npy"),
                          str(tmp_path / "p.npy")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5)

    import tensorflow as tf
    loaded = tf.saved_model.load(str(out / f"{name}_savedmodel"))  # kept: its variables live as long as it does
    np.testing.assert_allclose(loaded.serve(tf.constant(images)).numpy(), expected, atol=1e-5)


def test_shipped_all_cnn_c_exports_and_predicts_the_same(tmp_path, capsys, cifar):
    out = exported(tmp_path, capsys, "--pretrained", "allcnn_c")
    images = cifar.x_test[:64]
    check_both(out, "allcnn_c", images, models.create("allcnn_c", pretrained=True).predict(images, verbose=0), tmp_path)
    assert (out / "allcnn_c_classes.txt").read_text().split() == cifar.class_names


def test_a_resnet_with_parameter_free_shortcuts_exports_too(tmp_path, capsys, cifar):
    code, run_dir = train_run(tmp_path / "runs", "model.name=resnet20", "model.params={}", "data.source=cifar10",
                              "data.subset=10", "data.test_subset=5", "data.normalize=standardize",
                              "training.epochs=1", name="resnet")
    assert code == 0
    out = exported(tmp_path, capsys, "--run", run_dir, "--checkpoint", "final")
    net, sidecar = load_with_sidecar(run_dir / "final.weights.h5", models.create)
    suite_model = wrap(net, input_scaling(sidecar["preprocessing"]))
    images = cifar.x_test[:32]
    check_both(out, run_dir.name, images, suite_model.predict(images, verbose=0), tmp_path)


def test_an_existing_folder_is_not_touched(tmp_path, capsys):
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "keep.txt").write_text("mine")
    code = export.main(["--pretrained", "allcnn_c", "-o", str(tmp_path / "exported")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "exists" in err[0]
    assert [p.name for p in (tmp_path / "exported").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("name", ["resnet20", "airbench94"])  # ZeroPadShortcut; WhiteningConv, PartialDirac
def test_portable_copy_has_only_keras_layers(name):
    net = models.create(name)
    assert any(not type(layer).__module__.startswith("keras") for layer in net.layers)
    copy = portable_copy(net)
    assert all(type(layer).__module__.startswith("keras") for layer in copy.layers)
    assert "suite>" not in json.dumps(copy.get_config())
    images = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(copy.predict(images, verbose=0), net.predict(images, verbose=0), atol=1e-6)


def in_its_runtime(fmt, path, images):
    """What an exported file computes, run here in its own runtime (not the suite's code)."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["images"]  # uint8 images, nothing else to feed
        return session.run(None, {"images": images})[0]
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    given = interpreter.get_input_details()[0]
    assert given["dtype"] == np.uint8
    interpreter.resize_tensor_input(given["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


# airbench94: WhiteningConv and exact GELU (Erfc, which ONNX lacks); resnet20: ZeroPadShortcut.
@pytest.mark.parametrize("fmt, name", [("onnx", "airbench94"), ("tflite", "resnet20")])
def test_onnx_and_tflite_files_match_keras_in_their_own_runtimes(tmp_path, capsys, cifar, fmt, name):
    out = tmp_path / "exported"
    assert export.main(["--pretrained", name, "--format", fmt, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "the Keras model's class for 1,000 of 1,000" in printed and "first 1,000 of CIFAR-10's" in printed
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.{fmt}", f"{name}_classes.txt"]
    images = cifar.x_test[:CHECK_IMAGES]
    expected = models.create(name, pretrained=True).predict(images, verbose=0)
    got = in_its_runtime(fmt, out / f"{name}.{fmt}", images)
    assert (got.argmax(1) == expected.argmax(1)).all()
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_a_format_without_its_packages_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(PACKAGES, "onnx", ("tf2onnx", "no_such_onnx_package"))
    code = export.main(["--pretrained", "allcnn_c", "--format", "onnx", "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --format onnx needs tf2onnx, no_such_onnx_package; missing: "
                                 "no_such_onnx_package (pip install 'cifar10-cnn-suite[export]')"]
    assert not (tmp_path / "x").exists()
