"""The one exception type that the command-line tools turn into a one-line message."""


class UserError(Exception):
    """Bad input from the user: a config, a path, a weights file.

    The scripts print ``error: <message>`` on stderr and exit with status 2, with no
    traceback. The message must name what is wrong and where (file, key, layer).
    """


def run_cli(run, args):
    """``run(args)`` for a script's ``main``: a UserError becomes ``error: <message>`` on
    stderr and exit status 2, with no traceback."""
    import sys

    try:
        return run(args)
    except UserError as e:
        one_line = " ".join(str(e).split())  # wrapped messages (some from pickle, h5py) kept to one line
        print(f"error: {one_line}", file=sys.stderr)
        return 2
