"""The exception types that the command-line tools turn into a one-line message."""


class UserError(Exception):
    """Bad input from the user: a config, a path, a weights file.

    The scripts print ``error: <message>`` on stderr and exit with status 2, with no
    traceback. The message must name what is wrong and where (file, key, layer).
    """


class WriteError(OSError):
    """A file could not be written: the disk is full, a quota is reached, the folder is
    read-only, the device failed. ``filename`` is the file meant (never its temporary
    name), ``strerror`` the cause in the system's words.

    ``suite.core.atomic`` raises it for every write it makes, so what was written before is
    left whole. The scripts print ``error: cannot write <file> (<cause>)`` on stderr and
    exit with status 1, with no traceback. It is an OSError, so that code that handles
    those (creating a run folder) handles it too.
    """

    def __str__(self):
        return f"cannot write {self.filename} ({self.strerror})"


def one_line(error):
    """``str(error)`` on one line (wrapped messages, some from pickle and h5py)."""
    return " ".join(str(error).split())


def run_cli(run, args):
    """``run(args)`` for a script's ``main``: a UserError becomes ``error: <message>`` on
    stderr and exit status 2, a WriteError ``error: cannot write <file> (<cause>)`` and
    exit status 1, with no traceback."""
    import sys

    try:
        return run(args)
    except (UserError, WriteError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1 if isinstance(e, WriteError) else 2
