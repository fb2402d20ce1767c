"""One process at a time in a run folder or a sweep folder.

``train.py`` holds an exclusive advisory lock (``flock(2)``) on ``<folder>/.lock`` for as
long as it may write the folder: from the moment a new folder is made (the lock is taken
in the hidden draft, before the folder gets its name) or, on ``--resume``, before the
folder is touched. A second ``train.py`` on the same folder (the same resume started
twice, a sweep resumed while it runs) finds the lock taken and stops before it changes
anything, with one line that names the holder: the lock file holds the holder's host,
process id and start time.

The kernel releases the lock when the holder's file is closed, which happens however
the process ends (SIGKILL and crashes included), so a lock never outlives its process
and nothing needs cleaning up. The file itself stays: deleting it would let a process
that opened it just before lock a file that no longer has the name.

Where this holds:

* Local file systems (ext4, XFS, btrfs, APFS, tmpfs): always, between any processes of
  the machine.
* NFS: Linux (since 2.6.12) emulates ``flock`` with POSIX byte-range locks, which
  NFSv4 (and v3 with the NLM lock manager) enforces at the server, so processes on
  different machines exclude each other if the server supports locking; a mount with
  ``nolock`` or ``local_lock=flock`` makes the locks local to each client again. A
  server that refuses locks (ENOLCK) gets a warning and no lock.
* Other network and FUSE file systems (SMB/CIFS, sshfs, many cluster file systems) may
  keep locks local to one client: two machines can then both write a folder.

A forked child inherits the open lock (train.py starts none). On Windows there is no
``fcntl``: no lock is taken, as before.
"""

import datetime
import errno
import json
import os
import socket
import sys
from pathlib import Path

from suite.core.errors import UserError, WriteError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

FILE = ".lock"
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # a file system that takes no locks


class FolderLock:
    """A held lock; ``release()`` (or the end of a ``with`` block, or of the process) frees it."""

    def __init__(self, fd):
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_folder(folder, what="run folder"):
    """Lock ``folder`` for this process; UserError naming the holder if another process
    has it. ``what`` names the folder in that message."""
    path = Path(folder) / FILE
    try:
        fd = _open(path)
    except OSError as e:
        raise WriteError(e.errno, e.strerror, os.fspath(path)) from None
    if fcntl is None:
        return FolderLock(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _read_holder(fd)
        os.close(fd)
        if e.errno in _UNSUPPORTED:
            print(f"warning: {folder}: the file system takes no locks ({e.strerror}); nothing keeps a second "
                  f"process from writing this {what} at the same time", file=sys.stderr)
            return FolderLock(None)
        raise UserError(f"{folder}: this {what} is in use by {holder}; wait until it ends, or stop it, "
                        f"and try again") from None
    _write_holder(fd)
    return FolderLock(fd)


def _holder():
    """Who holds a lock taken now by this process, as the lock file records it."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "since": datetime.datetime.now().isoformat(sep=" ", timespec="seconds")}


def _open(path):
    """The lock file, made if missing; read-only where another user's is not ours to write
    (flock needs no write access; the holder it names then stays theirs)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY)


def _write_holder(fd):
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_holder()) + "\n").encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds all the same, only a refusal cannot name the holder


def _read_holder(fd):
    """``process <pid> on <host> (since <time>)`` from the lock file, or words to say it names no one yet."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode())
        return f"process {int(holder['pid'])} on {holder['host']} (since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (which has not written its name into the lock file yet)"
