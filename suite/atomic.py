"""Write files so that a reader never sees them half-written.

Everything the suite writes into a run folder goes to a temporary name in the same
folder first and is then renamed over the target (``os.replace`` is atomic on POSIX and
Windows), so a process killed at any moment leaves either the old file or the new one.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    ``suffix`` is the temporary name's ending, for writers that insist on one
    (Keras wants ``.weights.h5``). On an exception the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_temporaries(folder):
    """Delete the temporary files a killed process left behind in ``folder``; return their names."""
    stale = [p for p in Path(folder).glob(".*.tmp*") if p.is_file()]
    for p in stale:
        p.unlink()
    return [p.name for p in stale]


def write_text(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=to_builtin) + "\n")


def to_builtin(value):
    """``json.dumps`` fallback: numpy scalars and arrays to Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
