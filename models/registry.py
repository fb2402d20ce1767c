"""The model registry: builders register themselves by name, ``create`` builds by name.

    from suite import models
    model = models.create("resnet20", num_classes=10)
    model = models.create("allcnn_c", pretrained=True)    # shipped weights (models/pretrained.py)

A builder is a function ``(input_shape=(32, 32, 3), num_classes=10, **knobs) ->
keras.Model``, decorated with ``@register``. Its keyword arguments are the knobs a
config may set under ``model.params``; ``builder_params(name)`` lists them with their
defaults so that configs are checked before anything is built.
"""

import inspect
import re

from suite.core.errors import UserError
from suite.core.registry import Registry
from suite.core.rules import KINDS, fits_default

MODELS = Registry("model", sort=True)
register = MODELS.register
get_builder = MODELS.get


def builder_params(name):
    """``{knob: default}`` for every keyword argument the builder takes."""
    sig = inspect.signature(get_builder(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def build(name, **params):
    """The model registered as ``name``, built with the given knobs (checked first)."""
    builder = get_builder(name)
    defaults = builder_params(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise UserError(
            f"model {name!r} takes no parameter {unknown[0]!r}; "
            f"it takes: {', '.join(defaults)}"
        )
    for key, value in params.items():
        if not fits_default(value, defaults[key]):
            raise UserError(f"model {name!r}: {key} must be {KINDS[type(defaults[key])]}, got {value!r}")
    sizes = {k: v for k, v in params.items() if k in ("input_shape", "input_size")}
    try:
        return builder(**params)
    except ValueError as e:
        if not sizes:
            raise
        # An input too small for the network's poolings: Keras wraps the layer's error as
        # "Exception encountered when calling X.call().", the reason (in ANSI bold), then
        # the arguments; keep the reason.
        paragraphs = [p for p in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split("\n\n") if p.strip()]
        if len(paragraphs) > 1 and paragraphs[0].startswith("Exception encountered when calling"):
            paragraphs = paragraphs[1:]
        reason = " ".join(paragraphs[0].split()) if paragraphs else type(e).__name__
        shown = ", ".join(f"{k}={v!r}" for k, v in sizes.items())
        raise UserError(f"model {name!r} cannot be built with {shown}: {reason}") from e
