"""ShatheNet v1.0-v1.2 (GitHub user Shathe, github.com/Shathe/DeepLearning,
ShatheNet/models/ShatheNet.py at commit 4055bca, the latest naming).

Sequential CNNs built for upsampled 192 or 299 px inputs: here a ``Resizing(input_size)``
follows the 32x32 input (knobs ``input_size`` and ``upsample``: ``nearest``, as the source's
Keras 2 ``flow_from_directory`` resized its images (``load_img``'s default), or
``bilinear``). ``truncated_normal`` conv kernels, ReLU unless noted, head Flatten -> Dense,
ReLU -> Dense(classes) -> softmax.

- ``shathenet_v1_0`` (192 px): Conv16 7x7/6, Conv16 5x5/4, Conv32 3x3/2 (all 'same'), MP,
  Dense32. 17,882 parameters.
- ``shathenet_v1_1`` (299 px): Conv32 7x7/2, Conv32 7x7 (no activation), MP, Conv64 5x5/2,
  Conv64 5x5, MP, Conv128 3x3/2, Conv128 3x3, MP ('same'), Dense256. 1,252,138 parameters
  at 299 px, the README's 1.25M (the source file itself says 192, giving 727,850).
- ``shathenet_v1_2`` (192 px): Conv32 5x5, Conv32 5x5 (no activation), MP, then
  [two Conv 3x3 -> MP] with 64, 64, 128, 128 filters, all 'valid'; Dense512. 941,738
  parameters; needs ``input_size`` >= 160.

Counts for 10 classes. The source's README (4055bca) reports CIFAR-10 accuracy 60% (v1.0),
76% (v1.1) and 83% for a 930K "v1.2".

Ablation knobs (``suite.models.common``): ``activation``, ``kernel_initializer``
(``truncated_normal`` on the convs, as the source; its dense layers keep Keras' default),
``batch_norm`` (after each conv and the hidden dense layer), ``downsample`` (``stride``:
each pooling folded into the conv before it, whose stride doubles), ``head`` and
``dropout`` (after the hidden dense layer; the source has it commented out).
"""

import math

import keras

from suite.core.errors import UserError
from suite.models.common import (apply, check_knobs, check_rate, conv, dense, head_layer, maybe_batch_norm,
                                 maybe_dropout, model_input, softmax_output)
from suite.models.registry import register

UPSAMPLING = ("nearest", "bilinear")

# (filters, kernel, stride, padding, relu) or "pool" (2x2 max pooling, 'valid').
_V1_0 = [(16, 7, 6, "same", True), (16, 5, 4, "same", True), (32, 3, 2, "same", True), "pool"]
_V1_1 = [(32, 7, 2, "same", True), (32, 7, 1, "same", False), "pool",
         (64, 5, 2, "same", True), (64, 5, 1, "same", True), "pool",
         (128, 3, 2, "same", True), (128, 3, 1, "same", True), "pool"]
_V1_2 = [(32, 5, 1, "valid", True), (32, 5, 1, "valid", False), "pool"]
for _filters in (64, 64, 128, 128):
    _V1_2 += [(_filters, 3, 1, "valid", True)] * 2 + ["pool"]


def _final_size(body, size):
    for item in body:
        if item == "pool":
            size //= 2
        else:
            _, kernel, stride, padding, _ = item
            size = math.ceil(size / stride) if padding == "same" else (size - kernel) // stride + 1
        if size < 1:
            return 0
    return size


def _min_input_size(body):
    return next(s for s in range(1, 4096) if _final_size(body, s) >= 1)


def _strided(body):
    """``body`` with each pooling folded into the conv before it, whose stride doubles."""
    out = []
    for item in body:
        if item == "pool" and out and out[-1] != "pool":
            filters, kernel, stride, padding, relu = out[-1]
            out[-1] = (filters, kernel, stride * 2, padding, relu)
        else:
            out.append(item)
    return out


def _build(name, body, units, input_shape, num_classes, input_size, weight_decay, activation="relu",
           kernel_initializer="truncated_normal", batch_norm=False, downsample="pool", head="flatten", dropout=0.0,
           upsample="nearest"):
    inputs = model_input(input_shape, num_classes, name)
    check_knobs(name, activation, kernel_initializer, downsample, head, batch_norm)
    rate = check_rate(name, "dropout", dropout)
    body = _strided(body) if downsample == "stride" else body
    smallest = _min_input_size(body)
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < smallest:
        raise UserError(f"model {name!r}: input_size must be an integer >= {smallest} "
                        f"(smaller inputs shrink to nothing), got {input_size!r}")
    if upsample not in UPSAMPLING:
        raise UserError(f"model {name!r}: upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
    x = keras.layers.Resizing(input_size, input_size, interpolation=upsample, name="upsample")(inputs)
    for item in body:
        if item == "pool":
            x = keras.layers.MaxPooling2D(2)(x)
        else:
            filters, kernel, stride, padding, relu = item
            x = conv(filters, kernel, stride, padding=padding, activation=activation if relu else None,
                     kernel_initializer=kernel_initializer, weight_decay=weight_decay)(x)
            x = apply(x, maybe_batch_norm(batch_norm))
    x = apply(x, head_layer(head), dense(units, activation=activation, weight_decay=weight_decay),
              maybe_batch_norm(batch_norm), maybe_dropout(rate),
              dense(num_classes, weight_decay=weight_decay, name="logits"), softmax_output())
    return keras.Model(inputs, x, name=name)


def _version(name, body, units, default_size):
    def builder(input_shape=(32, 32, 3), num_classes=10, input_size=default_size, upsample="nearest",
                activation="relu", kernel_initializer="truncated_normal", batch_norm=False, downsample="pool",
                head="flatten", dropout=0.0, weight_decay=0.0):
        return _build(name, body, units, input_shape, num_classes, input_size, weight_decay, activation,
                      kernel_initializer, batch_norm, downsample, head, dropout, upsample)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"ShatheNet {name[len('shathenet_'):].replace('_', '.')} (see the module docstring)."
    return register(builder)


shathenet_v1_0 = _version("shathenet_v1_0", _V1_0, 32, 192)
shathenet_v1_1 = _version("shathenet_v1_1", _V1_1, 256, 299)
shathenet_v1_2 = _version("shathenet_v1_2", _V1_2, 512, 192)
