"""Unpickle CIFAR-10's python batches without letting a file run code.

``pickle.load`` calls whatever callable a file names, so a ``data_batch_1`` holding an
object that reduces to ``os.system`` runs a shell command before anything can look at
the data (CWE-502). The official batches name only numpy's array reconstruction:
``numpy.core.multiarray._reconstruct`` (``numpy._core`` when written by numpy 2),
``numpy.ndarray`` and ``numpy.dtype``; the rest of them is dicts, lists, bytes, strings
and numbers, which pickle builds without naming anything. ``load`` hands out only those
three globals, the "restricting globals" recipe of the pickle documentation
(https://docs.python.org/3/library/pickle.html#restricting-globals), and refuses every
other with one line that names the file and the global.

The array globals are bounded too: ``_reconstruct`` is called only as numpy's own
``ndarray.__reduce__`` calls it, for an empty ndarray that pickle's BUILD then fills from
bytes stored in the file, and ``numpy.ndarray`` itself is not callable from the file, so
no batch can ask for memory that it does not hold.
"""

import pickle

import numpy as np

from suite.core.errors import UserError

HOLDS = "a CIFAR-10 batch holds only dicts, lists, bytes, strings, numbers and numpy arrays"
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's _reconstruct, wherever this numpy keeps it
_NDARRAY = object()  # what the file gets for numpy.ndarray: usable only as _reconstruct's first argument


class Refused(UserError):
    """A batch file named a global outside the official files' three."""


def _empty_array(subtype, shape, dtype):
    if subtype is not _NDARRAY or tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"_reconstruct({shape!r}) other than numpy's own empty-array call")
    return _RECONSTRUCT(np.ndarray, (0,), dtype)


_ALLOWED = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "_reconstruct"): _empty_array,
            ("numpy._core.multiarray", "_reconstruct"): _empty_array}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise Refused(f"{module}.{name}") from None


def load(file, where):
    """The object pickled in the open binary ``file``, built as ``pickle.load(file,
    encoding="bytes")`` would build an official batch; ``where`` names the file in errors.

    Raises ``Refused`` for a global the official files never name; other damage raises
    what pickle raises (``UnpicklingError``, ``EOFError``, ...), for the caller to word.
    """
    try:
        return _BatchUnpickler(file, encoding="bytes").load()
    except Refused as e:
        raise Refused(f"{where}: refused to load {e} ({HOLDS})") from None
