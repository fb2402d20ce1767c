"""The registry from the command line: list the models, or summarise one and draw its diagram.

    python -m models                                   # every model and its parameter count
    python -m models allcnn_c                          # summary
    python -m models resnet20 --param shortcut=B --diagram resnet20.png
"""

import argparse
import os
import sys

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help="a registered model; none: list them all")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a builder knob (YAML value)")
    p.add_argument("--diagram", metavar="PNG", help="write keras.utils.plot_model's diagram here")
    args = p.parse_args(argv)

    import keras
    from models import builder_params, create, list_models
    from suite.errors import UserError

    try:
        if not args.name:
            for name in list_models():
                print(f"{name:<16} {create(name).count_params():>10,}  {builder_params(name)}")
                keras.backend.clear_session()
            return 0
        params = {}
        for item in args.param:
            key, _, value = item.partition("=")
            params[key] = yaml.safe_load(value)
        net = create(args.name, **params)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    net.summary()
    if args.diagram:
        from train import write_diagram
        write_diagram(net, args.diagram)
    return 0


if __name__ == "__main__":
    sys.exit(main())
