"""Keep TensorFlow's native start-up chatter off the terminal.

TensorFlow 2.21 writes a few lines from C++ straight to file descriptor 2 when it is
imported and when it first looks for GPUs ("oneDNN custom operations are on", "Could not
find cuda drivers", "failed call to cuInit"), whatever ``TF_CPP_MIN_LOG_LEVEL`` says.
They would bury the suite's own one-line errors, so those two moments run with fd 2
pointed at /dev/null. Python exceptions are unaffected: they are raised, and printed
after the descriptor is restored.

The first moment is handled once for the whole process: ``install`` (which importing
``suite`` calls) puts a finder on ``sys.meta_path`` that lets the first import of Keras or
TensorFlow, by whichever module, run after ``prepare`` and with fd 2 silenced. So any
module may write a plain ``import keras`` at its top, in any order (the import system's
hook for this: https://docs.python.org/3/reference/import.html#the-meta-path).
"""

import contextlib
import importlib.abc
import os
import sys

from suite.core import cpu

QUIET_MODULES = ("keras", "tensorflow")


@contextlib.contextmanager
def native_stderr_silenced():
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def prepare():
    """What every command does before TensorFlow may load: its C++ log level (in a cluster
    also the log of a lost worker, which ``suite.training.cluster`` reports in one line),
    and its CPU kernels for this CPU (``suite.core.cpu.choose_onednn``). A value the user
    set in the environment wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if os.environ.get("TF_CONFIG") else "2")
    cpu.choose_onednn()


class _QuietLoader(importlib.abc.Loader):
    """A module's own loader, run with fd 2 silenced; put back on the module once it ran."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            with native_stderr_silenced():
                self.loader.exec_module(module)
        finally:
            module.__loader__ = module.__spec__.loader = self.loader

    def __getattr__(self, name):
        return getattr(self.loader, name)


class QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds ``QUIET_MODULES`` with the finders after it and wraps their loaders in ``_QuietLoader``."""

    busy = False  # prepare() itself looks for TensorFlow (importlib.util.find_spec)

    def find_spec(self, name, path=None, target=None):
        if name not in QUIET_MODULES or self.busy:
            return None
        self.busy = True
        try:
            prepare()  # before the module exists: cpu.choose_onednn looks whether TensorFlow is imported
            for finder in sys.meta_path:
                spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
                if spec is not None and spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                    return spec
            return None
        finally:
            self.busy = False


def install():
    """Make the first import of Keras or TensorFlow in this process quiet (idempotent)."""
    if not any(isinstance(f, QuietFirstImport) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietFirstImport())


def import_keras():
    """``import keras`` (and its backend) after ``prepare``, without the native start-up lines."""
    install()
    prepare()
    import keras  # lazy: importing Keras quietly is this function's job
    return keras
