"""Input scaling and augmentation as Keras layers, in keras.ops only (TF and JAX alike).

The network sees ``uint8`` images. The training model flips and crops the raw pixels
(``RandomFlipCrop``), scales them (``Standardize``) and applies any other augmentation
to the scaled images (``suite.data.augment`` picks them from the config); ``wrap`` builds that
chain in front of a registry model. The input pipeline stays a plain index into a uint8
array (4x fewer bytes than float32).

Where the flip-and-crop runs is a runtime setting (``runtime.augment_in``): inside the
model, on the accelerator (the default under JAX), or in the ``tf.data`` input beside
the training step (the default under TensorFlow; ``suite.data.pipeline.tf_batches``), where
it gathers straight from a copy of the data padded once.

The layers carry no weights, so a network's weights file is the same with or without
them.
"""

import keras
import numpy as np
from keras import layers, ops

from suite.data.whitening import of_preprocessing


@keras.saving.register_keras_serializable(package="suite")
class Standardize(layers.Layer):
    """``(x - mean) / std`` per channel, with mean and std in pixel units (0..255).

    ``scale`` normalisation is mean 0, std 255. Computed as ``x * (1/std) - mean/std``,
    where each term is a scalar when the channels share it (and the offset is left out
    when it is 0, as for ``scale``) and is otherwise spread to the full image shape,
    because TensorFlow's CPU kernels broadcast a per-channel ``(3,)`` vector slowly
    (``python bench/preprocessing.py`` times both).
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        self._scale = _per_channel(1.0 / np.array(self.std), shape)
        offset = -np.array(self.mean) / np.array(self.std)
        self._offset = None if not offset.any() else _per_channel(offset, shape)

    def call(self, x):
        dtype = self.compute_dtype
        x = ops.cast(x, dtype) * ops.convert_to_tensor(self._scale, dtype)
        return x if self._offset is None else x + ops.convert_to_tensor(self._offset, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


def _per_channel(values, shape):
    """One term per channel: a float32 scalar if the channels share it, else spread to ``shape``."""
    if np.all(values == values[0]):
        return np.float32(values[0])
    return np.broadcast_to(values, shape).astype("float32")


def _take_rows(x, indices):
    return ops.take(x, indices, axis=0)


ALTERNATING = "alternating"


@keras.saving.register_keras_serializable(package="suite")
class RandomFlipCrop(layers.Layer):
    """Random horizontal flip and pad-and-random-crop of raw pixels, in one gather.

    Padding ``pad`` pixels on every side and cropping back to the input size at random
    is the same as shifting each image by a random whole number of pixels in
    ``[-pad, pad]`` along each axis; a flip mirrors the columns. The border is filled
    with ``fill``, one value per channel: the data's mean colour, which the scaling that
    follows maps to (about) zero, as in He et al. (2016), who pad the mean-subtracted
    images with zeros.

    An image can come out in ``(2 pad + 1)^2`` shifts, times 2 with flips: ``table`` holds,
    for each of these ``moves``, which pixel of the padded image lands at each output
    pixel. Augmenting a batch is drawing one move per image and one gather of pixels
    (``apply``). The layer pads the batch and draws from its seed generator, so it runs
    inside a model under any backend; under TensorFlow the suite does the same in its
    ``tf.data`` input instead (``suite.data.pipeline.tf_batches``), from a copy of the data set
    padded once and with draws seeded per batch. ``python bench/preprocessing.py`` times
    the gather against the plain one.

    ``flip: alternating`` (airbench's, Jordan 2024) mirrors a fixed random half of the
    images in even epochs and the other half in odd ones; it needs each image's index
    and epoch, so only the input pipelines do it. ``reflect`` pads with the mirror image
    of the border instead of the fill colour (airbench's translation).
    """

    def __init__(self, pad=0, flip=False, fill=(0, 0, 0), seed=None, reflect=False, **kwargs):
        super().__init__(**kwargs)
        self.pad, self.fill, self.seed, self.reflect = int(pad), [int(v) for v in fill], seed, bool(reflect)
        self.flip = flip if flip == ALTERNATING else bool(flip)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.image_shape = tuple(input_shape[1:])
        self.table = flip_crop_table(*self.image_shape[:2], self.pad, self.flip)

    @property
    def moves(self):
        return len(self.table)

    @property
    def padded_size(self):
        """Pixels in one padded image: the stride between images in ``apply``'s ``pixels``."""
        height, width = self.image_shape[:2]
        return (height + 2 * self.pad) * (width + 2 * self.pad)

    @property
    def shifts(self):
        return (2 * self.pad + 1) ** 2

    def move(self, shift, flipped):
        """The index in ``table`` of ``shift`` (``0 .. shifts - 1``) mirrored or not (0 or 1)."""
        return shift * 2 + flipped if self.flip else shift

    def first_flips(self, n):
        """``flip: alternating``: which of ``n`` images are mirrored in even epochs (0 or 1
        each, drawn once from the seed); odd epochs mirror the others (Jordan 2024, sec. 3.6)."""
        return np.random.default_rng([self.seed or 0, 1]).integers(0, 2, n, dtype="int32")

    def call(self, x, training=None):
        if not training or not (self.pad or self.flip):
            return x
        if self.flip == ALTERNATING:
            raise ValueError("flip: alternating needs each image's index and epoch: flip in the input pipeline")
        batch = ops.shape(x)[0]
        pixels = ops.reshape(self.padded(x), (-1, self.image_shape[2]))
        moves = keras.random.randint((batch,), 0, self.moves, seed=self.seed_generator)
        return self.apply(pixels, ops.arange(batch), moves)

    def padded(self, images):
        """``images`` with ``pad`` pixels of the fill colour (or their mirror image, with
        ``reflect``) on every side."""
        b, p = ops.shape(images)[0], self.pad
        if self.reflect:
            return ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")
        height, width, channels = self.image_shape
        canvas = ops.broadcast_to(ops.cast(ops.convert_to_tensor(self.fill), images.dtype),
                                  (b, height + 2 * p, width + 2 * p, channels))
        return ops.slice_update(canvas, (0, p, p, 0), images)

    def apply(self, pixels, images, moves, take=_take_rows):
        """Image ``images[b]`` of ``pixels`` (the padded images' pixels, one row each), moved
        by ``moves[b]``: a ``(B, H, W, C)`` batch. ``take(x, indices)`` gathers rows; the
        tf.data input passes ``tf.gather``, which skips the pass over the indices that
        ``ops.take`` makes to wrap negative ones."""
        height, width, channels = self.image_shape
        source = take(ops.convert_to_tensor(self.table), moves) + ops.cast(images, "int32")[:, None] * self.padded_size
        return ops.reshape(take(pixels, ops.reshape(source, (-1,))), (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "flip": self.flip, "fill": self.fill, "seed": self.seed,
                "reflect": self.reflect}


def flip_crop_table(height, width, pad, flip):
    """``(moves, height * width)`` int32: for each move (a shift in ``[-pad, pad]`` along each
    axis, then a flip or not), the index in the padded image (``height + 2 pad`` by
    ``width + 2 pad``, row-major) of the pixel that lands at each output pixel."""
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    table = []
    for down in range(-pad, pad + 1):
        for right in range(-pad, pad + 1):
            for mirrored in ((False, True) if flip else (False,)):
                source_cols = (width - 1 - cols if mirrored else cols) - right + pad
                table.append(((rows - down + pad) * (width + 2 * pad) + source_cols).reshape(-1))
    return np.array(table, dtype="int32")


def input_scaling(preprocessing, folder=None):
    """The layer that turns uint8 images into the network's input, from a sidecar's
    ``preprocessing`` record (``suite.data.cifar10.Splits.preprocessing``): ``Standardize`` with its
    mean and std, or for ``normalize: zca`` GCN and ZCA whitening with the whitening file
    the record names, read from ``folder`` (the sidecar's) and checked against its digest."""
    return scaling_layer(preprocessing["mean"], preprocessing["std"],
                         of_preprocessing(preprocessing, folder))


def scaling_layer(mean, std, whitening=None):
    """``whitening``'s layers (a ``suite.data.whitening.Whitening``), else ``standardize(mean, std)``."""
    return whitening.layers() if whitening is not None else standardize(mean, std)


def standardize(mean, std):
    """The ``Standardize`` layer of ``wrap``'s models (float32 under any precision policy)."""
    return Standardize(mean, std, dtype="float32", name="standardize")


def wrap(net, scaling, flip_crop_layer=None, augment_layers=()):
    """The model that is trained and evaluated: uint8 images -> flip-and-crop -> ``scaling``
    (a layer: ``input_scaling``) -> other augmentation -> ``net``."""
    x = inputs = keras.Input(net.input_shape[1:], dtype="uint8", name="images")
    if flip_crop_layer is not None:
        x = flip_crop_layer(x)
    x = scaling(x)
    for layer in augment_layers:
        x = layer(x)
    return keras.Model(inputs, net(x), name=f"{net.name}_trainer")


def adapt_to_data(net, scaling, images):
    """Let the layers of ``net`` that fit themselves to the data (an ``adapt`` method and
    ``adapt_images``, the number of images they use, e.g. airbench94's patch whitening)
    see the first of ``images`` (uint8), scaled by ``scaling`` as the network sees them."""
    for layer in net.layers:
        if hasattr(layer, "adapt") and hasattr(layer, "adapt_images"):
            layer.adapt(keras.ops.convert_to_numpy(scaling(images[:layer.adapt_images])))


def fill_colour(mean):
    """The mean colour in whole pixel values (uint8): what flip-and-crop pads with."""
    return [int(v) for v in np.clip(np.round(mean), 0, 255)]
