"""Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", arXiv:1610.02391) and the pieces ``visualize.py`` draws.

For a class c and a conv layer with activation maps A^k, Grad-CAM weighs each map by the
spatial mean of the gradient of the class score y^c (the logit, before the softmax) with
respect to it, ``alpha_k = mean_ij dy^c / dA^k_ij``, and keeps the positive part of the
weighted sum, ``ReLU(sum_k alpha_k A^k)``, upsampled to the input.

The gradient with respect to an intermediate activation is taken the same way under every
backend: the layer's output gets a zero tensor added (``_Probe``), and the gradient of the
score with respect to that tensor is dy/dA (``suite.analysis.autodiff.gradient``).
"""

import keras
import numpy as np
from keras import ops

from suite.analysis.autodiff import gradient
from suite.core.errors import UserError

CONV_TYPES = (keras.layers.Conv2D,)


def conv_layers(net):
    """The network's 2D convolution layers, in order."""
    return [layer for layer in net.layers if isinstance(layer, CONV_TYPES)]


def conv_layer(net, name=None):
    """The conv layer called ``name``, or the last one; UserError listing them otherwise."""
    convs = conv_layers(net)
    if not convs:
        raise UserError(f"model {net.name!r} has no convolution layer")
    if name is None:
        return convs[-1]
    for layer in convs:
        if layer.name == name:
            return layer
    raise UserError(f"--layer {name}: not a conv layer of {net.name}; its conv layers are "
                    f"{', '.join(layer.name for layer in convs)}")


def logits_model(net):
    """``net`` up to its class scores: the input of the final softmax (``predictions``)."""
    try:
        scores = net.get_layer("predictions").input
    except ValueError:
        scores = net.outputs[0]
    return keras.Model(net.input, scores, name=f"{net.name}_logits")


class _Probe:
    """Adds ``delta`` to ``layer``'s output while active, and remembers the output."""

    def __init__(self, layer):
        self.layer, self.call, self.delta, self.output = layer, layer.call, None, None

    def __enter__(self):
        def probed(*args, **kwargs):
            out = self.call(*args, **kwargs)
            self.output = out
            return out if self.delta is None else out + self.delta

        self.layer.call = probed
        return self

    def __exit__(self, *exc):
        self.layer.call = self.call


def activation_maps(net, layer, x):
    """``layer``'s output for the float input batch ``x`` (what ``net`` sees), as numpy."""
    with _Probe(layer) as probe:
        net(x, training=False)
        return ops.convert_to_numpy(probe.output)


def grad_cam(net, layer, x, classes):
    """Heatmaps ``(N, h, w)`` in [0, 1] at ``layer``'s resolution, one per image of ``x``
    (float, as ``net`` takes it) for the class ``classes[i]``; all zeros where no map
    has a positive weight."""
    scores_of = logits_model(net)
    maps = activation_maps(net, layer, x)
    pick = ops.one_hot(ops.convert_to_tensor(np.asarray(classes), "int32"), scores_of.output_shape[-1])

    def score(delta):
        with _Probe(layer) as probe:
            probe.delta = delta
            return ops.sum(scores_of(x, training=False) * pick)

    grads = gradient(score, np.zeros(maps.shape, "float32"))
    alpha = grads.mean(axis=(1, 2), keepdims=True)                 # (N, 1, 1, K)
    cam = np.maximum((alpha * maps).sum(axis=-1), 0.0)             # (N, h, w)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)


def upsample(cams, size):
    """Heatmaps resized to ``size`` x ``size`` (bilinear), for overlaying on the images."""
    resized = ops.image.resize(ops.convert_to_tensor(cams[..., None]), (size, size), interpolation="bilinear")
    return np.clip(ops.convert_to_numpy(resized)[..., 0], 0.0, 1.0)
