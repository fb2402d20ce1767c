"""Training from Python: ``train`` a config (one run, a resumed run, or a sweep of runs) and
read what it made as a ``Run``; ``python train.py`` is argument parsing over ``train``.

    import suite
    run = suite.train("quickstart")                                    # a shipped config, by name
    run.metrics["final_test_accuracy"], run.history["val_accuracy"], run.folder / "curves.png"
    probs = run.model.predict(uint8_images)                             # its final weights, uint8 in
"""

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from suite.api.weights import Network, load
from suite.config import config_path, settings_help
from suite.core.errors import UserError
from suite.workflows import compare
from suite.workflows import sweep as sweeping
from suite.workflows import train as workflow
from suite.workflows.train import TrainOptions, hold


@dataclass
class Run:
    """A run folder and what is in it (read when asked for, so it is never stale).

    ``exit_code`` is what ``python train.py`` exits with: 0 done (or stopped as asked),
    130 interrupted, 1 diverged or a write failed. A dry run has no folder; its ``model``
    is the network built, untrained.
    """
    folder: Path | None
    exit_code: int = 0
    _network: Network | None = field(default=None, repr=False)
    _dry_model: object = field(default=None, repr=False)

    @classmethod
    def open(cls, folder):
        """The run in ``folder`` (a train.py run folder)."""
        folder = Path(folder)
        if not (folder / "config.yaml").is_file():
            raise UserError(f"{folder}: no config.yaml; not a train.py run folder")
        return cls(folder)

    def _read(self, name):
        if self.folder is None:
            return {}
        try:
            return json.loads((self.folder / name).read_text())
        except (OSError, ValueError):
            return {}

    @property
    def config(self):
        """The resolved config the run trained with (``config.yaml``), as a dict."""
        return yaml.safe_load((self.folder / "config.yaml").read_text()) if self.folder else None

    @property
    def history(self):
        """``history.json``: one list per quantity (``loss``, ``val_accuracy``, ``lr``, ...), one value per epoch."""
        return self._read("history.json")

    @property
    def metrics(self):
        """``metrics.json`` ({} until the run ends): status, final and best test figures, timings."""
        return self._read("metrics.json")

    @property
    def status(self):
        """completed, interrupted, diverged; "running" before metrics.json exists; "dry run"."""
        return "dry run" if self.folder is None else self.metrics.get("status", "running")

    @property
    def curves(self):
        """The learning curves' PNG (``IPython.display.Image(run.curves)`` shows it in a notebook)."""
        return self.folder / "curves.png" if self.folder else None

    def load(self, checkpoint="final"):
        """The run's weights as a ``Network`` (``suite.load``): ``final`` (default) or ``best``."""
        if self.folder is None:
            raise UserError("a dry run trains nothing and has no weights")
        if checkpoint == "final" and self._network is not None:
            return self._network
        network = load(run=self.folder, checkpoint=checkpoint)
        if checkpoint == "final":
            self._network = network
        return network

    @property
    def model(self):
        """The trained model, uint8 images in, probabilities out (the final weights); for a
        dry run the untrained network."""
        return self._dry_model if self.folder is None else self.load().model

    def __repr__(self):
        return f"Run({str(self.folder) if self.folder else 'dry run'!r}, status={self.status!r})"


@dataclass
class Sweep:
    """A sweep folder (``sweep.json``, one run folder per combination, ``curves.png`` and
    ``table.md`` comparing them) and its runs, in the plan's order."""
    folder: Path | None
    runs: list
    exit_code: int = 0

    @property
    def table(self):
        path = self.folder / "table.md" if self.folder else None
        return path.read_text() if path is not None and path.is_file() else ""


def settings():
    """Every config setting, its default and its help, as text (``python train.py --settings``)."""
    return settings_help()


def train(config=None, *, overrides=(), resume=None, sweep=(), stop_after=None, dry_run=False,
          callbacks=()) -> "Run | Sweep":
    """Train ``config`` into a new run folder, or ``resume`` a stopped run (or sweep).

    ``config``: a YAML file, the name of a shipped config (``"quickstart"``, the names of
    ``suite.config.shipped_configs()``), or a dict as a YAML file would hold it.
    ``overrides``: ``{"training.epochs": 2}`` or ``["training.epochs=2"]`` (``--set``).
    ``sweep``: ``{"model.params.activation": ["relu", "elu"]}`` or ``["key=v1,v2"]``
    (``--sweep``): one run per combination, in one sweep folder, compared at the end; a
    ``Sweep`` is returned. ``stop_after``: stop cleanly after this epoch, ready to resume.
    ``callbacks``: Keras callbacks that run before the suite's own. Bad input raises
    ``suite.core.errors.UserError`` with one line; nothing is written then.

    Example::

        run = suite.train("quickstart", overrides={"training.epochs": 2})
        run = suite.train({"model": {"name": "shallownet"}, "data": {"source": "sample"},
                           "training": {"epochs": 1}})
        run = suite.train(resume=run.folder)
        runs = suite.train("quickstart", sweep={"training.batch_size": [32, 64]})
    """
    overrides, sweeps = set_items(overrides), sweep_items(sweep)
    if (config is None) == (resume is None):
        raise UserError("give a config to train, or resume=<a run or sweep folder> (one of them)")
    if sweeps or (resume is not None and (Path(resume) / sweeping.PLAN).is_file()):
        return train_sweep(config, overrides, sweeps, resume, stop_after, dry_run, callbacks)
    outcome = workflow.run(TrainOptions(config=config, overrides=overrides, resume=str(resume) if resume else None,
                                        stop_after=stop_after, dry_run=dry_run), callbacks)
    return Run(outcome.folder, int(outcome), _dry_model=outcome.model if dry_run else None)


def set_items(overrides):
    """``--set`` items from a mapping (values as JSON, which is YAML) or from items."""
    if isinstance(overrides, dict):
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise UserError(f"overrides: give a mapping or a list of KEY=VALUE items, not the text {overrides!r}")
    return list(overrides)


def sweep_items(values):
    """``[(key, [values])]`` (``suite.workflows.sweep.parse_sweeps``) from a mapping or ``--sweep`` items."""
    if isinstance(values, dict):
        for key, options in values.items():
            if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
                raise UserError(f"sweep {key}: give a list of values, got {options!r}")
        return sweeping.parse_sweeps([f"{key}={', '.join(json.dumps(v, default=str) for v in options)}"
                                   for key, options in values.items()])
    return sweeping.parse_sweeps(list(values))


# ----------------------------------------------------------------------------- sweeps
def train_sweep(config, overrides, sweeps, resume, stop_after, dry_run, callbacks):
    """Every run of a sweep (``suite.workflows.sweep``), each an ordinary ``train`` in the sweep
    folder, then compare.py's curves and table of them all. Completed runs are skipped, so
    that resuming the sweep folder continues where it stopped. The sweep folder is locked
    for the whole sweep, and each run's folder as it runs."""
    if resume is not None and (sweeps or overrides):
        raise UserError("--resume continues a sweep with its own plan; --sweep and --set cannot change it")
    if dry_run:
        return show_sweep(config, overrides, sweeps, resume)
    with contextlib.ExitStack() as locks:
        if resume is not None:
            folder = Path(resume)
            hold(folder, "sweep folder", locks)
        else:
            source = config if isinstance(config, dict) else str(config_path(config).resolve())
            folder = sweeping.new_sweep_folder(source, overrides, sweeps,
                                            lock=lambda draft: hold(draft, "sweep folder", locks))
        return sweep_runs(folder, stop_after, callbacks)


def show_sweep(config, overrides, sweeps, resume):
    """A sweep's dry run: its runs and, resuming, which are finished; nothing trained or written."""
    if resume is not None:
        folder = Path(resume)
        runs = sweeping.read_plan(folder)["runs"]
        print("\n".join([f"sweep of {len(runs)} runs in {folder} (dry run: nothing trained):"]
                        + [f"  {r['name']}: " + ("finished" if sweeping.finished(sweeping.run_folder(folder, r["name"]))
                                                 else "to run") for r in runs]))
        return Sweep(folder, [])
    _, runs = sweeping.plan(config, overrides, sweeps)
    print("\n".join([f"sweep of {len(runs)} runs (dry run: nothing written):"] + [f"  {r['name']}" for r in runs]))
    return Sweep(None, [])


def sweep_runs(folder, stop_after, callbacks):
    """The runs of the sweep in ``folder`` that have not finished, each through ``train``, then the comparison."""
    plan = sweeping.read_plan(folder)
    runs, done = plan["runs"], []
    print(f"sweep of {len(runs)} runs in {folder}")
    for i, entry in enumerate(runs, start=1):
        run_dir = sweeping.run_folder(folder, entry["name"])
        if sweeping.finished(run_dir):
            print(f"[{i}/{len(runs)}] {entry['name']}: finished, {run_dir}")
            done.append(Run(run_dir))
            continue
        print(f"[{i}/{len(runs)}] {entry['name']}", flush=True)
        if run_dir is not None:
            run = train(resume=run_dir, stop_after=stop_after, callbacks=callbacks)
        else:
            run = train(plan["config"], stop_after=stop_after, callbacks=callbacks,
                        overrides=[*plan["set"], *entry["set"], f"name={entry['name']}", f"output.dir={folder}"])
        done.append(run)
        if not sweeping.finished(sweeping.run_folder(folder, entry["name"])):  # failed or stopped
            print(f"sweep stopped at {entry['name']}; continue it with: python train.py --resume {folder}",
                  file=sys.stderr)
            return Sweep(folder, done, run.exit_code)
    found = compare.find_runs([str(folder)])
    labels = compare.run_labels(found)
    code = (compare.curves(found, labels, str(folder / "curves.png"), f"Sweep: {folder.name}")
            or compare.table(found, labels, str(folder / "table.md"), None))
    return Sweep(folder, done, code)
