"""Sweeps: one run per combination of values (``train.py --sweep key=v1,v2 [--sweep ...]``,
``suite.train(config, sweep={key: [v1, v2]})``), all in one folder, named by their values,
resumable, compared at the end (``suite.api.training`` runs them).

``<output.dir>/<name>-sweep-<timestamp>/`` holds ``sweep.json`` (the plan: the config,
the ``--set`` items, the swept keys and values, and every run's name and overrides),
then one ordinary run folder per combination, and at the end ``curves.png`` and
``table.md`` from compare.py. ``train.py --resume <sweep folder>`` skips the runs that
completed, resumes the one that was stopped, and starts the rest.
"""

import itertools
import json
import re
from pathlib import Path

import keras
import yaml

from suite import models
from suite.config import load_config
from suite.core.atomic import write_json
from suite.core.errors import UserError
from suite.core.folders import new_folder

PLAN = "sweep.json"


def parse_sweeps(items):
    """``[(key, [values])]`` from ``["model.params.activation=relu,elu", ...]``, each value YAML."""
    sweeps = []
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip() or not text.strip():
            raise UserError(f"--sweep {item}: expected KEY=VALUE,VALUE,...")
        try:
            values = yaml.safe_load(f"[{text}]")
        except yaml.YAMLError as e:
            raise UserError(f"--sweep {key}: cannot parse {text!r} ({getattr(e, 'problem', None) or e})") from None
        if len(values) != len({json.dumps(v, sort_keys=True) for v in values}):
            raise UserError(f"--sweep {key}: a value is given twice ({text})")
        if key.strip() in (k for k, _ in sweeps):
            raise UserError(f"--sweep {key}: swept twice; give its values in one --sweep")
        sweeps.append((key.strip(), values))
    return sweeps


def label(value):
    """A value as it appears in a run name: short and safe in a file name."""
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "_"


def plan(config, sets, sweeps):
    """The runs of the sweep: ``[{"name", "set"}]``, one per combination; each config is
    loaded and checked and its network built now, so that a bad value fails before
    anything trains."""
    base = load_config(config, sets)["name"]
    runs = []
    for combination in itertools.product(*(values for _, values in sweeps)):
        overrides = [f"{key}={json.dumps(value)}" for (key, _), value in zip(sweeps, combination)]
        name = "-".join([base] + [f"{key.rsplit('.', 1)[-1]}={label(v)}" for (key, _), v in zip(sweeps, combination)])
        cfg = load_config(config, [*sets, *overrides, f"name={name}"])
        models.create(cfg["model"]["name"], **cfg["model"]["params"])  # the builders check their knobs
        keras.backend.clear_session()
        runs.append({"name": name, "set": overrides})
    if len({r["name"] for r in runs}) != len(runs):
        raise UserError("--sweep: two combinations get the same run name; use values that differ as text")
    return base, runs


def new_sweep_folder(config, sets, sweeps, lock=None):
    """Check every combination (``config``: a file or a dict), make the sweep folder with its plan, and return it;
    ``lock(folder)`` is called before anything is written into it (train.py locks it so
    from its first moment)."""
    base, runs = plan(config, sets, sweeps)
    output = load_config(config, sets)["output"]["dir"]
    content = {"config": config if isinstance(config, dict) else str(config), "set": list(sets), "sweep": dict(sweeps),
               "runs": runs}

    def fill(draft):
        if lock is not None:
            lock(draft)
        write_json(draft / PLAN, content)

    return new_folder(output, f"{base}-sweep", "output.dir: cannot write a sweep folder into", fill=fill)


def read_plan(folder):
    path = Path(folder) / PLAN
    try:
        content = json.loads(path.read_text())
        content["runs"], content["config"], content["set"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a readable sweep plan ({type(e).__name__}: {e})") from None
    return content


def run_folder(folder, name):
    """The run folder of ``name`` in the sweep folder (the newest), or None."""
    found = sorted(p for p in Path(folder).glob(f"{name}-*") if (p / "config.yaml").is_file()
                   and p.name[len(name) + 1:][:1].isdigit())
    return found[-1] if found else None


def finished(run_dir):
    """Whether ``run_dir`` (a path or None) holds a run that completed or diverged (a result
    of the sweep too: trying it again would diverge again)."""
    if run_dir is None:
        return False
    try:
        return json.loads((run_dir / "metrics.json").read_text()).get("status") in ("completed", "diverged")
    except (OSError, ValueError, AttributeError):
        return False
