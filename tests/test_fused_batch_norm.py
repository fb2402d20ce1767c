"""TensorFlow's fused batch norm in place of Keras' (``suite.training.runtime.fuse_batch_norm``):
the same outputs, gradients and moving statistics to float rounding, the same files, and
only where the runtime asks for it."""

import numpy as np
import pytest

from suite.core.quiet import import_keras
from suite.training.runtime import Runtime, fuse_batch_norm

keras = import_keras()
import tensorflow as tf  # noqa: E402

from suite import models  # noqa: E402

FUSED = Runtime("tensorflow", ["cpu"], "cpu", "float32", False, "none", fused_batch_norm=True)
KERAS = Runtime("tensorflow", ["cpu"], "cpu", "float32", False, "none", fused_batch_norm=False)


def twin_layers(images, **kwargs):
    """A Keras batch norm and a fused copy with the same (non-trivial) weights."""
    rng = np.random.default_rng(0)
    plain, fused = (keras.layers.BatchNormalization(**kwargs) for _ in range(2))
    for layer in (plain, fused):
        layer.build(images.shape)
    for w in plain.weights:
        low = 0.5 if "variance" in w.path else -1.0
        w.assign(rng.uniform(low, 2.0, w.shape).astype("float32"))
    fused.set_weights(plain.get_weights())
    assert fuse_batch_norm(fused, FUSED) == 1
    return plain, fused


@pytest.mark.parametrize("kwargs", [dict(momentum=0.9, epsilon=1e-5),                   # models/common.py
                                    dict(momentum=0.6, epsilon=1e-12, scale=False)])   # airbench94's
@pytest.mark.parametrize("training", [True, False])
def test_the_fused_kernel_gives_keras_results(fixed_batch, kwargs, training):
    x = tf.constant(fixed_batch[0][:16].astype("float32") / 255.0 * 4.0 - 1.0)  # real images, not unit-scaled
    plain, fused = twin_layers(x, **kwargs)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = [layer(x, training=training) for layer in (plain, fused)]
        losses = [tf.reduce_sum(y * tf.sin(3.0 * x)) for y in outputs]
    np.testing.assert_allclose(outputs[1], outputs[0], atol=2e-5)
    grads = [tape.gradient(loss, [x, *layer.trainable_weights]) for loss, layer in zip(losses, (plain, fused))]
    for a, b in zip(*grads):  # sums over 16,384 pixels: float32's rounding, relative to the largest
        np.testing.assert_allclose(b, a, atol=1e-4 * np.abs(a).max())
    # the moving averages moved (in training) by the same amounts, with Keras' biased batch
    # variance: on 8 pixels a channel the unbiased one would be 8/7 of it
    small = x[:2, :2, :2]
    plain(small, training=training), fused(small, training=training)
    for a, b in zip(plain.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5)
    if training:
        assert not np.allclose(plain.moving_mean.numpy(), twin_layers(x, **kwargs)[0].moving_mean.numpy())


def test_a_fused_network_saves_the_same_file_and_predicts_alike(tmp_path, fixed_batch):
    """ResNet-20's weights file written from a fused network loads into a plain one, which
    predicts what the fused one predicts."""
    fused = models.create("resnet20")
    assert fuse_batch_norm(fused, FUSED) == 19
    x = fixed_batch[0].astype("float32") / 255.0
    fused.fit(x, fixed_batch[1], epochs=1, batch_size=16, verbose=0) if fused.compile(
        optimizer="sgd", loss="sparse_categorical_crossentropy") is None else None
    fused.save_weights(tmp_path / "fused.weights.h5")
    plain = models.create("resnet20")
    plain.load_weights(tmp_path / "fused.weights.h5")
    np.testing.assert_allclose(plain.predict(x, verbose=0), fused.predict(x, verbose=0), atol=1e-5)


def test_only_when_the_runtime_asks_and_only_the_layers_it_covers(fixed_batch):
    net = models.create("resnet20")
    assert fuse_batch_norm(net, KERAS) == 0
    assert all("call" not in vars(layer) for layer in net._flatten_layers())
    renorm = keras.layers.BatchNormalization(renorm=True)
    assert fuse_batch_norm(renorm, FUSED) == 0
    # a batch norm over features (rank 2) keeps Keras' computation, fused or not
    x = tf.constant(fixed_batch[0][:8].reshape(8, -1)[:, :12].astype("float32"))
    plain, fused = twin_layers(x)
    np.testing.assert_array_equal(fused(x, training=True), plain(x, training=True))


@pytest.mark.fast
def test_the_header_says_which_batch_norm_and_a_bad_value_is_one_line(capsys):
    from suite.commands import train

    quick = ["--config", "configs/quickstart.yaml", "--dry-run"]  # MiniVGGNet on the shipped sample
    assert train.main(quick) == 0
    assert "batch norm: TensorFlow's fused kernel (auto: fused under TensorFlow on the CPU)" in capsys.readouterr().out
    assert train.main([*quick, "--set", "runtime.fused_batch_norm=false"]) == 0
    assert "batch norm: Keras' ops (runtime.fused_batch_norm in the config)" in capsys.readouterr().out
    assert train.main([*quick, "--set", "runtime.fused_batch_norm=sometimes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runtime.fused_batch_norm" in err[0] and "sometimes" in err[0]
