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

from suite import cpu


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


def import_keras():
    """``import keras`` (and its backend) without the native start-up lines, after the
    suite has chosen TensorFlow's CPU kernels for this CPU (``suite.cpu.choose_onednn``)."""
    cpu.choose_onednn()
    with native_stderr_silenced():
        import keras
    return keras
