"""Weights that ship with the suite, loaded by name, as ``timm.create_model(name,
pretrained=True)`` and ``keras.applications.X(weights="imagenet")`` do.

    from suite import models
    models.list_models(pretrained=True)               # the names that have weights
    net = models.create("minivggnet", pretrained=True)
    probs = net.predict(uint8_images)                 # (N, 32, 32, 3) uint8 -> (N, 10) probabilities

A name has weights when ``weights/<name>.weights.h5`` and its sidecar
``weights/<name>.json`` (``suite.weights.sidecar``) are both in the checkout. The sidecar says
which registry model and knobs the weights belong to and the input scaling they were
trained with; the returned model has that scaling built in, so it takes raw uint8 images.
"""

from pathlib import Path

from suite.core.errors import UserError
from suite.core.paths import WEIGHTS as WEIGHTS_DIR
from suite.core.registry import did_you_mean
from suite.data.preprocessing import input_scaling, wrap
from suite.models.registry import builder_params
from suite.weights.formats import load_weights_file
from suite.weights.sidecar import read_sidecar, sidecar_path

SUFFIX = ".weights.h5"


def list_pretrained():
    """The names with shipped weights (a weights file and its sidecar), sorted."""
    if not WEIGHTS_DIR.is_dir():
        return []
    names = (p.name[: -len(SUFFIX)] for p in WEIGHTS_DIR.glob(f"*{SUFFIX}"))
    return sorted(n for n in names if (WEIGHTS_DIR / f"{n}.json").is_file())


def pretrained_weights(name):
    """The path of the shipped weights called ``name``; UserError listing those that exist."""
    available = list_pretrained()
    if name not in available:
        hint = did_you_mean(name, available)
        listed = ", ".join(available) if available else f"none (no *{SUFFIX} with a sidecar in {WEIGHTS_DIR})"
        raise UserError(f"no pretrained weights named {name!r}{hint}; pretrained weights exist for: {listed}")
    return WEIGHTS_DIR / f"{name}{SUFFIX}"


def load_pretrained(name, build, **params):
    """The network ``name`` with its shipped weights and its input scaling built in.

    ``build(model_name, **knobs)`` is the registry's builder lookup. ``params`` may repeat
    the sidecar's knobs (and ``num_classes``/``input_shape`` with their trained values);
    any other value is refused, since the weights only fit the network they came from.
    """
    return load_wrapped(pretrained_weights(name), build, **params)[0]


def load_wrapped(path, build, **params):
    """``(model, sidecar)``: ``load_with_sidecar``'s network with its input scaling built in
    (uint8 images in, class probabilities out)."""
    net, sidecar = load_with_sidecar(path, build, **params)
    return wrap(net, input_scaling(sidecar["preprocessing"], Path(path).parent)), sidecar


def load_with_sidecar(path, build, **params):
    """``(network, sidecar)``: the registry network that the sidecar beside the weights file
    ``path`` names, built by ``build`` and loaded with those weights (``params`` as in
    ``load_pretrained``). The sidecar is checked to hold the input scaling."""
    sidecar = read_sidecar(path)
    knobs = dict(sidecar["model"].get("params") or {})
    defaults = builder_params(sidecar["model"]["name"])
    for key, value in params.items():
        theirs = knobs.get(key, defaults.get(key))
        if key in defaults and theirs != value:
            raise UserError(f"{path}: {key}={value!r} differs from the weights' {key}={theirs!r} "
                            f"({sidecar_path(path).name})")
    pre = sidecar.get("preprocessing") or {}
    if not (isinstance(pre.get("mean"), list) and isinstance(pre.get("std"), list)):
        raise UserError(f"{sidecar_path(path)}: no preprocessing mean/std for the weights")
    net = build(sidecar["model"]["name"], **{**knobs, **params})
    load_weights_file(net, path)
    return net, sidecar
