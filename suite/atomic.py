"""Write files so that a reader never sees them half-written, and others may read them.

Everything the suite writes into a run folder goes to a temporary name in the same
folder first and is then renamed over the target (``os.replace`` is atomic on POSIX and
Windows), so a process killed at any moment leaves either the old file or the new one.
After the rename the folder itself is synced, so that the new name survives a power
loss too (POSIX: a rename is durable once its directory is fsynced; see fsync(2)).

Temporary files and folders are made with ``os.open(..., 0o666)`` and
``os.mkdir(..., 0o777)`` under random names, so the umask applies as it does for a
plain ``open``: ``tempfile.mkstemp`` and ``mkdtemp`` make them 0600 and 0700 whatever
the umask, which would hide every run from a colleague or a TensorBoard server running
as another user.
"""

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path

_ATTEMPTS = 100  # random names (32 bits each) tried before giving up


def _create_unique(parent, prefix, suffix, create):
    """``create(path)`` for a fresh random name ``parent/<prefix><8 hex digits><suffix>``."""
    for _ in range(_ATTEMPTS):
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            create(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name {prefix}*{suffix}", str(parent))


def temporary_file(parent, prefix, suffix):
    """Create an empty file under a new random name in ``parent``, mode 0o666 less the umask."""
    def create(path):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666))
    return _create_unique(parent, prefix, suffix, create)


def temporary_dir(parent, prefix, suffix=".tmp"):
    """Create a folder under a new random name in ``parent``, mode 0o777 less the umask
    (what ``tempfile.mkdtemp`` does, but readable as the umask says)."""
    return _create_unique(parent, prefix, suffix, lambda path: os.mkdir(path, 0o777))


def sync_folder(folder):
    """fsync ``folder`` so that a rename into it survives a power loss (a no-op on Windows,
    which cannot open folders, and on file systems that do not sync folders)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    ``suffix`` is the temporary name's ending, for writers that insist on one
    (Keras wants ``.weights.h5``). On an exception the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    tmp = temporary_file(path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        sync_folder(path.parent)
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
