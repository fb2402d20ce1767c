"""Experiment configs: YAML files with ``base:`` inheritance and ``--set`` overrides,
validated in full before anything is built.

``DEFAULTS`` below is the one place that holds every setting and its default; a config
file only states what differs. ``load_config`` resolves a file into a plain nested dict
(every key present, every value checked) that ``dump_config`` writes back as YAML: that
resolved file, given to ``train.py --config``, reproduces the run.

Any problem raises ``UserError`` with one line that names the file (or ``--set``) and
the dotted key, or the line for YAML syntax errors.
"""

import difflib
import math
import os
from pathlib import Path

import yaml

from suite.errors import UserError

# ----------------------------------------------------------------------------- settings
# Sections, their keys and defaults. A value of REQUIRED must be given by the config.
REQUIRED = object()

DEFAULTS = {
    "name": None,            # run name, used for the run folder; default: the config file's stem
    "base": None,            # a config this one extends (path relative to this file)
    "model": {
        "name": REQUIRED,    # a name from models.list_models()
        "params": {},        # the builder's knobs (dropout, batch_norm, depth, ...)
    },
    "data": {
        "source": "cifar10",     # cifar10: the full data set; sample: the few-MB sample in data/
        "path": None,            # folder of python batches, .tar.gz or .npz; else $CIFAR10_PATH, else Keras' cache
        "subset": None,          # N training images per class (stratified) for quick runs
        "test_subset": None,     # N test images per class
        "validation": "test",    # "test" (as the study projects do) or a fraction of the training set held out
        "normalize": "scale",    # scale: x/255; standardize: per-channel mean/std of the training images
    },
    "augment": {
        "flip": False,           # random horizontal flip
        "crop": 0,               # pad this many zero pixels each side, then crop 32x32 at random (0: off)
        "translate": 0.0,        # random translation up to this fraction of the size (0: off)
    },
    "optimizer": {               # the keys each optimizer takes are in OPTIMIZER_KEYS
        "name": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": False,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "rho": 0.9,
        "weight_decay": 0.0,          # the papers' coefficient: gradient += weight_decay * w
        "weight_decay_mode": "auto",  # l2 (penalty on kernels), decoupled, or auto (decoupled for adamw)
        "clipnorm": None,
    },
    "schedule": {                # the keys each schedule takes are in SCHEDULE_KEYS
        "name": "constant",
        "factor": 0.5,           # step: lr0 * factor ** floor((1 + epoch) / every); piecewise: times factor at each milestone
        "every": 5,              # step, exponential: epochs between drops
        "decay": 0.0,            # time: lr0 / (1 + decay * iteration), Keras 2's optimizer `decay`
        "power": 1.0,            # polynomial (1: linear)
        "end_lr": 0.0,           # polynomial
        "rate": 0.96,            # exponential: lr0 * rate ** (epoch / every)
        "staircase": False,      # exponential
        "milestones": [],        # piecewise: epochs at which lr is multiplied by factor
        "warmup_epochs": 0.0,    # cosine: linear warmup from 0
        "min_lr": 0.0,           # cosine: lr at the end
    },
    "training": {
        "epochs": REQUIRED,
        "batch_size": 64,
        "eval_batch_size": 500,
        "seed": 42,
        "deterministic": False,   # repeatable CPU runs (TF op determinism), a little slower
        "label_smoothing": 0.0,
        "verbose": 1,             # Keras' progress bar: 1 per batch, 2 one line per epoch, 0 silent
    },
    "callbacks": {
        "monitor": "val_loss",    # what the best checkpoint tracks
        "mode": "auto",           # min, max, or auto (max for accuracies)
        "tensorboard": False,     # TensorBoard logs in <run>/tensorboard
        "early_stopping": None,   # patience in epochs, or None
        "nan_check_every": 20,    # batches between checks of the loss for NaN
    },
    "runtime": {
        "precision": "auto",      # auto (mixed bfloat16/float16 on GPUs that have it, float32 on CPU), float32, mixed_float16, mixed_bfloat16
        "jit_compile": "auto",    # auto (XLA on GPU, off on CPU where it is slower), true, false
        "strategy": "auto",       # auto, none, mirrored, multiworker
        "memory_growth": True,    # TF on GPU: allocate GPU memory as needed
        "cpu_devices": 1,         # split the CPU into this many logical devices (tests the multi-device path)
        "threads": None,          # TF intra-op threads; None: TF's choice
        "steps_per_execution": "auto",  # training steps per call of the compiled step: auto (see suite.runtime) or an integer >= 1
        "augment_in": "auto",     # where flip-and-crop runs: auto (input under TensorFlow, model elsewhere), input (tf.data), model
    },
    "output": {
        "dir": "outputs",
    },
}

# Keys of the polymorphic sections that only some names take.
OPTIMIZER_KEYS = {
    "sgd": {"momentum", "nesterov"},
    "adam": {"beta_1", "beta_2", "epsilon"},
    "adamw": {"beta_1", "beta_2", "epsilon"},
    "rmsprop": {"rho", "momentum", "epsilon"},
}
OPTIMIZER_COMMON = {"name", "lr", "weight_decay", "weight_decay_mode", "clipnorm"}
SCHEDULE_KEYS = {
    "constant": set(),
    "step": {"factor", "every"},
    "time": {"decay"},
    "polynomial": {"power", "end_lr"},
    "exponential": {"rate", "every", "staircase"},
    "piecewise": {"milestones", "factor"},
    "cosine": {"warmup_epochs", "min_lr"},
}
# A child config (or --set) that changes one of these sections' `name` replaces the
# section instead of merging into it, so the parent's keys for another name don't leak in.
POLYMORPHIC = ("model", "optimizer", "schedule")

MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


# ----------------------------------------------------------------------------- checks
def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(key, value):
    """The error message for a bad value of the dotted ``key``, or None if it is good."""
    section, _, leaf = key.partition(".")
    positive_int = {"training.epochs", "training.batch_size", "training.eval_batch_size",
                    "schedule.every", "callbacks.nan_check_every", "runtime.cpu_devices"}
    if key == "runtime.steps_per_execution":
        ok = value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        return None if ok else f"must be auto or an integer >= 1, got {value!r}"
    if key in positive_int:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {value!r}"
        return None if value >= 1 else f"must be >= 1, got {value}"
    choices = {
        "data.source": ("cifar10", "sample"),
        "data.normalize": ("scale", "standardize"),
        "optimizer.name": tuple(OPTIMIZER_KEYS),
        "optimizer.weight_decay_mode": ("auto", "l2", "decoupled"),
        "schedule.name": tuple(SCHEDULE_KEYS),
        "callbacks.monitor": MONITORS,
        "callbacks.mode": ("auto", "min", "max"),
        "runtime.precision": ("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        "runtime.strategy": ("auto", "none", "mirrored", "multiworker"),
        "training.verbose": (0, 1, 2),
        "runtime.jit_compile": ("auto", True, False),
        "runtime.augment_in": ("auto", "input", "model"),
    }
    if key in choices:
        if value in choices[key] and type(value) in {type(c) for c in choices[key]}:
            return None
        close = difflib.get_close_matches(str(value), [str(c) for c in choices[key]], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown value {value!r}{hint}; choose from {', '.join(map(str, choices[key]))}"
    if key in ("optimizer.lr",):
        return None if _is_number(value) and value > 0 else f"must be a number > 0, got {value!r}"
    if key in ("optimizer.momentum", "optimizer.rho", "optimizer.beta_1", "optimizer.beta_2",
               "training.label_smoothing"):
        ok = _is_number(value) and 0 <= value < 1
        return None if ok else f"must be a number in [0, 1), got {value!r}"
    if key in ("schedule.factor", "schedule.rate"):
        ok = _is_number(value) and 0 < value <= 1
        return None if ok else f"must be a number in (0, 1], got {value!r}"
    if key in ("optimizer.weight_decay", "schedule.decay", "schedule.end_lr", "schedule.min_lr",
               "schedule.warmup_epochs", "augment.translate"):
        ok = _is_number(value) and value >= 0 and (key != "augment.translate" or value < 0.5)
        return None if ok else f"must be a number >= 0{' and < 0.5' if key == 'augment.translate' else ''}, got {value!r}"
    if key in ("optimizer.epsilon", "schedule.power"):
        return None if _is_number(value) and value > 0 else f"must be a number > 0, got {value!r}"
    if key in ("optimizer.clipnorm",):
        return None if value is None or (_is_number(value) and value > 0) else f"must be null or a number > 0, got {value!r}"
    if key in ("augment.crop",):
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 16
        return None if ok else f"must be an integer number of pixels in 0..16, got {value!r}"
    if key in ("training.seed",):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else f"must be an integer >= 0, got {value!r}"
    if key in ("data.subset", "data.test_subset", "callbacks.early_stopping", "runtime.threads"):
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        return None if ok else f"must be null or an integer >= 1, got {value!r}"
    if key == "data.validation":
        ok = value == "test" or (_is_number(value) and 0 < value < 1)
        return None if ok else f"must be 'test' or a fraction in (0, 1), got {value!r}"
    if key == "schedule.milestones":
        ok = isinstance(value, list) and all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in value) \
            and value == sorted(set(value))
        return None if ok else f"must be a sorted list of distinct epochs >= 1, got {value!r}"
    if key in ("name", "data.path", "output.dir", "model.name"):
        ok = isinstance(value, str) and value.strip() != "" or (value is None and key not in ("output.dir", "model.name"))
        return None if ok else f"must be a non-empty string, got {value!r}"
    if key == "model.params":
        return None if isinstance(value, dict) else f"must be a mapping of the model's knobs, got {type(value).__name__}"
    default = _get(DEFAULTS, key)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    return None


# ----------------------------------------------------------------------------- loading
def load_yaml(path, what="config"):
    """Read one YAML mapping safely: no Python tags, one line on any problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        tag = (e.problem or "").split("tag ")[-1].strip() if e.problem else "?"
        raise UserError(f"{path}:{mark.line + 1}: YAML tag {tag} is not allowed (configs are plain data)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{where}: YAML syntax error: {problem}") from None
    if data is None:
        raise UserError(f"{path}: empty {what} file")
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections, got a {type(data).__name__}")
    return data


def parse_set(items):
    """``["a.b=1", ...]`` into a nested dict, each value read as YAML (``0.1``, ``true``, ``[1, 2]``)."""
    out = {}
    for item in items or ():
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--set {item}: expected key.sub=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise UserError(f"--set {key}: cannot parse value {text!r} ({problem})") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: {part} is set twice")
        node[parts[-1]] = value
    return out


def _merge(base, over, origin, base_origin, source, prefix=""):
    """Merge ``over`` into a copy of ``base``; record in ``origin`` which file gave each key."""
    out = dict(base)
    origin.update({k: v for k, v in base_origin.items() if k.startswith(prefix)})
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        replace = (
            prefix == "" and key in POLYMORPHIC and isinstance(value, dict) and isinstance(base.get(key), dict)
            and "name" in value and value["name"] != base[key].get("name")
        )
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not replace and key != "params":
            out[key] = _merge(base[key], value, origin, base_origin, source, dotted + ".")
        else:
            if replace:
                for k in [k for k in origin if k.startswith(dotted + ".")]:
                    del origin[k]
            out[key] = value
            _record(origin, dotted, value, source)
    return out


def _record(origin, dotted, value, source):
    origin[dotted] = source
    if isinstance(value, dict):
        for k, v in value.items():
            _record(origin, f"{dotted}.{k}", v, source)


def _resolve_file(path, chain=()):
    """The file merged over its ``base:`` chain, with the origin of every key."""
    path = Path(path)
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p.name) for p in (*chain, real))
        raise UserError(f"{path}: base: forms a cycle ({cycle})")
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        merged_base, base_origin = {}, {}
    else:
        if not isinstance(base, str) or not base.strip():
            raise UserError(f"{path}: base: must be the path of another config, got {base!r}")
        base_path = (path.parent / base) if not os.path.isabs(base) else Path(base)
        if not base_path.is_file():
            raise UserError(f"{path}: base: {base} not found (looked for {base_path})")
        merged_base, base_origin = _resolve_file(base_path, (*chain, real))
    origin = {}
    merged = _merge(merged_base, data, origin, base_origin, str(path))
    return merged, origin


def load_config(path, overrides=()):
    """Resolve, fill in and validate a config file; ``overrides`` are ``--set`` items."""
    path = Path(path)
    raw, origin = _resolve_file(path)
    sets = parse_set(overrides)
    if sets:
        raw = _merge(raw, sets, origin, dict(origin), "--set")
    raw.setdefault("name", path.name.removesuffix(".yaml").removesuffix(".yml"))
    return validate(raw, origin, str(path))


def _get(tree, dotted):
    node = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _unknown(key, candidates, where):
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, list(candidates), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UserError(f"{where}: {key}: unknown key{hint}")


def validate(raw, origin, default_file):
    """Check every key and value of ``raw``; return the full config with defaults filled in."""
    def where(key):
        return origin.get(key, default_file)

    cfg = {}
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise _unknown(key, DEFAULTS, where(key))
    for section, defaults in DEFAULTS.items():
        given = raw.get(section, None if not isinstance(defaults, dict) else {})
        if not isinstance(defaults, dict):
            if given is not None and section != "base":
                err = _check(section, given)
                if err:
                    raise UserError(f"{where(section)}: {section}: {err}")
            cfg[section] = given if section != "base" else None
            continue
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise UserError(f"{where(section)}: {section}: must be a mapping, got {type(given).__name__}")
        cfg[section] = {}
        for key in given:
            if key not in defaults:
                raise _unknown(f"{section}.{key}", defaults, where(f"{section}.{key}"))
        for key, default in defaults.items():
            dotted = f"{section}.{key}"
            if key in given:
                value = given[key]
                if isinstance(value, int) and not isinstance(value, bool) and isinstance(default, float):
                    value = float(value)  # YAML reads `1` as an int where a float is meant
                err = _check(dotted, value)
                if err:
                    raise UserError(f"{where(dotted)}: {dotted}: {err}")
            elif default is REQUIRED:
                raise UserError(f"{where(section)}: {dotted}: required")
            else:
                value = default.copy() if isinstance(default, (dict, list)) else default
            cfg[section][key] = value
    cfg.pop("base")
    _check_sections(cfg, raw, where)
    return cfg


def _check_sections(cfg, raw, where):
    """Cross-key checks: keys that only some names take, model knobs, epochs vs. schedule."""
    opt, sched = cfg["optimizer"], cfg["schedule"]
    for key in raw.get("optimizer", {}) or {}:
        if key not in OPTIMIZER_COMMON and key not in OPTIMIZER_KEYS[opt["name"]]:
            raise UserError(f"{where('optimizer.' + key)}: optimizer.{key}: {opt['name']} takes no {key!r} "
                            f"(it takes {', '.join(sorted(OPTIMIZER_COMMON | OPTIMIZER_KEYS[opt['name']]))})")
    if opt["name"] == "adamw" and opt["weight_decay_mode"] == "l2":
        raise UserError(f"{where('optimizer.weight_decay_mode')}: optimizer.weight_decay_mode: adamw decays decoupled; use adam for l2")
    for key in raw.get("schedule", {}) or {}:
        if key != "name" and key not in SCHEDULE_KEYS[sched["name"]]:
            takes = ", ".join(sorted(SCHEDULE_KEYS[sched["name"]])) or "no parameters"
            raise UserError(f"{where('schedule.' + key)}: schedule.{key}: schedule {sched['name']!r} takes no {key!r} (it takes {takes})")
    epochs = cfg["training"]["epochs"]
    if sched["name"] == "piecewise" and sched["milestones"] and sched["milestones"][-1] >= epochs:
        raise UserError(f"{where('schedule.milestones')}: schedule.milestones: {sched['milestones'][-1]} is not before the last epoch ({epochs})")
    if sched["name"] == "cosine" and sched["warmup_epochs"] >= epochs:
        raise UserError(f"{where('schedule.warmup_epochs')}: schedule.warmup_epochs: must be < training.epochs ({epochs})")
    if cfg["data"]["source"] == "sample" and cfg["data"]["path"]:
        raise UserError(f"{where('data.path')}: data.path: the sample has no path; drop data.path or use source: cifar10")
    if cfg["data"]["path"]:
        from suite.data import check_source
        check_source(cfg["data"]["path"], f"{where('data.path')}: data.path")
    _check_model(cfg["model"], where)


def _check_model(model, where):
    from models import builder_params, list_models
    name = model["name"]
    if name not in list_models():
        close = difflib.get_close_matches(str(name), list_models(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"{where('model.name')}: model.name: unknown model {name!r}{hint}; "
                        f"available: {', '.join(list_models())}")
    knobs = builder_params(name)
    for key, value in model["params"].items():
        dotted = f"model.params.{key}"
        if key == "weight_decay":
            raise UserError(f"{where(dotted)}: {dotted}: set optimizer.weight_decay instead")
        if key not in knobs:
            raise _unknown(dotted, knobs, where(dotted))
        default = knobs[key]
        expected = (float, int) if isinstance(default, float) else type(default)
        if default is not None and not isinstance(default, tuple) and (
                not isinstance(value, expected) or isinstance(value, bool) != isinstance(default, bool)):
            raise UserError(f"{where(dotted)}: {dotted}: must be {type(default).__name__} like the default "
                            f"{default!r}, got {value!r}")


def dump_config(cfg):
    """The resolved config as YAML, in the section order of DEFAULTS.

    The optimizer and schedule sections keep only the keys their ``name`` takes, so the
    file passes ``load_config`` again as it is.
    """
    cfg = dict(cfg)
    opt_keys = OPTIMIZER_COMMON | OPTIMIZER_KEYS[cfg["optimizer"]["name"]]
    cfg["optimizer"] = {k: v for k, v in cfg["optimizer"].items() if k in opt_keys}
    sched_keys = {"name"} | SCHEDULE_KEYS[cfg["schedule"]["name"]]
    cfg["schedule"] = {k: v for k, v in cfg["schedule"].items() if k in sched_keys}
    header = "# Resolved config: every setting of this run. `python train.py --config <this file>` reruns it.\n"
    return header + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)


def monitor_mode(cfg):
    mode = cfg["callbacks"]["mode"]
    if mode == "auto":
        mode = "max" if "acc" in cfg["callbacks"]["monitor"] else "min"
    return mode


def steps_per_epoch(num_train, batch_size):
    return math.ceil(num_train / batch_size)
