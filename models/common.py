"""Pieces every builder shares: regularisation, BN, the float32 softmax head, knob checks,
and the ablation knobs that every family takes under the same names where they make sense:

- ``activation``: the nonlinearity of every layer that has one in the source (ACTIVATIONS);
- ``kernel_initializer``: the initializer of every conv kernel (INITIALIZERS);
- ``batch_norm``: batch normalisation after each conv (and hidden dense) layer;
- ``downsample``: ``pool`` (max pooling) or ``stride`` (the conv before it strides instead,
  Springenberg et al. 2015's "striving for simplicity");
- ``head``: ``flatten`` or ``gap`` (global average pooling) before the classifier;
- ``dropout``: the rate before the classifier (0: none).

Each builder's defaults are its source's choices, so a model built without knobs is the
published network.

``weight_decay`` everywhere means the papers' SGD weight-decay coefficient λ: the update
adds λ·w to the gradient, which is the gradient of an L2 penalty λ/2·||w||². Keras'
``L2(l)`` adds l·||w||², so ``kernel_l2`` passes λ/2. It applies to conv and dense
kernels only (not biases, not BN scales/offsets).
"""

import keras

from suite.core.errors import UserError


def kernel_l2(weight_decay):
    """The kernel regulariser for SGD weight decay λ (None when λ is 0)."""
    if weight_decay is None or weight_decay == 0:
        return None
    if weight_decay < 0:
        raise UserError(f"model weight_decay must be >= 0, got {weight_decay}")
    return keras.regularizers.L2(weight_decay / 2)


def batch_norm(name=None):
    """The one BatchNormalization every BN-using builder calls.

    momentum 0.9 / epsilon 1e-5 are the Torch values of the ResNet papers (Keras
    defaults: 0.99 / 1e-3). Keras-2 files still load; their predictions move by the
    epsilon difference, negligible next to typical variances.
    """
    return keras.layers.BatchNormalization(axis=-1, momentum=0.9, epsilon=1e-5, name=name)


def conv(filters, kernel_size, strides=1, padding="same", activation="relu", weight_decay=0.0,
         use_bias=True, kernel_initializer="glorot_uniform", name=None):
    """Conv2D with the suite's weight-decay convention."""
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, activation=activation,
        use_bias=use_bias, kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_l2(weight_decay), name=name)


def dense(units, activation=None, weight_decay=0.0, kernel_initializer="glorot_uniform", name=None):
    return keras.layers.Dense(units, activation=activation, kernel_initializer=kernel_initializer,
                              kernel_regularizer=kernel_l2(weight_decay), name=name)


def softmax_output():
    """The last layer of every model: softmax kept in float32 under mixed precision."""
    return keras.layers.Activation("softmax", dtype="float32", name="predictions")


def classifier_head(x, num_classes, weight_decay=0.0, kernel_initializer="glorot_uniform"):
    """Dense(num_classes) -> float32 softmax."""
    x = dense(num_classes, weight_decay=weight_decay, kernel_initializer=kernel_initializer,
              name="logits")(x)
    return softmax_output()(x)


def model_input(input_shape, num_classes, name):
    """Check the two common knobs and return the Input tensor."""
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if not shape or len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise UserError(f"model {name!r}: input_shape must be three positive integers "
                        f"(height, width, channels), got {input_shape!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise UserError(f"model {name!r}: num_classes must be an integer >= 2, got {num_classes!r}")
    return keras.Input(shape=shape, name="image")


def check_rate(model_name, knob, value):
    """Dropout rates live in [0, 1)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise UserError(f"model {model_name!r}: {knob} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_choice(model_name, knob, value, choices):
    if value not in choices:
        raise UserError(f"model {model_name!r}: {knob} must be one of "
                        f"{', '.join(map(repr, choices))}, got {value!r}")
    return value


ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu", "swish", "silu", "mish", "selu", "tanh", "sigmoid",
               "softplus", "relu6")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
                "truncated_normal", "random_normal", "random_uniform", "orthogonal")
DOWNSAMPLES = ("pool", "stride")
HEADS = ("flatten", "gap")


def check_knobs(model_name, activation="relu", kernel_initializer="glorot_uniform", downsample="pool",
                head="flatten", batch_norm=False):
    """Raise UserError unless the ablation knobs hold values the builders know."""
    check_choice(model_name, "activation", activation, ACTIVATIONS)
    check_choice(model_name, "kernel_initializer", kernel_initializer, INITIALIZERS)
    check_choice(model_name, "downsample", downsample, DOWNSAMPLES)
    check_choice(model_name, "head", head, HEADS)
    if not isinstance(batch_norm, bool):
        raise UserError(f"model {model_name!r}: batch_norm must be true or false, got {batch_norm!r}")


def head_layer(kind):
    """What turns the last feature maps into a vector: Flatten or GlobalAveragePooling2D."""
    return keras.layers.Flatten() if kind == "flatten" else keras.layers.GlobalAveragePooling2D()


def maybe_batch_norm(on):
    """``batch_norm()`` when ``on``, else None (``apply`` skips it)."""
    return batch_norm() if on else None


def maybe_dropout(rate):
    """Dropout, or None for rate 0 (callers skip None so no weightless no-op layer appears)."""
    return keras.layers.Dropout(rate) if rate > 0 else None


def apply(x, *layers):
    """Chain layers, skipping None."""
    for layer in layers:
        if layer is not None:
            x = layer(x)
    return x
