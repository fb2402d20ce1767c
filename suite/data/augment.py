"""Augmentations by config key, registered in ``AUGMENTATIONS``.

Each is a function of ``(seed, fill)`` (the run's seed and the data's mean colour, in
pixels) whose keyword-only parameters are the ``augment`` keys it reads, with their
defaults and rules (see ``suite.core.registry``); it returns a Keras layer, or None when its
keys leave it off. A ``RandomFlipCrop`` works on raw pixels, before the scaling, and
may run in the ``tf.data`` input (``runtime.augment_in``); every other layer works on
scaled images, inside the model.
"""

import keras
from keras import layers

from suite.core import rules
from suite.core.registry import Registry
from suite.data.preprocessing import ALTERNATING, RandomFlipCrop

AUGMENTATIONS = Registry("augmentation")

PIXELS = rules.Rule(lambda v: rules.is_int(v) and 0 <= v <= 16, "an integer number of pixels in 0..16")
BELOW_HALF = rules.Rule(lambda v: rules.is_number(v) and 0 <= v < 0.5, "a number >= 0 and < 0.5")


@AUGMENTATIONS.register
def flip_crop(seed, fill, *, flip: rules.choice(False, True, ALTERNATING) = False, crop: PIXELS = 0,
              crop_fill: rules.choice("mean", "reflect") = "mean"):
    """Random horizontal flip (or ``alternating``: a fixed half of the images mirrored in
    even epochs, the other half in odd ones, Jordan 2024); pad ``crop`` pixels each side, of
    the mean colour (He et al. 2016) or ``reflect``ed, then crop 32x32 at random."""
    if not (flip or crop):
        return None
    return RandomFlipCrop(crop, flip, fill, seed=seed, reflect=crop_fill == "reflect", name="flip_crop")


@AUGMENTATIONS.register
def translate(seed, fill, *, translate: BELOW_HALF = 0.0):
    """Random translation by up to this fraction of the image size."""
    if not translate:
        return None
    layer = layers.RandomTranslation(translate, translate, fill_mode="constant", seed=seed + 2, dtype="float32",
                                     name="translate")
    # Keras marks it not jittable, which would switch XLA off for the whole model; its
    # JAX implementation (map_coordinates) compiles fine. TensorFlow's does not.
    layer.supports_jit = keras.backend.backend() == "jax"
    return layer


def augmentation(augment_cfg, seed, fill):
    """The layers the ``augment`` section switches on: ``(flip_crop, others)``, where
    ``flip_crop`` is the ``RandomFlipCrop`` or None and ``others`` a list."""
    built = [AUGMENTATIONS.call(name, (seed, fill), augment_cfg) for name in AUGMENTATIONS.names()]
    built = [layer for layer in built if layer is not None]
    pixel_layers = [layer for layer in built if isinstance(layer, RandomFlipCrop)]
    return (pixel_layers[0] if pixel_layers else None), [layer for layer in built if layer not in pixel_layers]
