"""Which weights a command works with: ``--pretrained NAME`` (shipped in ``weights/``),
``--weights FILE``, or ``--run RUN_DIR`` with ``--checkpoint best|final``. evaluate.py,
visualize.py and predict.py take the same three."""

from pathlib import Path

from suite.core.errors import UserError


def add_arguments(parser):
    """The three mutually exclusive ways to name weights, and ``--checkpoint``."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--weights", help="a weights file (.weights.h5 with its .json sidecar)")
    what.add_argument("--run", metavar="RUN_DIR", help="a train.py run folder: its best.weights.h5")
    what.add_argument("--pretrained", metavar="NAME",
                      help="weights that ship in weights/, by name (models.list_models(pretrained=True))")
    parser.add_argument("--checkpoint", choices=("best", "final"), default="best",
                        help="with --run: which checkpoint (default: best)")


def weights_file(args):
    """``(weights path, run folder or None)`` from the arguments ``add_arguments`` made."""
    for flag, value in (("--pretrained", args.pretrained), ("--run", args.run), ("--weights", args.weights)):
        if value is not None and not value.strip():
            raise UserError(f"{flag} is empty: give a {'name' if flag == '--pretrained' else 'path'}")
    if args.checkpoint != "best" and not args.run:
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
    return weights, run_dir


def weights_name(args, path):
    """A short name for folders and titles: the pretrained name, the run folder's, or the file's stem."""
    if args.pretrained:
        return args.pretrained
    if args.run:
        return Path(args.run).resolve().name
    return Path(path).name.split(".")[0]
