"""airbench94's pieces, each against the source's formula (Jordan 2024, legacy/airbench94.py):
the patch-whitening layer, the partial Dirac init, the optimizer's learning-rate groups,
time-limited variables, coupled decay and lookahead, the warmup schedule, alternating
flip with reflected translation in both input pipelines, and test-time augmentation."""

import numpy as np
import pytest

import keras
from keras import ops

from suite import models
from suite.models.airbench import PartialDirac, WhiteningConv
from suite.training.param_groups import Extras, extend
from suite.data.pipeline import Batches, EpochCounter, tf_batches
from suite.data.preprocessing import ALTERNATING, RandomFlipCrop
from suite.training.schedules import LinearWarmupDecay
from suite.analysis.tta import combine, views

pytestmark = pytest.mark.fast


def test_the_network_has_the_source_shape_and_size():
    net = models.create("airbench94")
    assert net.output_shape == (None, 10)
    assert net.get_layer("whiten").output.shape[1:] == (31, 31, 24)
    assert net.get_layer("pool").output.shape[1:] == (1, 1, 256)
    # the whitening bias (its kernel is not trained), convs 24*64*9 + 64*64*9 + 64*256*9 + 256*256*9 * 3,
    # BN biases, head 256*10
    trainable = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
    assert trainable == 24 + 13824 + 36864 + 147456 + 3 * 589824 + 2 * (64 + 256 + 256) + 2560
    assert [v.path for v in net.non_trainable_variables][0] == "whiten/kernel"


def test_whitening_makes_the_patches_uncorrelated():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(3, 3))
    images = (rng.normal(size=(400, 8, 8, 3)) @ mix).astype("float32")  # correlated channels
    layer = WhiteningConv(eps=0.0)
    layer.build((None, 8, 8, 3))
    layer.adapt(images)
    out = ops.convert_to_numpy(layer(images))
    first = out[..., :12].reshape(-1, 12)
    np.testing.assert_allclose(first.T @ first / len(first), np.eye(12), atol=1e-3)
    np.testing.assert_allclose(out[..., 12:], -out[..., :12], atol=1e-6)


def test_partial_dirac_keeps_the_input_channels_and_draws_the_rest():
    kernel = ops.convert_to_numpy(PartialDirac(seed=1)((3, 3, 4, 6)))
    identity = np.zeros((3, 3, 4, 4))
    identity[1, 1, range(4), range(4)] = 1
    np.testing.assert_array_equal(kernel[..., :4], identity)
    bound = 1 / np.sqrt(36)
    assert np.all(np.abs(kernel[..., 4:]) <= bound) and np.std(kernel[..., 4:]) > bound / 4


def variables():
    return [keras.Variable(np.full(3, 1.0, "float32"), name="kernel"), keras.Variable(np.full(2, 2.0, "float32"), name="beta")]


def steps(optimizer, weights, grads, n):
    """``n`` steps of the same gradients; the values after each."""
    optimizer.build(weights)
    out = []
    for _ in range(n):
        optimizer.apply([ops.convert_to_tensor(g) for g in grads], weights)
        out.append([ops.convert_to_numpy(w).copy() for w in weights])
    return out


def test_lr_scale_and_coupled_decay_as_pytorch_groups():
    """Plain SGD: w -= lr * scale * (g + decay / scale * w): the factor scales the step, not the decay."""
    weights = variables()
    opt = extend(keras.optimizers.SGD(0.1), Extras(lr_scale={"*beta": 4.0}, coupled_decay=0.5))
    (after,) = steps(opt, weights, [np.ones(3, "float32"), np.ones(2, "float32")], 1)
    np.testing.assert_allclose(after[0], 1.0 - 0.1 * (1 + 0.5 * 1.0))
    np.testing.assert_allclose(after[1], 2.0 - 0.1 * 4 * (1 + 0.5 / 4 * 2.0))


def test_a_time_limited_variable_stops_with_its_momentum():
    weights = variables()
    opt = extend(keras.optimizers.SGD(0.1, momentum=0.9), Extras(train_epochs={"beta": 2}, steps_per_epoch=3))
    history = steps(opt, weights, [np.ones(3, "float32"), np.ones(2, "float32")], 9)
    beta = [h[1][0] for h in history]
    assert beta[5] < beta[4] < 2.0  # 6 steps: 2 epochs of 3
    assert beta[5] == beta[6] == beta[8]  # no update at all afterwards, not even by momentum
    kernel = [h[0][0] for h in history]
    assert kernel[8] < kernel[7]


def test_a_pattern_that_matches_nothing_is_one_line():
    from suite.core.errors import UserError
    opt = extend(keras.optimizers.SGD(0.1), Extras(lr_scale={"*gamma": 2.0}))
    with pytest.raises(UserError, match=r"optimizer.lr_scale: '\*gamma' matches no trained variable"):
        opt.build(variables())


def test_lookahead_follows_the_source():
    """The source: every k steps slow = lerp(slow, fast, 1 - decay * (t/T)**3), fast = slow;
    at T, fast = slow."""
    k, decay, total, lr = 2, 0.8, 7, 0.1
    weights = [keras.Variable(np.array([1.0, -1.0], "float32"), name="w")]
    grad = np.array([0.5, 0.25], "float32")
    opt = extend(keras.optimizers.SGD(lr), Extras(lookahead_every=k, lookahead_decay=decay, lookahead_power=3,
                                                  total_steps=total))
    got = [h[0] for h in steps(opt, weights, [grad], total)]
    fast = slow = np.array([1.0, -1.0])
    for t in range(1, total + 1):
        fast = fast - lr * grad
        if t % k == 0:
            slow = slow + (1 - decay * (t / total) ** 3) * (fast - slow)
            fast = slow
        if t == total:
            fast = slow
        np.testing.assert_allclose(got[t - 1], fast, rtol=1e-6, err_msg=f"step {t}")


def test_linear_warmup_is_the_source_schedule():
    total, schedule = 476, LinearWarmupDecay(1.0, 476, 0.23, 0.2, 0.07)
    warmup = int(total * 0.23)

    def source(step):
        if step < warmup:
            frac = step / warmup
            return 0.2 * (1 - frac) + 1.0 * frac
        frac = (step - warmup) / (total - warmup)
        return 1.0 * (1 - frac) + 0.07 * frac

    for step in (0, 1, 50, warmup - 1, warmup, 300, total - 1, total):
        assert float(ops.convert_to_numpy(schedule(step))) == pytest.approx(source(step), rel=1e-5), step


def alternating(pad=2):
    return RandomFlipCrop(pad, ALTERNATING, (0, 0, 0), seed=3, reflect=True)


def flipped_in(batch, x, idx):
    """Per image of ``batch`` (made from ``x[idx]`` with no shift): mirrored or not."""
    return [bool(np.array_equal(b, x[i, :, ::-1])) for b, i in zip(batch, idx)]


@pytest.mark.parametrize("feeder", ["tf.data", "numpy"])
def test_alternating_flip_mirrors_each_image_every_other_epoch(feeder):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    y = np.zeros(64, "int64")
    layer = RandomFlipCrop(0, ALTERNATING, (0, 0, 0), seed=3)
    seen = {}
    for epoch in (0, 1, 2):
        if feeder == "tf.data":
            batch = next(iter(tf_batches(x, y, 64, 5, EpochCounter(epoch), 0, layer)))[0].numpy()
        else:
            data = Batches(x, y, 64, seed=5, flip_crop=layer)
            data.start(epoch)
            batch = data[0][0]
        order = np.random.default_rng([5, epoch]).permutation(64)
        seen[epoch] = dict(zip(order, flipped_in(batch, x, order)))
    first = np.array([seen[0][i] for i in range(64)])
    assert 16 < first.sum() < 48
    assert all(seen[1][i] != seen[0][i] and seen[2][i] == seen[0][i] for i in range(64))
    np.testing.assert_array_equal(first, layer.first_flips(64).astype(bool))


def test_reflected_translation_moves_pixels_without_a_border_colour():
    x = np.arange(5 * 5 * 1, dtype=np.uint8).reshape(1, 5, 5, 1) * 9
    layer = alternating(pad=2)
    layer.build((None, 5, 5, 1))
    padded = ops.convert_to_numpy(layer.padded(x))
    np.testing.assert_array_equal(padded[0, :, :, 0], np.pad(x[0, :, :, 0], 2, mode="reflect"))
    pixels = padded.reshape(-1, 1)
    for shift in range(layer.shifts):
        down, right = divmod(shift, 5)  # the table's order: shifts of -2..2 down, then right
        window = padded[0, 4 - down:9 - down, 4 - right:9 - right, 0]
        for flipped in (0, 1):
            moved = ops.convert_to_numpy(layer.apply(pixels, np.array([0]), np.array([layer.move(shift, flipped)])))
            np.testing.assert_array_equal(moved[0, :, :, 0], window[:, ::-1] if flipped else window,
                                          err_msg=f"shift {shift}, flipped {flipped}")


def test_tta_views_are_the_source_views():
    x = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    assert [w for w, _ in views(x, 0)] == [1.0]
    level1 = views(x, 1)
    np.testing.assert_array_equal(level1[1][1], x[:, :, ::-1])
    level2 = views(x, 2)
    assert [w for w, _ in level2] == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(level2[2][1], padded[:, :4, :4])
    np.testing.assert_array_equal(level2[5][1], padded[:, 2:6, 2:6, :][:, :, ::-1])


def test_tta_averages_logits():
    logits = np.random.default_rng(2).normal(size=(3, 5, 10))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    weights = [0.5, 0.25, 0.25]
    mean_logits = sum(w * z for w, z in zip(weights, logits))
    expected = np.exp(mean_logits) / np.exp(mean_logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(combine(list(zip(weights, probs))), expected, rtol=1e-5)
