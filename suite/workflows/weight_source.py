"""Which weights a command works with: ``--pretrained NAME`` (shipped in ``weights/``),
``--weights FILE``, or ``--run RUN_DIR`` with ``--checkpoint final|best``. evaluate.py,
visualize.py, predict.py and export.py take the same three.

A run's ``final`` checkpoint is the default: with the configs' ``data.validation: test``
the ``best`` one is the epoch with the best *test* figure, so a number measured on it was
chosen on the test set (kuangliu/pytorch-cifar issues 14 and 145). Asking for it anyway
prints one warning line, and ``selection`` says so for the report.
"""

import sys
from pathlib import Path

import yaml

from suite.core.errors import UserError
from suite.data.cifar10 import validation_name
from suite.weights.sidecar import read_sidecar

TEST_SET = validation_name("test")


def add_arguments(parser):
    """The three mutually exclusive ways to name weights, and ``--checkpoint``."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--weights", help="a weights file (.weights.h5 with its .json sidecar)")
    what.add_argument("--run", metavar="RUN_DIR", help="a train.py run folder: its final.weights.h5 (--checkpoint)")
    what.add_argument("--pretrained", metavar="NAME",
                      help="weights that ship in weights/, by name (models.list_models(pretrained=True))")
    parser.add_argument("--checkpoint", choices=("final", "best"), default="final",
                        help="with --run: the final epoch's weights (default) or the best epoch's by the run's "
                             "callbacks.monitor; a best checkpoint chosen on the test set is flagged as such")


def weights_file(args):
    """``(weights path, run folder or None)`` from the arguments ``add_arguments`` made."""
    for flag, value in (("--pretrained", args.pretrained), ("--run", args.run), ("--weights", args.weights)):
        if value is not None and not value.strip():
            raise UserError(f"{flag} is empty: give a {'name' if flag == '--pretrained' else 'path'}")
    if args.checkpoint != "final" and not args.run:
        raise UserError("--checkpoint goes with --run")
    if args.pretrained:
        # lazy: keeps TensorFlow unloaded while arguments are parsed
        from suite.models.pretrained import pretrained_weights
        return pretrained_weights(args.pretrained), None
    if not args.run:
        return Path(args.weights), None
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir}: no such folder")
    weights = run_dir / f"{args.checkpoint}.weights.h5"
    if not weights.is_file():
        raise UserError(f"{run_dir}: no {weights.name}; not a finished train.py run folder"
                        + (" (final.weights.h5 is written when a run completes)" if args.checkpoint == "final" else ""))
    if args.checkpoint == "best":
        selection(weights, run_dir, warn=True)
    return weights, run_dir


def selection(weights, run_dir=None, warn=False):
    """How the weights were chosen, for reports: ``{"kind", "epoch", "monitor", "selected_on",
    "test_set_selected"}`` from the sidecar's ``checkpoint`` (and, for runs from before the
    sidecar said, the run's ``config.yaml``); None for weights without a checkpoint record.
    ``warn``: a best checkpoint chosen on the test set prints one warning line."""
    try:
        checkpoint = dict((read_sidecar(weights, missing_ok=True) or {}).get("checkpoint") or {})
    except UserError:  # a broken sidecar is reported where the model is read from it
        checkpoint = {}
    if not checkpoint:
        return None
    if checkpoint.get("kind") == "best" and "selected_on" not in checkpoint:
        checkpoint["selected_on"] = validation_of(run_dir or Path(weights).parent)
    checkpoint["test_set_selected"] = checkpoint.get("kind") == "best" and checkpoint.get("selected_on") == TEST_SET
    if checkpoint["test_set_selected"] and warn:
        print(f"warning: {Path(weights).name} is the epoch with the best {checkpoint.get('monitor', 'monitored')} "
              f"on the test set: its test figures were selected on the test set and overstate the model; "
              f"use the final checkpoint, or train with data.validation: 0.1 to select on held-out training images",
              file=sys.stderr)
    return checkpoint


def validation_of(run_dir):
    """What a run validated on, from its ``config.yaml``: ``TEST_SET`` or the held-out fraction; None if unknown."""
    try:
        validation = (yaml.safe_load((Path(run_dir) / "config.yaml").read_text())["data"] or {}).get("validation", "test")
        return validation_name(validation)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None


def weights_name(args, path):
    """A short name for folders and titles: the pretrained name, the run folder's, or the file's stem."""
    if args.pretrained:
        return args.pretrained
    if args.run:
        return Path(args.run).resolve().name
    return Path(path).name.split(".")[0]
