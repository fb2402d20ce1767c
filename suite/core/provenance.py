"""What produced a run or a report: the suite's version and commit, the library versions,
the backend, the machine and the command line, so that a figure can be traced and
repeated (the "machine info" that ML reproducibility checklists ask for, e.g. the NeurIPS
checklist's compute-resources item, and what MLflow and W&B record with every run).

Nothing here names a path of the machine that made it: the data is named by what it is
(``data_identity``: a name and a hash of its test images), never where it lay.
"""

import argparse
import hashlib
import importlib.metadata
import platform
import shlex
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from suite.core import cpu
from suite.core.paths import CHECKOUT, IN_CHECKOUT

DISTRIBUTION = "cifar10-cnn-suite"
LIBRARIES = ("tensorflow", "keras", "numpy", "jax", "jaxlib", "h5py")


def suite_version():
    """The installed distribution's version, or pyproject's when run from a checkout that was never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pyproject = CHECKOUT / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, ValueError):
            return None


def version_text(prog):
    """``--version``'s line: the command, the suite's version, and where it runs from (the
    checkout's commit, or the installed package)."""
    commit, dirty = git_commit() if IN_CHECKOUT else (None, None)
    where = (f"checkout {CHECKOUT}, commit {commit[:12]}" + (", modified" if dirty else "")) if commit \
        else f"installed at {CHECKOUT / 'suite'}" if not IN_CHECKOUT else f"checkout {CHECKOUT}"
    return f"{prog} {suite_version() or '(unknown version)'} ({DISTRIBUTION}; {where})"


class VersionAction(argparse.Action):
    """``--version``: print ``version_text`` and exit 0; worked out only when asked for (it may run git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "print the suite's version and where it runs from, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text(parser.prog))  # on stdout, as argparse's own "version" action
        parser.exit()


def add_version_argument(parser):
    """Every command's ``--version``."""
    parser.add_argument("--version", action=VersionAction)


def git_commit(folder=CHECKOUT):
    """``(commit, dirty)`` of the git checkout the suite runs from; ``(None, None)`` outside one
    (an installed wheel, even one in a virtual environment inside some other repository) or
    without git. Dirty: tracked files differ from the commit."""
    if not (folder / ".git").exists() or not (folder / "pyproject.toml").is_file():
        return None, None

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
        return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def library_versions():
    """The versions of ``LIBRARIES`` that are installed (None for one that is not)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def data_identity(name, x_test, y_test=None):
    """The data as a name and the SHA-256 of its test images (and labels): the same on
    every machine that holds the same images, wherever they lie."""
    digest = hashlib.sha256()
    digest.update(x_test.tobytes())  # a copy of 30 MB at most; an empty set (a Kaggle folder) hashes too
    if y_test is not None:
        digest.update(y_test.astype("<i4").tobytes())
    return {"name": name, "test_images": int(len(x_test)), "test_sha256": digest.hexdigest()}


def command_line(argv):
    """``argv`` as a shell line, the program by its file name only (``python train.py --config ...``)."""
    program = Path(argv[0]).name if argv else ""
    prefix = ["python"] if program.endswith(".py") else []
    return " ".join(shlex.quote(a) for a in [*prefix, program, *argv[1:]])


def provenance(backend, device, precision, data, argv=None):
    """The record: ``data`` from ``data_identity``, ``device`` a short description of the
    accelerator or CPU cores, ``argv`` the command line (``sys.argv`` by default)."""
    commit, dirty = git_commit()
    argv = sys.argv if argv is None else argv
    return {
        "suite": {"version": suite_version(), "commit": commit, "dirty": dirty},
        "versions": library_versions(),
        "backend": backend,
        "device": device,
        "cpu": cpu.cpu_facts().describe(),
        "platform": f"{platform.system()} {platform.machine()}",
        "precision": precision,
        "command": command_line(argv),
        "data": data,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
