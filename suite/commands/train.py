"""Train a CIFAR-10 network from a YAML config.

    python train.py --config configs/minivggnet.yaml
    python train.py --config quickstart                           # a shipped config, by name, from any folder
    python train.py --config configs/resnet20.yaml --set training.epochs=2 --set data.subset=100
    python train.py --resume outputs/resnet20-20261122-153000
    python train.py --config configs/allcnn_c.yaml --dry-run      # check, build, summarise; no training
    python train.py --settings                                    # every config setting, its default and help

Everything a run produces goes into its own folder ``outputs/<name>-<timestamp>/``:
the resolved ``config.yaml``, ``model.txt`` (summary) and ``model.png`` (diagram),
``history.json`` and ``curves.png`` (rewritten every epoch), ``best.weights.h5`` and
``state.h5`` (each with a ``.json`` sidecar), ``final.weights.h5`` and
``metrics.json`` at the end, and ``tensorboard/`` when enabled. ``.lock`` keeps a second
``train.py`` out of the folder while this one runs (``suite.core.lock``).
"""

import argparse
import sys

from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument
from suite.training import cluster


def parse_args(argv):
    p = argparse.ArgumentParser(description="Train a CIFAR-10 CNN from a YAML config.")
    add_version_argument(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="experiment config: a YAML file, or a shipped config's name (quickstart)")
    what.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its folder")
    what.add_argument("--settings", action="store_true", help="list every config setting, its default and help")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config value, e.g. --set training.epochs=5 (repeatable; values are YAML)")
    p.add_argument("--stop-after", type=int, metavar="EPOCH",
                   help="stop cleanly after this epoch, ready for --resume (training in chunks)")
    p.add_argument("--dry-run", action="store_true", help="validate, build and summarise the model; no training")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="one run per value (the product of several --sweep), in one sweep folder, compared at the end;"
                        " --resume <sweep folder> continues it")
    return p.parse_args(argv)


def main(argv=None):
    """``suite.api.train`` with the parsed options."""
    options = vars(parse_args(argv))
    # lazy: TensorFlow loads once the arguments are parsed, so that --help and --version answer at once
    from suite.api.training import settings, train

    if options.pop("settings"):
        print(settings())
        return 0
    code = run_cli(lambda given: cluster.reporting_lost_workers(train, **given).exit_code, options)
    if cluster.lost_contact():  # exit before TensorFlow's collective threads can abort the process
        cluster.exit_now(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
