"""Starting a network from trained weights and freezing part of it: the config's
``model.init`` and ``model.freeze`` (fine-tuning, as in Yosinski et al. 2014, "How
transferable are features in deep neural networks?", arXiv:1411.1792).

``model.init`` is a Keras 3 ``.weights.h5`` file or the name of shipped weights
(``suite.models.pretrained``). Every layer whose weights have the same shapes in the file and
in the network is loaded; the others keep their fresh initialisation, which is how a
classifier head for another number of classes (``data.classes``) is replaced. A file of
another architecture (different layers, not only a different head) is refused.

The run takes the input scaling of the weights it starts from (their sidecar's channel
mean and deviation, or their ZCA whitening), since the layers it keeps were trained on inputs scaled that way,
and a sidecar that names another model or other knobs (but ``num_classes``) is refused.

``model.freeze`` lists layer names or ``fnmatch`` patterns (``conv2d_[0-5]``, ``dense*``),
the names Keras gives the layers in a fresh process, as ``python -m models NAME``
prints them; train.py builds every network in a fresh Keras session so that they hold.
"""

import fnmatch
import warnings
from pathlib import Path

from suite.core.errors import UserError
from suite.data.whitening import of_preprocessing
from suite.models import builder_params
from suite.models.pretrained import list_pretrained, pretrained_weights
from suite.weights.formats import KERAS3, detect_format, layer_shapes
from suite.weights.sidecar import read_sidecar, sidecar_path


def init_file(init):
    """The weights file ``model.init`` names: a path, else a pretrained name."""
    path = Path(init)
    if path.is_file():
        return path
    if init in list_pretrained() or not init.endswith(".h5"):
        return pretrained_weights(init)
    raise UserError(f"model.init: {init} does not exist (a .weights.h5 file or a pretrained name)")


def init_sidecar(model_cfg):
    """The sidecar of ``model.init``'s weights (None without a sidecar), checked against the
    config's model: same name, same knobs but ``num_classes``."""
    path = init_file(model_cfg["init"])
    sidecar = read_sidecar(path, missing_ok=True)
    if sidecar is None:
        return None
    theirs, name = sidecar["model"], model_cfg["name"]
    if theirs.get("name") != name:
        raise UserError(f"model.init: {path} holds weights of {theirs.get('name')!r} ({sidecar_path(path).name}), "
                        f"this config trains {name!r}")
    defaults = builder_params(name)
    for key in sorted(set(defaults) - {"num_classes", "weight_decay"}):
        ours = model_cfg["params"].get(key, defaults[key])
        other = (theirs.get("params") or {}).get(key, defaults[key])
        if ours != other:
            raise UserError(f"model.params.{key}: {ours!r}, but the model.init weights were trained with "
                            f"{key}={other!r} ({sidecar_path(path).name})")
    return sidecar


def with_init_scaling(model_cfg, splits):
    """``splits`` scaled as ``model.init``'s weights were trained (unchanged without init or sidecar)."""
    import dataclasses

    sidecar = init_sidecar(model_cfg) if model_cfg["init"] else None
    pre = (sidecar or {}).get("preprocessing") or {}
    if not (isinstance(pre.get("mean"), list) and isinstance(pre.get("std"), list)):
        return splits

    whitening = of_preprocessing(pre, init_file(model_cfg["init"]).parent)
    return dataclasses.replace(splits, mean=pre["mean"], std=pre["std"], whitening=whitening)


def load_matching(net, init):
    """Load the layers of ``init`` whose shapes fit ``net``; returns ``(path, fresh layer names)``."""
    path = init_file(init)
    if detect_format(path) != KERAS3:
        raise UserError(f"model.init: {path} is a Keras 2 file; convert it with evaluate.py's loader first")
    in_file, in_net = layer_shapes(path, net)
    if set(in_file) != set(in_net):
        raise UserError(f"model.init: {path} holds the layers {_short(in_file)}, model {net.name!r} has "
                        f"{_short(in_net)}: another architecture")
    fresh = [name for group, (name, shapes) in in_net.items() if in_file[group] != shapes]
    try:
        with warnings.catch_warnings():  # Keras warns once per skipped layer; the header lists them
            warnings.simplefilter("ignore")
            net.load_weights(str(path), skip_mismatch=True)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"model.init: {path}: Keras could not load it ({type(e).__name__}: {e})") from None
    return path, fresh


def _short(entries):
    names = sorted(entries)
    return ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")


def freeze(net, patterns):
    """Set ``trainable = False`` on the layers that match ``patterns``; returns their names."""
    names = [layer.name for layer in net.layers]
    frozen = []
    for pattern in patterns:
        matched = fnmatch.filter(names, pattern)
        if not matched:
            raise UserError(f"model.freeze: {pattern!r} matches no layer of {net.name}; its layers are "
                            f"{', '.join(names)}")
        frozen += [n for n in matched if n not in frozen]
    for name in frozen:
        net.get_layer(name).trainable = False
    return frozen
