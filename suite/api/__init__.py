"""The suite as a typed Python API, the one the commands are argument parsing over
(``docs/api.md``)::

    import suite
    run = suite.train("quickstart")                     # -> Run: folder, history, metrics, model
    report = suite.evaluate("allcnn_c", data="sample")  # -> Report: folder, metrics, text
    found = suite.predict(["photo.jpg"], "allcnn_c")    # -> Predictions: files, probabilities, labels
    net = suite.load("allcnn_c")                        # -> Network: model, classify, gradcam

Configs are a path, a shipped config's name or a dict; weights are a shipped name, a run
folder or a weights file. Bad input raises ``suite.core.errors.UserError`` (one line).

Each name is imported from its module when first asked for, so that ``compare`` and
``results`` load no TensorFlow.
"""

import importlib

MODULES = {
    "suite.api.training": ("train", "settings", "Run", "Sweep"),
    "suite.api.weights": ("load", "evaluate", "predict", "export", "visualize", "Network", "Report",
                          "Predictions", "Exported", "Drawn"),
    "suite.api.tools": ("compare", "results", "describe"),
}
WHERE = {name: module for module, names in MODULES.items() for name in names}
__all__ = sorted(WHERE)


def __getattr__(name):
    if f"suite.api.{name}" in MODULES or name == "options":  # a module of the package, not yet imported
        return importlib.import_module(f"suite.api.{name}")
    if name not in WHERE:
        raise AttributeError(f"module 'suite.api' has no attribute {name!r}")
    return getattr(importlib.import_module(WHERE[name]), name)


def __dir__():
    return sorted([*globals(), *__all__])
