"""New timestamped names that never reuse an existing one: run folders, report folders,
figure files.

``<root>/<stem>-<YYYYmmdd-HHMMSS>``, then ``-2``, ``-3``, ... within the same second.
Folders are made with mode 0o777, so the umask decides their permissions, as ``mkdir``
does; the parent is synced after a folder appears in it.
"""

import datetime
import os
from pathlib import Path

from suite.core.atomic import sync_folder, temporary_dir
from suite.core.errors import UserError

TRIES = 1000


def stamped_names(root, stem, suffix=""):
    """The candidate paths, in order: ``stem-stamp``, ``stem-stamp-2``, ..."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, TRIES + 1):
        yield Path(root) / (f"{stem}-{stamp}" + (f"-{n}" if n > 1 else "") + suffix)


def new_file_name(root, stem, suffix):
    """The first stamped file name in ``root`` that nothing has yet (``root`` is created)."""
    _make_root(root, "cannot create the folder")
    for path in stamped_names(root, stem, suffix):
        if not path.exists():
            return path
    raise UserError(f"{root}: too many files named {stem}-<timestamp>{suffix}")


def new_folder(root, stem, what, fill=None):
    """A new folder ``root/stem-stamp`` (``-2``, ... if taken), returned.

    With ``fill(draft)``, the folder is first made under a hidden name, filled, and then
    renamed, so it never exists without what ``fill`` writes (a run folder without its
    config), even if the process is killed at once. ``what`` names the setting in error
    messages (``output.dir: cannot create run folders in ...``)."""
    root = Path(root)
    try:
        _make_root(root, None)
        draft = None
        if fill is not None:
            draft = temporary_dir(root, prefix=f".{stem}-")
            fill(draft)
        for folder in stamped_names(root, stem):
            if _claim(folder, draft):
                sync_folder(root)  # the new name survives a power loss
                return folder
    except OSError as e:
        raise UserError(f"{what} {root} ({e.strerror})") from None
    raise UserError(f"{what} {root}: too many named {stem}-<timestamp>")


def _claim(folder, draft):
    """Make ``folder`` (from ``draft`` if given); False if another process has the name."""
    if folder.exists():
        return False
    try:
        if draft is None:
            os.mkdir(folder, 0o777)
        else:
            draft.rename(folder)
    except FileExistsError:
        return False
    except OSError:
        if folder.exists():  # another process took the name in between
            return False
        raise
    return True


def _make_root(root, message):
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if message is None:
            raise
        raise UserError(f"{root}: {message} ({e.strerror})") from None
