"""A registered model from the command line: every model with its parameter count, or one
model's summary and diagram; ``run(args)`` takes ``suite/commands/models.py``'s arguments.
"""

import keras

from suite.analysis.model_files import write_diagram
from suite.config import DEFAULTS
from suite.core.keyvalue import parse_items
from suite.models import builder_params, create, list_models
from suite.training.runtime import configure


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
