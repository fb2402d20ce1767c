"""The CIFAR-10 CNN suite: one package in layers, each importing only from those before it::

    core -> data -> weights -> models -> analysis -> training -> callbacks -> config -> workflows -> api -> commands

``docs/architecture.md`` says what each layer holds; ``tests/test_architecture.py`` keeps the
order. ``models`` and ``callbacks`` are the checkout's top-level folders of those names, which
pyproject.toml installs as ``suite.models`` and ``suite.callbacks``.

The Python API (``suite.api``, ``docs/api.md``) is reachable from here, loaded on first use
so that ``import suite`` stays light::

    import suite
    run = suite.train("quickstart", overrides={"training.epochs": 2})
    report = suite.evaluate("allcnn_c", data="sample")
"""

from suite.core import quiet
from suite.core.paths import CHECKOUT

quiet.install()  # the first import of Keras or TensorFlow, by any module, keeps TensorFlow's C++ lines off stderr

# Run from a checkout that was never installed, the two folders are found beside this one.
if (CHECKOUT / "models" / "registry.py").is_file():
    __path__.append(str(CHECKOUT))

def __getattr__(name):
    """``suite.train`` and the rest of ``suite.api.__all__``, imported when first asked for."""
    import importlib

    api = importlib.import_module("suite.api")  # light: its modules, which load TensorFlow, load when asked for
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'suite' has no attribute {name!r}")


def __dir__():
    import importlib

    return sorted([*globals(), *importlib.import_module("suite.api").__all__])
