"""The JSON sidecar beside every weights file the suite writes: ``x.weights.h5`` -> ``x.json``.

It says what the weights need to be used: the model (registry name and knobs), the
preprocessing (normalisation and its statistics), the class names, and where the
weights came from (config, epoch, backend, versions). ``evaluate.py`` rebuilds the
model from it.
"""

import datetime
import json
import platform
from pathlib import Path

from suite.core.errors import UserError

FORMAT = "cifar10-suite-weights/1"


def sidecar_path(weights_path):
    weights_path = Path(weights_path)
    name = weights_path.name
    stem = name[: -len(".weights.h5")] if name.endswith(".weights.h5") else weights_path.stem
    return weights_path.with_name(stem + ".json")


def read_sidecar(weights_path, missing_ok=False):
    path = sidecar_path(weights_path)
    if not path.exists():
        if missing_ok:
            return None
        raise UserError(f"{weights_path}: no sidecar {path.name} beside it; name the model with --model "
                        f"(and --normalize) or give the run's --config")
    try:
        data = json.loads(path.read_text())
        data["model"]["name"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a valid weights sidecar ({type(e).__name__}: {e})") from None
    return data


def describe_weights(cfg, preprocessing, class_names, **extra):
    """The sidecar dict for weights of the network that ``cfg`` builds."""
    import keras  # lazy: keeps Keras and TensorFlow unloaded for reading sidecars

    return {
        "format": FORMAT,
        "model": {"name": cfg["model"]["name"], "params": dict(cfg["model"]["params"])},
        "preprocessing": preprocessing,
        "class_names": list(class_names),
        "config_name": cfg["name"],
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "python": platform.python_version(),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        **extra,
    }
