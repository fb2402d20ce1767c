"""The registry from the command line: list the models, or summarise one and draw its diagram.

    python -m models                                   # every model and its parameter count
    python -m models allcnn_c                          # summary
    python -m models resnet20 --param shortcut=B --diagram resnet20.png
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal

from suite.quiet import import_keras  # noqa: E402

keras = import_keras()  # before the models import TensorFlow, so that its native start-up lines stay hidden

from models import builder_params, create, list_models  # noqa: E402
from suite.config import DEFAULTS  # noqa: E402
from suite.errors import run_cli  # noqa: E402
from suite.keyvalue import parse_items  # noqa: E402
from suite.model_files import write_diagram  # noqa: E402
from suite.runtime import configure  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help="a registered model; none: list them all")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a builder knob (YAML value)")
    p.add_argument("--diagram", metavar="PNG", help="write keras.utils.plot_model's diagram here")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(run, parse_args(argv))


def run(args):
    configure(dict(DEFAULTS["runtime"], strategy="none", precision="float32"), 0, False)  # devices, quietly
    if not args.name:
        for name in list_models():
            print(f"{name:<16} {create(name).count_params():>10,}  {builder_params(name)}")
            keras.backend.clear_session()
        return 0
    net = create(args.name, **dict(parse_items(args.param, "--param")))
    net.summary()
    if args.diagram:
        write_diagram(net, args.diagram)
    return 0


if __name__ == "__main__":
    sys.exit(main())
