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

A write that fails (the disk is full, a quota is reached, the folder became read-only,
the device failed) raises ``suite.core.errors.WriteError``, which names the file meant, not
the temporary one, and the system's words for the cause; the file it would have
replaced is untouched.
"""

import contextlib
import errno
import gc
import io
import json
import os
import re
import secrets
import shutil
from pathlib import Path

from suite.core.errors import WriteError, one_line

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
    ``path`` is left as it was; a failure to write is a WriteError naming ``path``.
    """
    path = Path(path)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    tmp = None
    try:
        with writing(path):
            tmp = temporary_file(path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            sync_folder(path.parent)
    finally:
        if tmp is not None and os.path.exists(tmp):
            with contextlib.suppress(OSError):  # a folder turned read-only keeps it; --resume removes it
                os.remove(tmp)


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a new temporary folder beside ``path``, which must not exist; rename it to
    ``path`` once filled. On an exception the folder is removed, so ``path`` never
    exists half-written; a failure to write is a WriteError naming ``path``."""
    path = Path(path)
    tmp = None
    try:
        with writing(path):
            tmp = temporary_dir(path.parent, prefix=f".{path.name}.")
            yield tmp
            os.rename(tmp, path)
            sync_folder(path.parent)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def writing(path):
    """Turn a failure to write ``path`` (or its temporary) into a WriteError naming it;
    other exceptions pass unchanged."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        failure = write_error(e, path)
        if failure is None:
            raise
        _release_the_writer(e)
        raise failure from e


_ERRNO_IN_MESSAGE = re.compile(r"errno = (\d+)")  # how h5py's messages carry the C library's errno


def write_error(error, path):
    """The WriteError for ``error``, raised while writing ``path``, or None if it is
    something else: a bug, or an OSError about another file (one the writer reads).
    h5py raises OSError, or RuntimeError when closing the file fails too, often without
    ``errno`` set but with ``errno = 28`` in its message."""
    if isinstance(error, WriteError) or (isinstance(error, OSError) and not _about(error.filename, Path(path))):
        return None
    number = _errno(error) or _errno(error.__context__)
    if number is None and not isinstance(error, OSError):
        return None
    cause = os.strerror(number) if number else getattr(error, "strerror", None) or one_line(error)
    return WriteError(number, cause, os.fspath(path))


def _about(filename, path):
    """Whether an OSError's ``filename`` is ``path``, one of its temporary names, its
    folder, or none at all (a failed ``write`` or ``fsync`` names no file)."""
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return True
    named = Path(os.fsdecode(filename))
    return named == path.parent or (named.parent == path.parent
                                    and (named.name == path.name or named.name.startswith(f".{path.name}.")))


def _errno(error):
    if isinstance(error, OSError) and error.errno:
        return error.errno
    found = _ERRNO_IN_MESSAGE.search(str(error)) if error is not None else None
    return int(found.group(1)) if found and int(found.group(1)) else None


def _release_the_writer(error):
    """Free, now and quietly, what the failed writer left in the frames of ``error``: an
    h5py file tries to flush into the same full disk once more when it is freed, and
    prints that failure as a traceback (then "Exception ignored in ... __dealloc__"),
    whenever it happens to be freed. Keras' tracebacks leave out its own frames, so the
    frames are found through the callers of those that are left."""
    frames = []
    while error is not None:
        tb = error.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            while frame is not None:
                frames.append(frame)
                frame = frame.f_back
            tb = tb.tb_next
        error = error.__context__
    with contextlib.redirect_stderr(io.StringIO()):
        for frame in frames:
            with contextlib.suppress(RuntimeError):  # a frame still running keeps its variables
                frame.clear()
        frames.clear()
        gc.collect()


def make_folders(path):
    """``path`` and its missing parents (``mkdir -p``); a failure is a WriteError naming
    the folder that could not be made."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(e.errno, e.strerror, os.fspath(e.filename or path)) from None


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
