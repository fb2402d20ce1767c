"""The CIFAR-10 CNN suite: one package in layers, each importing only from those before it::

    core -> data -> weights -> models -> analysis -> training -> callbacks -> config -> workflows -> commands

``docs/architecture.md`` says what each layer holds; ``tests/test_architecture.py`` keeps the
order. ``models`` and ``callbacks`` are the checkout's top-level folders of those names, which
pyproject.toml installs as ``suite.models`` and ``suite.callbacks``.
"""

from suite.core.paths import CHECKOUT

# Run from a checkout that was never installed, the two folders are found beside this one.
if (CHECKOUT / "models" / "registry.py").is_file():
    __path__.append(str(CHECKOUT))
