"""airbench94: Keller Jordan's 94%-in-seconds CIFAR-10 network, "94% on CIFAR-10 in 3.29
Seconds on a Single GPU", arXiv:2404.00498; source: KellerJordan/cifar10-airbench,
``legacy/airbench94.py`` (``make_net``, ``init_whitening_conv``).

    WhiteningConv 2x2 valid, 24 filters, GELU
    -> three blocks of [Conv 3x3 same -> MaxPool 2 -> BN -> GELU -> Conv 3x3 same -> BN -> GELU]
       with 64, 256, 256 filters
    -> MaxPool 3 -> Flatten -> Dense(classes, no bias) -> x 1/9 -> softmax

- The first convolution is fixed patch whitening: its 24 filters are the 12 eigenvectors
  of the covariance of the training images' 2x2 patches, each divided by
  sqrt(eigenvalue + 5e-4), and their negatives (``WhiteningConv.adapt``, which train.py
  calls on the first ``whiten_images`` normalised training images before training). Its
  kernel is never trained; its bias is, for the first epochs only (the config's
  ``optimizer.train_epochs``).
- Batch norm with momentum 0.6 (PyTorch's 0.4), epsilon 1e-12, no scale (PyTorch's
  weight fixed at 1), a trained bias.
- Convolutions have no bias and PyTorch's default initialisation (uniform in
  +-1/sqrt(fan_in)), with the first ``in_channels`` filters set to the identity
  (``torch.nn.init.dirac_``): ``PartialDirac``.
- GELU is the exact (erf) form, PyTorch's default.

Ablation knobs (``suite.models.common``), the source's choice by default: ``activation``
(``gelu``) for every GELU, ``batch_norm`` (True) for every batch norm, ``dropout`` (0)
before the classifier. Its convolutions keep their ``PartialDirac`` initialisation and its
poolings, which are the recipe (``kernel_initializer``, ``downsample`` and ``head`` are not
knobs here).

Where this differs from the source, and why, is in ``docs/airbench94.md``.
"""

import keras
import numpy as np
from keras import layers, ops

from suite.models.common import (apply, check_knobs, check_rate, kernel_l2, maybe_dropout, model_input,
                                 softmax_output)
from suite.models.registry import register

WIDTHS = (64, 256, 256)
WHITEN_EPS = 5e-4
PATCH = 2


@keras.saving.register_keras_serializable(package="suite")
class PartialDirac(keras.initializers.Initializer):
    """PyTorch's default conv init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with the first
    ``in_channels`` filters replaced by identities (``torch.nn.init.dirac_``): at the start
    each block passes its input channels through unchanged, plus fresh channels."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        kh, kw, cin, cout = shape
        bound = 1.0 / np.sqrt(kh * kw * cin)
        w = keras.random.uniform(shape, -bound, bound, dtype=dtype, seed=self.seed)
        n = min(cin, cout)
        keep = np.ones(shape, dtype="float32")
        keep[..., :n] = 0.0
        return w * ops.convert_to_tensor(keep, dtype) + _identity(shape, dtype)

    def get_config(self):
        return {"seed": self.seed}


def _identity(shape, dtype=None):
    """A kernel whose first ``in_channels`` filters pass their channel through (``dirac_``),
    the others zero."""
    kh, kw, cin, cout = shape
    n = min(cin, cout)
    kernel = np.zeros(shape, dtype="float32")
    kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
    return ops.convert_to_tensor(kernel, dtype)


def _fixed_partial_dirac(shape, dtype=None):
    """``PartialDirac`` drawn from a fixed NumPy generator: the whitening kernel until
    ``adapt`` sets it. It draws nothing from Keras' generators, so the layers after it
    start from the same draws whether it is adapted or not, and no filter is all zeros
    (a constant channel has no variance for the batch norms downstream)."""
    kh, kw, cin, cout = shape
    bound = 1.0 / np.sqrt(kh * kw * cin)
    kernel = np.random.default_rng(0).uniform(-bound, bound, shape).astype("float32")
    kernel[..., :min(cin, cout)] = 0.0
    return ops.convert_to_tensor(kernel, dtype) + _identity(shape, dtype)


@keras.saving.register_keras_serializable(package="suite")
class WhiteningConv(layers.Layer):
    """A 2x2 'valid' convolution whose fixed kernel whitens image patches (``adapt``) and
    whose bias is trained."""

    adapt_images = 5000  # the source fits it to the first 5,000 training images

    def __init__(self, eps=WHITEN_EPS, **kwargs):
        super().__init__(**kwargs)
        self.eps = float(eps)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.filters = 2 * PATCH * PATCH * channels
        self.kernel = self.add_weight(name="kernel", shape=(PATCH, PATCH, channels, self.filters),
                                      initializer=_fixed_partial_dirac, trainable=False)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        return ops.conv(x, ops.cast(self.kernel, x.dtype), padding="valid") + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return b, None if h is None else h - PATCH + 1, None if w is None else w - PATCH + 1, self.filters

    def adapt(self, images):
        """Set the kernel from ``images`` (N, H, W, C), normalised as the network sees them."""
        images = np.asarray(images, dtype="float64")
        n, h, w, c = images.shape
        patches = np.stack([images[:, i:h - PATCH + 1 + i, j:w - PATCH + 1 + j, :]
                            for i in range(PATCH) for j in range(PATCH)], axis=3)  # (N, h', w', 4, C): (row, col, C)
        flat = patches.reshape(-1, PATCH * PATCH * c)
        eigenvalues, eigenvectors = np.linalg.eigh(flat.T @ flat / len(flat))
        order = np.argsort(eigenvalues)[::-1]  # largest first, as the source's flip
        scaled = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + self.eps)
        kernel = scaled.reshape(PATCH, PATCH, c, -1)
        self.kernel.assign(np.concatenate([kernel, -kernel], axis=-1).astype("float32"))

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


def _batch_norm(momentum, name):
    return layers.BatchNormalization(momentum=momentum, epsilon=1e-12, scale=False, name=name)


def _conv(filters, weight_decay, name):
    return layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=PartialDirac(),
                         kernel_regularizer=kernel_l2(weight_decay), name=name)


def _block(x, filters, momentum, weight_decay, name, activation="gelu", batch_norm=True):
    norm = (lambda suffix: _batch_norm(momentum, f"{name}_{suffix}")) if batch_norm else (lambda suffix: None)
    x = _conv(filters, weight_decay, f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = apply(x, norm("norm1"), layers.Activation(activation, name=f"{name}_{activation}1"))
    x = _conv(filters, weight_decay, f"{name}_conv2")(x)
    return apply(x, norm("norm2"), layers.Activation(activation, name=f"{name}_{activation}2"))


@register
def airbench94(input_shape=(32, 32, 3), num_classes=10, widths=list(WIDTHS), batchnorm_momentum=0.6,
               scaling_factor=1 / 9, activation="gelu", batch_norm=True, dropout=0.0, weight_decay=0.0):
    """``weight_decay``: an L2 penalty on the conv and dense kernels (``optimizer.weight_decay_mode:
    l2``); the source's decay is ``coupled`` (every trained variable, in the optimizer).
    ``activation``, ``batch_norm``, ``dropout``: the shared ablation knobs (module docstring)."""
    name = "airbench94"
    check_knobs(name, activation=activation, batch_norm=batch_norm)
    inputs = model_input(input_shape, num_classes, name)
    x = WhiteningConv(name="whiten")(inputs)
    x = layers.Activation(activation, name=f"whiten_{activation}")(x)
    for i, width in enumerate(widths, start=1):
        x = _block(x, int(width), batchnorm_momentum, weight_decay, f"block{i}", activation, batch_norm)
    x = layers.MaxPooling2D(3, name="pool")(x)
    x = apply(layers.Flatten(name="flatten")(x), maybe_dropout(check_rate(name, "dropout", dropout)))
    bound = 1.0 / np.sqrt(int(widths[-1]))
    x = layers.Dense(num_classes, use_bias=False, kernel_initializer=keras.initializers.RandomUniform(-bound, bound),
                     kernel_regularizer=kernel_l2(weight_decay), name="classifier")(x)
    x = layers.Rescaling(scaling_factor, name="scale")(x)
    return keras.Model(inputs, softmax_output()(x), name=name)
