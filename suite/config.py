"""Experiment configs: YAML files with ``base:`` inheritance and ``--set`` overrides,
validated in full before anything is built.

Every setting is declared once, with its default, its rule (``suite.core.rules``) and its
help: the fixed ones in ``SETTINGS`` below, the keys of the ``optimizer``, ``schedule``
and ``augment`` sections by the functions registered in ``suite.training.optim``,
``suite.training.schedules`` and ``suite.data.augment`` (their keyword-only parameters). ``DEFAULTS``
is derived from both. A config file only states what differs. ``load_config`` resolves
a file into a plain nested dict (every key present, every value checked) that
``dump_config`` writes back as YAML: that resolved file, given to ``train.py --config``,
reproduces the run.

Any problem raises ``UserError`` with one line that names the file (or ``--set``) and
the dotted key, or the line for YAML syntax errors.
"""

import os
from pathlib import Path

import yaml

from suite.core import rules
from suite.core.errors import UserError
from suite.core.keyvalue import parse_items
from suite.core.paths import CONFIGS
from suite.core.registry import did_you_mean
from suite.core.rules import REQUIRED, Setting
from suite.data.augment import AUGMENTATIONS
from suite.data.cifar10 import check_source
from suite.training.optim import OPTIMIZERS
from suite.training.schedules import SCHEDULES

MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
VALIDATION = rules.Rule(lambda v: v == "test" or (rules.is_number(v) and 0 < v < 1)
                        or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                        "'test', a fraction in (0, 1) or a count of images")

# ----------------------------------------------------------------------------- settings
SETTINGS = {
    "name": Setting(None, rules.OPTIONAL_TEXT, "run name, used for the run folder; default: the config file's stem"),
    "base": Setting(None, None, "a config this one extends (path relative to this file)"),
    "model": {
        "name": Setting(REQUIRED, rules.TEXT, "a name from models.list_models()"),
        "params": Setting({}, rules.MAPPING, "the builder's knobs (dropout, batch_norm, depth, ...)"),
        "init": Setting(None, rules.OPTIONAL_TEXT,
                        "start from these weights: a .weights.h5 file or a pretrained name; layers whose shapes "
                        "differ (a head for other classes) start fresh"),
        "freeze": Setting([], rules.NAMES, "layers whose weights stay fixed: names or fnmatch patterns, "
                                           "as `python -m models NAME` prints them"),
    },
    "data": {
        "source": Setting("cifar10", rules.choice("cifar10", "sample"),
                          "cifar10: the full data set; sample: the few-MB sample in data/"),
        "path": Setting(None, rules.OPTIONAL_TEXT,
                        "folder of python batches, .tar.gz or .npz; else $CIFAR10_PATH, else Keras' cache"),
        "subset": Setting(None, rules.OPTIONAL_COUNT, "N training images per class (stratified) for quick runs"),
        "test_subset": Setting(None, rules.OPTIONAL_COUNT, "N test images per class"),
        "classes": Setting(None, rules.CLASSES, "train and test on these classes only (e.g. [cat, dog]), "
                                                "labelled 0, 1, ... in this order"),
        "validation": Setting("test", VALIDATION,
                              "test (as the study projects do: the best checkpoint is then chosen on the test set), "
                              "or a fraction (0.1) or count (5000) of the training images held out to select on"),
        "normalize": Setting("scale", rules.choice("scale", "none", "standardize", "zca"),
                             "scale: x/255; none: the raw pixel values 0..255; standardize: per-channel mean/std of the training images; "
                             "zca: global contrast normalisation and ZCA whitening fitted on them (All-CNN)"),
        "zca_bias": Setting(0.1, rules.POSITIVE, "zca: added to the covariance's eigenvalues (pylearn2's "
                                                 "filter_bias)"),
    },
    "augment": {},  # the keys of suite.data.augment's functions
    "optimizer": {  # and the keys of the chosen suite.training.optim function
        "name": Setting("sgd", rules.choice(OPTIMIZERS.names), "a function registered in suite.training.optim"),
        "lr": Setting(0.01, rules.POSITIVE, "initial learning rate"),
        "weight_decay": Setting(0.0, rules.NON_NEGATIVE, "the papers' coefficient: gradient += weight_decay * w"),
        "weight_decay_mode": Setting("auto", rules.choice("auto", "l2", "decoupled", "coupled"),
                                     "l2 (penalty on kernels), decoupled, coupled (gradient += weight_decay * w "
                                     "for every trained variable, PyTorch's SGD), or auto (decoupled for adamw)"),
        "clipnorm": Setting(None, rules.OPTIONAL_POSITIVE, "clip each gradient to this norm; null: off"),
        "lr_scale": Setting({}, rules.PATTERN_SCALES,
                            "learning-rate factors by variable path pattern, e.g. {'*norm*/beta': 64} "
                            "(not applied to the weight decay)"),
        "train_epochs": Setting({}, rules.PATTERN_EPOCHS,
                                "variables (path patterns) updated only in the first N epochs, e.g. {'whiten/bias': 3}"),
        "lookahead_every": Setting(0, rules.Rule(lambda v: rules.is_int(v) and v >= 0, "an integer >= 0"),
                                   "lookahead: slow weights updated every N steps; 0: off "
                                   "(suite.training.param_groups)"),
        "lookahead_decay": Setting(0.0, rules.UNIT, "lookahead: slow weights keep decay * (t/T)**power of themselves"),
        "lookahead_power": Setting(1.0, rules.NON_NEGATIVE, "lookahead: the power of the decay's ramp"),
    },
    "schedule": {  # and the keys of the chosen suite.training.schedules function
        "name": Setting("constant", rules.choice(SCHEDULES.names), "a function registered in suite.training.schedules"),
    },
    "training": {
        "epochs": Setting(REQUIRED, rules.count, "epochs to train"),
        "batch_size": Setting(64, rules.count, "training images per step"),
        "eval_batch_size": Setting(500, rules.count, "images per step of validation and test"),
        "seed": Setting(42, rules.SEED, "fixes weights, data order, augmentation and dropout"),
        "deterministic": Setting(False, rules.FLAG, "repeatable CPU runs (TF op determinism), a little slower"),
        "label_smoothing": Setting(0.0, rules.UNIT, "of the training loss"),
        "tta": Setting(0, rules.choice(0, 1, 2), "test-time augmentation of the end-of-training test scores, recorded "
                                                 "beside the plain ones: 0 none, 1 mirror, 2 mirror and 1-pixel moves"),
        "verbose": Setting(1, rules.choice(0, 1, 2), "Keras' progress bar: 1 per batch (one line per epoch where "
                                                      "output is no terminal), 2 one line per epoch, 0 silent"),
    },
    "callbacks": {
        "monitor": Setting("val_loss", rules.choice(*MONITORS), "what the best checkpoint tracks"),
        "mode": Setting("auto", rules.choice("auto", "min", "max"), "min, max, or auto (max for accuracies)"),
        "tensorboard": Setting(False, rules.FLAG, "TensorBoard logs in <run>/tensorboard"),
        "early_stopping": Setting(None, rules.OPTIONAL_COUNT, "patience in epochs, or null"),
        "nan_check_every": Setting(20, rules.count, "batches between checks of the loss for NaN"),
    },
    "runtime": {
        "precision": Setting("auto", rules.choice("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                             "auto: mixed bfloat16/float16 on GPUs that have it, float32 on the CPU"),
        "jit_compile": Setting("auto", rules.choice("auto", True, False), "XLA; auto: on GPUs, off on the CPU"),
        "strategy": Setting("auto", rules.choice("auto", "none", "mirrored", "multiworker"),
                            "tf.distribute strategy; auto: mirrored over several devices, multiworker with TF_CONFIG"),
        "memory_growth": Setting(True, rules.FLAG, "TF on GPU: allocate GPU memory as needed"),
        "cpu_devices": Setting(1, rules.count, "split the CPU into this many logical devices (tests the multi-device path)"),
        "threads": Setting(None, rules.OPTIONAL_COUNT, "TF intra-op threads; null: TF's choice"),
        "steps_per_execution": Setting("auto", rules.AUTO_OR_COUNT,
                                       "training steps per call of the compiled step; "
                                       "auto: see suite.training.runtime"),
        "fused_batch_norm": Setting("auto", rules.choice("auto", True, False),
                                    "TensorFlow's fused batch-norm kernel; auto: on under TensorFlow on the CPU"),
        "augment_in": Setting("auto", rules.choice("auto", "input", "model"),
                              "where flip-and-crop runs: auto (input under TensorFlow, model elsewhere), input, model"),
    },
    "output": {
        "dir": Setting("outputs", rules.TEXT, "where run folders are created"),
    },
}
# The sections whose keys come from a registry, and the key that picks the function (None: all of them).
REGISTERED = {"augment": (AUGMENTATIONS, None), "optimizer": (OPTIMIZERS, "name"), "schedule": (SCHEDULES, "name")}
# A child config (or --set) that changes one of these sections' `name` replaces the
# section instead of merging into it, so the parent's keys for another name don't leak in.
POLYMORPHIC = ("model", "optimizer", "schedule")


def _registered_setting(param, entry):
    default = list(param.default) if isinstance(param.default, tuple) else param.default
    return Setting(default, param.annotation, f"{getattr(param.annotation, 'text', 'any value')} ({entry})")


def section_settings(section, name=None):
    """``{key: Setting}`` of ``section``; for the optimizer and schedule, those of the function ``name``."""
    settings = dict(SETTINGS[section])
    if section in REGISTERED:
        registry, picker = REGISTERED[section]
        entries = [name if name is not None else settings[picker].default] if picker else registry.names()
        for entry in entries:
            for key, param in registry.params(entry).items():
                settings.setdefault(key, _registered_setting(param, entry))
    return settings


def _all_keys(section):
    """Every key ``section`` may hold under any name (for did-you-mean)."""
    keys = set(SETTINGS[section])
    if section in REGISTERED:
        keys |= set(REGISTERED[section][0].all_params())
    return keys


def _defaults():
    out = {}
    for section, settings in SETTINGS.items():
        if isinstance(settings, Setting):
            out[section] = settings.default
        else:
            out[section] = {key: s.default for key, s in section_settings(section).items()}
    return out


DEFAULTS = _defaults()  # every section with its default values (the default optimizer's and schedule's keys)


def settings_help():
    """Every setting, its default and its help, one line each: ``train.py --settings``."""
    rows = []
    for section, settings in SETTINGS.items():
        if isinstance(settings, Setting):
            rows.append((section, settings))
            continue
        registry, picker = REGISTERED.get(section, (None, None))
        rows += [(f"{section}.{key}", s) for key, s in settings.items()]
        for name in (registry.names() if picker else [None]) if registry else []:
            rows += [(f"{section}.{key}", s) for key, s in section_settings(section, name).items() if key not in settings]
    return "\n".join(f"{dotted:<30} {_shown(s.default):<12} {s.help}" for dotted, s in rows)


def _shown(default):
    return "(required)" if default is REQUIRED else repr(default)


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
    """``--set`` items (``["a.b=1", ...]``) into a nested dict."""
    out = {}
    for key, value in parse_items(items, "--set", "key.sub=value"):
        node = out
        parts = key.split(".")
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


def shipped_configs():
    """The names of the configs that ship with the suite (``configs/*.yaml``), sorted."""
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def config_path(config):
    """The file a config argument names: a path, or the name of a shipped config
    (``quickstart`` for ``configs/quickstart.yaml``, from any folder and in an installed
    wheel); a path that exists wins over a name."""
    path = Path(config)
    if path.is_file() or path.suffix in (".yaml", ".yml") or len(path.parts) != 1:
        return path
    shipped = CONFIGS / f"{path.name}.yaml"
    if shipped.is_file():
        return shipped
    raise UserError(f"{config}: no such config file, and no shipped config of that name"
                    f"{did_you_mean(config, shipped_configs())}; shipped: {', '.join(shipped_configs())}")


def _resolve_file(path, chain=()):
    """The file merged over its ``base:`` chain, with the origin of every key."""
    path = Path(path)
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p.name) for p in (*chain, real))
        raise UserError(f"{path}: base: forms a cycle ({cycle})")
    return _resolve_mapping(load_yaml(path), path, chain + (real,))


def _resolve_mapping(data, path, chain=(), label=None):
    """A config's mapping (read from ``path``, or given as a dict called ``label`` whose
    ``base:`` is found from ``path``'s folder) merged over its ``base:`` chain."""
    data, label = dict(data), label or str(path)
    base = data.pop("base", None)
    if base is None:
        merged_base, base_origin = {}, {}
    else:
        if not isinstance(base, str) or not base.strip():
            raise UserError(f"{label}: base: must be the path of another config, got {base!r}")
        base_path = (path.parent / base) if not os.path.isabs(base) else Path(base)
        if not base_path.is_file():
            raise UserError(f"{label}: base: {base} not found (looked for {base_path})")
        merged_base, base_origin = _resolve_file(base_path, chain)
    origin = {}
    merged = _merge(merged_base, data, origin, base_origin, label)
    return merged, origin


def load_config(config, overrides=()):
    """Resolve, fill in and validate a config; ``overrides`` are ``--set`` items.

    ``config`` is a file, the name of a shipped config (``config_path``), or a mapping
    as a YAML file would hold it (named ``config`` unless it says ``name:``; a ``base:`` in
    it is a path from the current folder)."""
    if isinstance(config, dict):
        path = Path("config")
        raw, origin = _resolve_mapping(config, Path.cwd() / "config", label="config")
    else:
        path = config_path(config)
        raw, origin = _resolve_file(path)
    sets = parse_set(overrides)
    if sets:
        raw = _merge(raw, sets, origin, dict(origin), "--set")
    raw.setdefault("name", path.name.removesuffix(".yaml").removesuffix(".yml"))
    return validate(raw, origin, "config" if isinstance(config, dict) else str(path))


def _unknown(key, candidates, where):
    leaf = key.rsplit(".", 1)[-1]
    return UserError(f"{where}: {key}: unknown key{did_you_mean(leaf, candidates)}")


def _checked(setting, value, dotted, where):
    """``value`` if ``setting``'s rule passes it (an int where a float is meant made a float)."""
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(setting.default, float):
        value = float(value)  # YAML reads `1` as an int where a float is meant
    err = setting.rule(value) if setting.rule is not None else None
    if err:
        raise UserError(f"{where(dotted)}: {dotted}: {err}")
    return value


def validate(raw, origin, default_file):
    """Check every key and value of ``raw``; return the full config with defaults filled in."""
    def where(key):
        return origin.get(key, default_file)

    for key in raw:
        if key not in SETTINGS:
            raise _unknown(key, SETTINGS, where(key))
    cfg = {}
    for section, settings in SETTINGS.items():
        given = raw.get(section)
        if isinstance(settings, Setting):
            if given is not None and section != "base":
                cfg[section] = _checked(settings, given, section, where)
            continue
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise UserError(f"{where(section)}: {section}: must be a mapping, got {type(given).__name__}")
        cfg[section] = _validate_section(section, given, where)
    cfg.setdefault("name", None)
    cfg = {section: cfg[section] for section in SETTINGS if section in cfg}
    _check_sections(cfg, where)
    return cfg


def _validate_section(section, given, where):
    """One mapping section: its keys known, its values checked, its defaults filled in."""
    picker = REGISTERED.get(section, (None, None))[1]
    name = None
    if picker:
        name = _checked(SETTINGS[section][picker], given.get(picker, SETTINGS[section][picker].default),
                        f"{section}.{picker}", where)
    settings = section_settings(section, name)
    for key in given:
        if key in settings:
            continue
        if key not in _all_keys(section):
            raise _unknown(f"{section}.{key}", _all_keys(section), where(f"{section}.{key}"))
        takes = ", ".join(sorted(settings)) if section == "optimizer" else \
            ", ".join(sorted(k for k in settings if k != "name")) or "no parameters"
        whose = name if section == "optimizer" else f"{section} {name!r}"
        raise UserError(f"{where(f'{section}.{key}')}: {section}.{key}: {whose} takes no {key!r} (it takes {takes})")
    out = {}
    for key, setting in settings.items():
        dotted = f"{section}.{key}"
        if key in given:
            out[key] = _checked(setting, given[key], dotted, where)
        elif setting.default is REQUIRED:
            raise UserError(f"{where(section)}: {dotted}: required")
        else:
            out[key] = setting.default.copy() if isinstance(setting.default, (dict, list)) else setting.default
    return out


def _check_sections(cfg, where):
    """Cross-key checks: those of the chosen optimizer and schedule, the data source, the model."""
    for section, (registry, picker) in REGISTERED.items():
        check = registry.check_of(cfg[section][picker]) if picker else None
        problem = check(cfg[section], cfg) if check else None
        if problem:
            key, message = problem
            raise UserError(f"{where(f'{section}.{key}')}: {section}.{key}: {message}")
    if cfg["data"]["source"] == "sample" and cfg["data"]["path"]:
        raise UserError(f"{where('data.path')}: data.path: the sample has no path; drop data.path or use source: cifar10")
    if cfg["data"]["path"]:
        check_source(cfg["data"]["path"], f"{where('data.path')}: data.path")
    _check_model(cfg["model"], where)


def _check_model(model, where):
    # lazy: keeps TensorFlow unloaded until a config is checked against a model
    from suite.models import builder_params
    try:
        knobs = builder_params(model["name"])
    except UserError as e:  # the registry's unknown-model message, did-you-mean included
        raise UserError(f"{where('model.name')}: model.name: {e}") from None
    for key, value in model["params"].items():
        dotted = f"model.params.{key}"
        if key == "weight_decay":
            raise UserError(f"{where(dotted)}: {dotted}: set optimizer.weight_decay instead")
        if key not in knobs:
            raise _unknown(dotted, knobs, where(dotted))
        default = knobs[key]
        if not rules.fits_default(value, default):
            raise UserError(f"{where(dotted)}: {dotted}: must be {rules.KINDS[type(default)]} like the default "
                            f"{default!r}, got {value!r}")


def dump_config(cfg):
    """The resolved config as YAML, in the section order of SETTINGS; it passes ``load_config`` as it is."""
    header = "# Resolved config: every setting of this run. `python train.py --config <this file>` reruns it.\n"
    return header + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)


def monitor_mode(cfg):
    mode = cfg["callbacks"]["mode"]
    if mode == "auto":
        mode = "max" if "acc" in cfg["callbacks"]["monitor"] else "min"
    return mode
