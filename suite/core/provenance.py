"""What produced a run or a report: the suite's version and commit, the library versions,
the backend, the machine and the command line, so that a figure can be traced and
repeated (the "machine info" that ML reproducibility checklists ask for, e.g. the NeurIPS
checklist's compute-resources item, and what MLflow and W&B record with every run).

Nothing here names a path of the machine that made it: the data is named by what it is
(``data_identity``: a name and a hash of its test images), never where it lay.
"""

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
from suite.core.paths import CHECKOUT

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


def git_commit(folder=CHECKOUT):
    """``(commit, dirty)`` of the git checkout the suite runs from; ``(None, None)`` outside one
    (an installed wheel) or without git. Dirty: tracked files differ from the commit."""
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
    digest.update(memoryview(x_test).cast("B") if x_test.flags.c_contiguous else x_test.tobytes())
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
