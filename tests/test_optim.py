"""Optimizers, the two kinds of weight decay, and mixed precision, through train.py's own pieces."""

import copy
import json

import keras
import numpy as np
import pytest

from suite import models
from conftest import train_run
from suite.config import DEFAULTS
from suite.training.optim import build_optimizer, l2_for_model


def config(**optimizer):
    cfg = copy.deepcopy(DEFAULTS)
    cfg["optimizer"].update(optimizer)
    return cfg


@pytest.mark.parametrize("name,cls", [("sgd", keras.optimizers.SGD), ("adam", keras.optimizers.Adam),
                                      ("adamw", keras.optimizers.AdamW), ("rmsprop", keras.optimizers.RMSprop)])
def test_every_optimizer_takes_a_step(name, cls, fixed_batch):
    opt = build_optimizer(config(name=name, lr=0.01), 0.01)
    assert isinstance(opt, cls)
    net = models.create("shallownet")
    net.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
    x, y = fixed_batch
    before = [w.copy() for w in net.get_weights()]
    net.train_on_batch(x / 255.0, y)
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_sgd_momentum_and_nesterov_are_passed_on():
    opt = build_optimizer(config(name="sgd", momentum=0.8, nesterov=True), 0.1)
    assert opt.momentum == 0.8 and opt.nesterov is True


def test_l2_weight_decay_is_a_penalty_on_kernels(fixed_batch):
    cfg = config(name="sgd", weight_decay=0.001)
    assert l2_for_model(cfg) == 0.001 and build_optimizer(cfg, 0.1).weight_decay is None
    net = models.create("shallownet", weight_decay=l2_for_model(cfg))
    net(fixed_batch[0][:1] / 255.0)
    kernels = [layer.kernel for layer in net.layers if hasattr(layer, "kernel")]
    expected = 0.001 / 2 * sum(float(np.sum(np.square(k.numpy()))) for k in kernels)
    assert float(sum(net.losses)) == pytest.approx(expected, rel=1e-5)


def test_decoupled_weight_decay_is_the_optimizers(fixed_batch):
    for cfg in (config(name="sgd", weight_decay=0.01, weight_decay_mode="decoupled"), config(name="adamw", weight_decay=0.01)):
        assert l2_for_model(cfg) == 0.0
        opt = build_optimizer(cfg, 0.1)
        assert opt.weight_decay == 0.01
        net = models.create("shallownet")
        net.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
        net.train_on_batch(fixed_batch[0] / 255.0, fixed_batch[1])
        dense = net.get_layer("logits")
        assert not opt._use_weight_decay(dense.bias) and opt._use_weight_decay(dense.kernel)


def test_mixed_precision_keeps_the_softmax_and_loss_in_float32(tmp_path, cifar_dir):
    try:
        code, run = train_run(tmp_path, "model.name=minivggnet", "data.source=cifar10", "data.subset=5",
                              "data.test_subset=2", "training.epochs=1", "training.batch_size=25",
                              "runtime.precision=mixed_bfloat16")
        assert code == 0
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["precision"] == "mixed_bfloat16" and np.isfinite(metrics["final_test_loss"])
        net = models.create("minivggnet")
        assert net.layers[1].compute_dtype == "bfloat16" and net.layers[-1].compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
