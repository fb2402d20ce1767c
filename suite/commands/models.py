"""The registry from the command line: list the models, or summarise one and draw its diagram.

    python -m models                                   # every model and its parameter count
    python -m models allcnn_c                          # summary
    python -m models resnet20 --param shortcut=B --diagram resnet20.png
"""

import argparse
import sys

from suite.api.tools import describe
from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    add_version_argument(p)
    p.add_argument("name", nargs="?", help="a registered model; none: list them all")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a builder knob (YAML value)")
    p.add_argument("--diagram", metavar="PNG", help="write keras.utils.plot_model's diagram here")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(lambda options: describe(**options), vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
