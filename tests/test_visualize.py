"""visualize.py and Grad-CAM: the heatmap lights up the region a class score depends on (under
TensorFlow and JAX), and the commands draw filters, feature maps and heatmaps for the
shipped All-CNN-C and a ResNet run."""

import os
import subprocess
import sys
import textwrap

import pytest

from suite.commands import visualize
from conftest import REPO, train_run

PNG = b"\x89PNG\r\n\x1a\n"

# A network whose class-0 score is the mean intensity inside one known rectangle and whose
# class-1 score is the mean outside it: Grad-CAM for class 0 must put its mass in the
# rectangle, for class 1 outside. The split happens before the conv Grad-CAM looks at, so
# the conv's two maps are the two regions, and only the gradient tells which one counts.
REGION_CHECK = textwrap.dedent("""
    import keras, numpy as np
    from keras import ops
    from suite.analysis.gradcam import conv_layer, grad_cam

    class RegionSplit(keras.layers.Layer):
        def __init__(self, mask, **kwargs):
            super().__init__(**kwargs)
            self.mask = np.asarray(mask, "float32")[None, :, :, None]

        def call(self, x):
            m = ops.mean(x, axis=-1, keepdims=True)
            return ops.concatenate([m * self.mask, m * (1 - self.mask)], axis=-1)

    mask = np.zeros((32, 32))
    mask[4:12, 18:28] = 1
    inputs = keras.Input((32, 32, 3))
    x = RegionSplit(mask)(inputs)
    x = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    net = keras.Model(inputs, keras.layers.Activation("softmax", name="predictions")(x))
    net.get_layer("last_conv").set_weights([np.eye(2, dtype="float32")[None, None]])
    net.get_layer("logits").set_weights([np.eye(2, dtype="float32"), np.zeros(2, "float32")])
    images = np.random.default_rng(0).uniform(0.2, 1.0, (4, 32, 32, 3)).astype("float32")
    for cls, where in ((0, mask), (1, 1 - mask)):
        cam = grad_cam(net, conv_layer(net), images, [cls] * 4)
        share = (cam * where).sum(axis=(1, 2)) / cam.sum(axis=(1, 2))
        assert cam.max() == 1.0 and (share > 0.99).all(), (cls, share)
    print("region ok", keras.backend.backend())
""")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_grad_cam_lights_up_the_region_the_class_score_depends_on(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", REGION_CHECK], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"region ok {backend}" in run.stdout


def draw(tmp_path, capsys, *args):
    """Run visualize.main; return (exit code, the folder it printed, stderr)."""
    code = visualize.main([*map(str, args), "--out-dir", str(tmp_path / "vis")])
    out, err = capsys.readouterr()
    folder = out.strip().splitlines()[-1] if code == 0 else None
    return code, folder, err


def pngs(folder):
    from pathlib import Path
    files = sorted(Path(folder).glob("*.png"))
    assert files and all(f.read_bytes()[:8] == PNG and f.stat().st_size > 5_000 for f in files)
    return [f.name for f in files]


def test_filters_features_and_gradcam_of_the_shipped_all_cnn_c(tmp_path, capsys, cifar_dir):
    code, folder, _ = draw(tmp_path, capsys, "filters", "--pretrained", "allcnn_c")
    assert code == 0 and pngs(folder) == ["filters-conv2d.png"]
    code, folder, _ = draw(tmp_path, capsys, "filters", "--pretrained", "allcnn_c", "--layer", "conv2d_3")
    assert code == 0 and pngs(folder) == ["filters-conv2d_3.png"]
    code, folder, _ = draw(tmp_path, capsys, "features", "--pretrained", "allcnn_c", "--layer", "conv2d_1",
                           "--index", "5")
    assert code == 0 and pngs(folder) == ["features-conv2d_1.png"]
    code, folder, _ = draw(tmp_path, capsys, "gradcam", "--pretrained", "allcnn_c", "--count", "3")
    assert code == 0 and pngs(folder) == ["gradcam-conv2d_8.png"]
    assert "allcnn_c-gradcam" in folder
    code, folder, _ = draw(tmp_path, capsys, "gradcam", "--pretrained", "shallownet", "--mistakes", "3")  # a fast net
    assert code == 0 and pngs(folder) == ["gradcam-conv2d.png"]


def test_gradcam_of_a_resnet_run_at_a_named_layer(tmp_path, capsys, cifar_dir):
    code, run_dir = train_run(tmp_path / "runs", "model.name=resnet20", "model.params={}", "data.source=cifar10",
                              "data.subset=10", "data.test_subset=5", "training.epochs=1", name="tinyresnet")
    assert code == 0
    code, folder, _ = draw(tmp_path, capsys, "gradcam", "--run", run_dir, "--checkpoint", "final", "--count", "2",
                           "--layer", "conv2d_12")
    assert code == 0 and pngs(folder) == ["gradcam-conv2d_12.png"]


@pytest.mark.parametrize("args, message", [
    (["gradcam", "--pretrained", "allcnn_c", "--layer", "dense"], "not a conv layer of allcnn_c; its conv layers are"),
    (["filters", "--pretrained", "resnet110"], "no pretrained weights named 'resnet110'"),
    (["features", "--pretrained", "allcnn_c", "--index", "10000"], "--index 10000: the test set has images 0..9999"),
    (["gradcam", "--pretrained", "allcnn_c", "--count", "0"], "--count must be >= 1"),
])
def test_bad_input_is_one_line_and_writes_no_folder(tmp_path, capsys, cifar_dir, args, message):
    code, _, err = draw(tmp_path, capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert not (tmp_path / "vis").exists() or not list((tmp_path / "vis").iterdir())
