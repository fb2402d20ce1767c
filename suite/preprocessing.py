"""Input scaling and augmentation as Keras layers, in keras.ops only (TF and JAX alike).

The network sees ``uint8`` images: the first layers of the training model cast and
normalise them and, while training, augment them. Doing this inside the model keeps the
input pipeline a plain index into a uint8 array (4x fewer bytes than float32) and lets
the augmentation run on the accelerator.

The layers carry no weights, so a network's weights file is the same with or without
them: ``wrap`` puts them in front of a registry model.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="suite")
class Standardize(layers.Layer):
    """``(x - mean) / std`` per channel, with mean and std in pixel units (0..255).

    ``scale`` normalisation is mean 0, std 255.
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        return (x - ops.convert_to_tensor(self.mean, self.compute_dtype)) / ops.convert_to_tensor(self.std, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="suite")
class RandomPadCrop(layers.Layer):
    """Pad ``pad`` zero pixels on every side and crop back to the input size at random.

    The same as shifting every image by a random whole number of pixels in
    ``[-pad, pad]`` along each axis and filling with zeros, which is how it is computed:
    two batched products with one-hot shift matrices. That runs on any backend and
    device, and avoids ``ZeroPadding2D`` + ``RandomCrop``, which fails under JAX in
    Keras 3.15 (the padded shape reaches ``fit``).
    """

    def __init__(self, pad, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.pad, self.seed = int(pad), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _shift_matrices(self, batch, size, dtype):
        shift = keras.random.randint((batch,), -self.pad, self.pad + 1, seed=self.seed_generator)
        rows = ops.arange(size)[None, :, None]
        cols = ops.arange(size)[None, None, :]
        return ops.cast(ops.equal(cols, rows + shift[:, None, None]), dtype)  # (B, out, in)

    def call(self, x, training=None):
        if not training or self.pad == 0:
            return x
        batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
        rows = self._shift_matrices(batch, height, x.dtype)
        cols = self._shift_matrices(batch, width, x.dtype)
        x = ops.einsum("bij,bjwc->biwc", rows, x)
        return ops.einsum("bkl,bilc->bikc", cols, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "seed": self.seed}


def augmentation(augment_cfg, seed):
    """The augmentation layers the ``augment`` section switches on, in a fixed order."""
    out = []
    if augment_cfg["flip"]:
        out.append(layers.RandomFlip("horizontal", seed=seed, dtype="float32", name="flip"))
    if augment_cfg["crop"]:
        out.append(RandomPadCrop(augment_cfg["crop"], seed=seed + 1, dtype="float32", name="pad_crop"))
    if augment_cfg["translate"]:
        f = augment_cfg["translate"]
        translate = layers.RandomTranslation(f, f, fill_mode="constant", seed=seed + 2, dtype="float32", name="translate")
        # Keras marks it not jittable, which would switch XLA off for the whole model; its
        # JAX implementation (map_coordinates) compiles fine. TensorFlow's does not.
        translate.supports_jit = keras.backend.backend() == "jax"
        out.append(translate)
    return out


def wrap(net, mean, std, augment_layers=()):
    """The model that is trained and evaluated: uint8 images -> scaling -> augmentation -> ``net``."""
    inputs = keras.Input(net.input_shape[1:], dtype="uint8", name="images")
    x = Standardize(mean, std, dtype="float32", name="standardize")(inputs)
    for layer in augment_layers:
        x = layer(x)
    return keras.Model(inputs, net(x), name=f"{net.name}_trainer")
