"""The model registry: builders register themselves by name, ``create`` builds by name.

    from models import create, list_models
    model = create("resnet20", num_classes=10)
    model = create("allcnn_c", pretrained=True)    # shipped weights, uint8 in, probabilities out

A builder is a function ``(input_shape=(32, 32, 3), num_classes=10, **knobs) ->
keras.Model``, decorated with ``@register``. Its keyword arguments are the knobs a
config may set under ``model.params``; ``builder_params(name)`` lists them with their
defaults so that configs are checked before anything is built.
"""

import difflib
import inspect
import re

from suite.errors import UserError
from suite.rules import KINDS, fits_default

_BUILDERS = {}


def register(fn=None, *, name=None):
    """Register a builder under its function name (or ``name``)."""

    def wrap(f):
        key = name or f.__name__
        if key in _BUILDERS:
            raise ValueError(f"model {key!r} is registered twice")
        _BUILDERS[key] = f
        return f

    return wrap(fn) if fn is not None else wrap


def list_models(pretrained=False):
    """The registered model names, sorted; with ``pretrained=True`` only those whose
    weights ship in ``weights/`` (``models.pretrained``)."""
    if pretrained:
        from models.pretrained import list_pretrained
        return [n for n in list_pretrained() if n in _BUILDERS]
    return sorted(_BUILDERS)


def get_builder(name):
    if name not in _BUILDERS:
        close = difflib.get_close_matches(str(name), _BUILDERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown model {name!r}{hint}; available: {', '.join(list_models())}")
    return _BUILDERS[name]


def builder_params(name):
    """``{knob: default}`` for every keyword argument the builder takes."""
    sig = inspect.signature(get_builder(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def create(name, pretrained=False, **params):
    """Build the model registered as ``name`` with the given knobs.

    ``pretrained=True`` returns it with the weights that ship under that name
    (``models.pretrained``), wrapped so that it takes uint8 images and returns class
    probabilities.
    """
    if pretrained:
        from models.pretrained import load_pretrained
        return load_pretrained(name, create, **params)
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
