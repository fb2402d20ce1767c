"""CIFAR ResNets of He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016, arXiv:1512.03385, section 4.2; pre-activation units (``preact=True``) of He,
Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016, arXiv:1603.05027.

Conv16 3x3 -> three stages of n basic blocks (16, 32, 64 filters; stride 2 entering stages
2 and 3) -> GAP -> Dense(classes) -> softmax; depth 6n+2. He-normal init, no conv bias
(every conv feeds a BN). Where the shape changes the shortcut is option A (stride-2
subsampling + zero channel padding, parameter-free, the paper's CIFAR choice) or B (1x1
projection + BN; in pre-activation nets the projection reads the pre-activated input and
has no BN of its own). Pre-activation adds a final BN-ReLU before the pooling.

Measured parameters, option A, 10 classes, ``count_params()`` (which adds the BN moving
statistics; learnable only in brackets, what the paper counts): resnet20 271,098
(269,722); resnet32 466,426 (464,154); resnet44 661,754 (658,586); resnet56 857,082
(853,018); resnet110 1,736,058 (1,727,962). ``resnet`` takes any ``depth`` (default 20).
Option B adds 2,944; ``preact=True`` keeps the option-A count (option B: +2,560).
Reported CIFAR-10 test accuracy (He et al. 2015, Table 6, option A): 0.27M 91.25%,
0.46M 92.49%, 0.66M 92.83%, 0.85M 93.03%, 1.7M 93.57% (best of 5, mean 93.39%);
pre-activation ResNet-110: 93.63% (He et al. 2016, Table 3, *recalled*).

Ablation knobs (``suite.models.common``): ``activation``, ``kernel_initializer`` (also the
classifier's, He-normal as the convs by default), ``batch_norm`` (off: every BN goes and
the convs get biases), ``downsample`` (``pool``: 2x2 max pooling before the first block
of stages 2 and 3, whose convs then keep stride 1), ``head`` and ``dropout`` (before the
classifier).
"""

import keras
import numpy as np

from suite.core.errors import UserError
from suite.models.common import (apply, check_knobs, check_rate, classifier_head, conv, head_layer, maybe_batch_norm,
                                 maybe_dropout, model_input)
from suite.models.registry import register

VALID_DEPTHS = "6n+2 for n >= 1: 8, 14, 20, 32, 44, 56, 110, ..."


@keras.saving.register_keras_serializable(package="suite")
class ZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut: keep every ``strides``-th pixel, zero-pad channels to ``filters``,
    both as one 1x1 convolution with a fixed 0/1 kernel (no weights)."""

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, x):
        # Each output channel copies one input channel (x * 1 plus zeros: exact) or none;
        # on the CPU this is faster than a strided slice and a pad (docs/performance.md).
        channels = x.shape[-1]
        extra = self.filters - channels
        select = np.zeros((1, 1, channels, self.filters), dtype=keras.backend.standardize_dtype(x.dtype))
        select[0, 0, np.arange(channels), np.arange(channels) + extra // 2] = 1
        return keras.ops.conv(x, select, strides=self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        def sub(d):
            return None if d is None else -(-d // self.strides)

        return (input_shape[0], sub(input_shape[1]), sub(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


class _Parts:
    """The layers a ResNet is made of, as the knobs choose them: He-normal convs without
    bias when BN follows, BN, the activation."""

    def __init__(self, weight_decay, activation="relu", kernel_initializer="he_normal", batch_norm=True):
        self.weight_decay, self.activation = weight_decay, activation
        self.kernel_initializer, self.batch_norm = kernel_initializer, batch_norm

    def conv(self, filters, kernel, strides):
        return conv(filters, kernel, strides, activation=None, use_bias=not self.batch_norm,
                    kernel_initializer=self.kernel_initializer, weight_decay=self.weight_decay)

    def norm(self, x):
        return apply(x, maybe_batch_norm(self.batch_norm))

    def act(self, x):
        return keras.layers.Activation(self.activation)(x)


def _shortcut(x, filters, strides, shortcut, parts, with_bn):
    if strides == 1 and x.shape[-1] == filters:
        return x
    if shortcut == "A":
        return ZeroPadShortcut(filters, strides)(x)
    x = parts.conv(filters, 1, strides)(x)
    return parts.norm(x) if with_bn else x


def _basic_block(x, filters, strides, shortcut, parts):
    y = parts.act(parts.norm(parts.conv(filters, 3, strides)(x)))
    y = parts.norm(parts.conv(filters, 3, 1)(y))
    s = _shortcut(x, filters, strides, shortcut, parts, with_bn=True)
    return parts.act(keras.layers.Add()([y, s]))


def _preact_block(x, filters, strides, shortcut, parts):
    p = parts.act(parts.norm(x))
    y = parts.conv(filters, 3, strides)(p)
    y = parts.conv(filters, 3, 1)(parts.act(parts.norm(y)))
    s = _shortcut(x if shortcut == "A" else p, filters, strides, shortcut, parts, with_bn=False)
    return keras.layers.Add()([y, s])


def build_resnet(name, depth, input_shape=(32, 32, 3), num_classes=10, shortcut="A",
                 preact=False, weight_decay=0.0, activation="relu", kernel_initializer="he_normal",
                 batch_norm=True, downsample="stride", head="gap", dropout=0.0):
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise UserError(f"model {name!r}: depth {depth!r} is not a CIFAR ResNet depth; "
                        f"valid depths are {VALID_DEPTHS}")
    if shortcut not in ("A", "B"):
        raise UserError(f"model {name!r}: shortcut must be 'A' (zero padding) or 'B' "
                        f"(1x1 projection), got {shortcut!r}")
    inputs = model_input(input_shape, num_classes, name)
    check_knobs(name, activation, kernel_initializer, downsample, head, batch_norm)
    rate = check_rate(name, "dropout", dropout)
    parts = _Parts(weight_decay, activation, kernel_initializer, batch_norm)
    blocks = (depth - 2) // 6
    block = _preact_block if preact else _basic_block
    x = parts.conv(16, 3, 1)(inputs)
    if not preact:
        x = parts.act(parts.norm(x))
    for stage, filters in enumerate((16, 32, 64)):
        for i in range(blocks):
            strides = 2 if stage and not i else 1
            if strides == 2 and downsample == "pool":
                x, strides = keras.layers.MaxPooling2D(2)(x), 1
            x = block(x, filters, strides, shortcut, parts)
    if preact:
        x = parts.act(parts.norm(x))
    x = apply(x, head_layer(head), maybe_dropout(rate))
    outputs = classifier_head(x, num_classes, weight_decay, kernel_initializer=kernel_initializer)
    return keras.Model(inputs, outputs, name=name)


def _fixed_depth(depth):
    name = f"resnet{depth}"

    def builder(input_shape=(32, 32, 3), num_classes=10, shortcut="A", preact=False, activation="relu",
                kernel_initializer="he_normal", batch_norm=True, downsample="stride", head="gap", dropout=0.0,
                weight_decay=0.0):
        return build_resnet(name, depth, input_shape, num_classes, shortcut, preact, weight_decay, activation,
                            kernel_initializer, batch_norm, downsample, head, dropout)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"ResNet-{depth} for CIFAR (He et al. 2015, section 4.2)."
    return register(builder)


resnet20 = _fixed_depth(20)
resnet32 = _fixed_depth(32)
resnet44 = _fixed_depth(44)
resnet56 = _fixed_depth(56)
resnet110 = _fixed_depth(110)


@register
def resnet(input_shape=(32, 32, 3), num_classes=10, depth=20, shortcut="A", preact=False, activation="relu",
           kernel_initializer="he_normal", batch_norm=True, downsample="stride", head="gap", dropout=0.0,
           weight_decay=0.0):
    """Any depth 6n+2."""
    return build_resnet("resnet", depth, input_shape, num_classes, shortcut, preact, weight_decay, activation,
                        kernel_initializer, batch_norm, downsample, head, dropout)
