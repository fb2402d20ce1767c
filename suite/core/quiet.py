"""Keep TensorFlow's native start-up chatter off the terminal.

TensorFlow 2.21 writes a few lines from C++ straight to file descriptor 2 when it is
imported and when it first looks for GPUs ("oneDNN custom operations are on", "Could not
find cuda drivers", "failed call to cuInit"), whatever ``TF_CPP_MIN_LOG_LEVEL`` says.
They would bury the suite's own one-line errors, so those two moments run with fd 2
pointed at /dev/null. Python exceptions are unaffected: they are raised, and printed
after the descriptor is restored.
"""

import contextlib
import os
import sys

from suite.core import cpu


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


def import_keras():
    """``import keras`` (and its backend) after ``prepare``, without the native start-up lines."""
    prepare()
    with native_stderr_silenced():
        import keras  # lazy: importing Keras quietly is this function's job
    return keras
