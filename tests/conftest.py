"""Shared fixtures, the tiers of tests, and the real CIFAR-10, found where the suite finds it.

Tiers. A file whose tests need no data set, train nothing and take seconds in all says so
at its top, ``pytestmark = pytest.mark.fast``: ``python -m pytest -m fast`` runs those
alone, in under a minute, on a machine without CIFAR-10 (configs, rules, registries,
schedules, safe unpickling, atomic files, folders, TF_CONFIG, the shipped records). Tests
that start Python processes of their own (seconds each) or build every network are left
out of it. The tests that take minutes are marked ``slow``: ``-m "not slow"`` leaves them
out. Every other test may read the real CIFAR-10 and train on small subsets of it.

A test reads the data only through the ``cifar_dir`` fixture, or a fixture that asks for it
(``cifar``, ``fixed_batch``, ``tiny_run``; a module or session fixture that trains on the
data asks for it too). Every other test runs with ``CIFAR10_PATH`` at a folder that does
not exist, in this process and in the processes it starts, so that a test that reads the
data without saying so fails on every machine, not only on one without the data. A test
marked fast may not ask for it.

The data is looked up once the tests are collected, and only if a selected test asks for
it, the way ``train.py`` does (``suite.data.cifar10.resolve_source``): ``$CIFAR10_PATH`` (CI sets it
to ``../shared/data/cifar-10-batches-py``; a ``.tar.gz`` or ``.npz`` there is first written
out as python batches), else Keras' cache (``~/.keras/datasets/cifar-10-batches-py``, or
Keras 3's ``cifar-10-batches-py-target/cifar-10-batches-py``), else Keras' download on a
machine that is online. With none of them the session stops before the first test with
one line that says where to put the data, instead of failing every test that needs it.

Two processes. pyproject's ``-n 2`` (pytest-xdist) runs the tests in two worker processes,
a file to a worker, when the data is on this machine: the controller resolves it first, so
the workers share one folder and the session's header names it. Without local data the
session runs in this one process, so that Keras' download, or the one-line stop, happens
once and before any test. ``-n 0`` runs everything in one process.
"""

import atexit
import contextlib
import functools
import os
import pickle
import shutil
import socket
import stat
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from suite.core.cpu import choose_onednn  # noqa: E402

choose_onednn()  # TensorFlow's CPU kernels as train.py chooses them, before a test module imports it

from suite.data.cifar10 import (CLASS_NAMES, KERAS3_CACHE, KERAS_CACHE, TEST_BATCH, TRAIN_BATCHES, check_source,  # noqa: E402
                        keras_cache, keras_download, load_cifar10, resolve_source)
from suite.core.errors import UserError, run_cli  # noqa: E402

# Keras' download sets no timeout: a network that drops packets would hold the session
# for minutes before the first test. This bounds every connect and every read.
DOWNLOAD_TIMEOUT_S = 30


@contextlib.contextmanager
def socket_timeout(seconds):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@functools.cache
def cifar_folder():
    """The folder of CIFAR-10 python batches the tests read; UserError if there is none.

    A relative ``$CIFAR10_PATH`` (CI's) is made absolute, for tests that change folder."""
    if os.environ.get("CIFAR10_PATH"):
        os.environ["CIFAR10_PATH"] = os.path.abspath(os.environ["CIFAR10_PATH"])
    path = resolve_source()
    if path is None:
        from suite.core.quiet import import_keras
        import_keras()
        try:
            with socket_timeout(DOWNLOAD_TIMEOUT_S):
                keras_download()  # into Keras' cache, where the suite then finds it
        except Exception as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            raise UserError(f"CIFAR10_PATH is not set, {KERAS_CACHE} does not exist (nor Keras 3's "
                            f"{KERAS3_CACHE}) and Keras' download "
                            f"failed ({reason})") from None
        path = keras_cache()
        if path is None:
            raise UserError(f"Keras' download succeeded but left no python batches in {KERAS_CACHE} "
                            f"or {KERAS3_CACHE}; set CIFAR10_PATH to them")
    folder = check_source(path, "CIFAR10_PATH" if os.environ.get("CIFAR10_PATH") else "Keras' cache")
    if not folder.is_dir():  # a .tar.gz or .npz: some tests read and alter the batch files themselves
        folder = batches_folder(folder)
        os.environ["CIFAR10_PATH"] = str(folder)
    return folder


def batches_folder(source):
    """A temporary folder of python batches (the official layout) for the ``.tar.gz`` or
    ``.npz`` ``source``, removed at exit: the official files themselves from a tarball;
    from an ``.npz``, its images (read as the suite reads them) pickled in that layout."""
    folder = Path(tempfile.mkdtemp(prefix="cifar-10-batches-py-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    if tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in (*TRAIN_BATCHES, TEST_BATCH, "batches.meta"):
                    (folder / name).write_bytes(tar.extractfile(member).read())
        return folder
    data = load_cifar10(source)
    return write_batches(folder, data.x_train, data.y_train, data.x_test, data.y_test, data.class_names)


def write_batches(folder, x_train, y_train, x_test, y_test, class_names=CLASS_NAMES):
    """The images as python batches in the official layout, in ``folder`` (made if need be):
    the training images split over five batch files, ``test_batch`` and ``batches.meta``."""
    folder.mkdir(exist_ok=True)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in class_names]}))
    parts = zip(np.array_split(x_train, 5), np.array_split(y_train, 5))
    named = [(f"data_batch_{i}", x, y) for i, (x, y) in enumerate(parts, 1)] + [(TEST_BATCH, x_test, y_test)]
    for name, x, y in named:
        (folder / name).write_bytes(batch_bytes(x, y))
    return folder


def batch_bytes(images, labels):
    """One batch in the official layout: rows of 3072 bytes, the R plane, then G, then B."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"data": data, b"labels": list(map(int, labels)), b"batch_label": b"x"})


# What a test that does not ask for cifar_dir finds in CIFAR10_PATH.
NO_DATA = "/nonexistent/CIFAR-10: a test reads it through the cifar_dir fixture"


def distributed(config):
    """This process is the controller of xdist workers."""
    return config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers
def pytest_configure(config):
    if not distributed(config) or config.getoption("collectonly"):
        return
    if resolve_source() is None:
        config.option.dist, config.option.tx = "no", []
        return
    data_folder()  # the workers inherit $CIFAR10_PATH at it


def pytest_report_header(config):
    if config.option.verbose >= 0 and distributed(config):
        return f"CIFAR-10 for the tests: {cifar_folder()}"


def data_folder():
    """``cifar_folder()``, or the session's one-line stop (a UsageError) that says where to
    put the data."""
    try:
        return cifar_folder()
    except UserError as e:
        raise pytest.UsageError(f"the tests need the real CIFAR-10: {e}. Put the official python batches "
                                f"(cifar-10-batches-py from https://www.cs.toronto.edu/~kriz/cifar.html) in "
                                f"{KERAS_CACHE}, or set CIFAR10_PATH to that folder") from None


def needs_data(item):
    return "cifar_dir" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)  # before the terminal reports the collection, naming the folder
def pytest_collection_finish(session):
    """Stop before the first test if a selected test needs the data and there is none, or
    is marked fast: pytest prints a UsageError as one line (``ERROR: ...``, exit status 4),
    where ``pytest.exit`` prints two."""
    reading = [item for item in session.items if needs_data(item)]
    for item in reading:
        if item.get_closest_marker("fast"):
            raise pytest.UsageError(f"{item.nodeid} is marked fast but reads CIFAR-10 (cifar_dir)")
    if reading:
        data_folder()


def pytest_report_collectionfinish(config, items):
    if config.option.verbose >= 0 and any(map(needs_data, items)):
        return f"CIFAR-10 for the tests: {cifar_folder()}"


@pytest.fixture(autouse=True)
def _data_only_through_cifar_dir(request, monkeypatch):
    if not needs_data(request):
        monkeypatch.setenv("CIFAR10_PATH", NO_DATA)


@pytest.fixture(scope="session")
def cifar_dir():
    """The folder of the real CIFAR-10's python batches (found once collection ends)."""
    return cifar_folder()


@pytest.fixture(scope="session")
def cifar(cifar_dir):
    """The full real CIFAR-10 as uint8 arrays (about 180 MB, read once per session)."""
    return load_cifar10(cifar_dir)


@pytest.fixture(scope="session")
def fixed_batch(cifar):
    """32 real training images, 3 or 4 of every class, and their labels."""
    idx = np.concatenate([np.flatnonzero(cifar.y_train == c)[:4] for c in range(10)])[:32]
    return cifar.x_train[idx], cifar.y_train[idx]


def mode(path):
    """A file's or folder's permission bits."""
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test; the previous one comes back afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def train_main(argv, extra_callbacks):
    """``python train.py ARGV``'s exit code, with ``extra_callbacks`` before the suite's own
    (``suite.train``'s ``callbacks``)."""
    from suite.api import train
    from suite.commands.train import parse_args

    options = {k: v for k, v in vars(parse_args(argv)).items() if k != "settings"}
    return run_cli(lambda given: train(**given, callbacks=extra_callbacks).exit_code, options)


def train_run(out_dir, *sets, config="configs/quickstart.yaml", name=None, extra=()):
    """Run train.py in this process on a real-data subset, with the ``--set``s and the
    ``extra`` arguments; return (exit code, run folder)."""
    from suite.commands import train

    out_dir = Path(out_dir)
    args = ["--config", str(REPO / config), "--set", f"output.dir={out_dir}", "--set", "training.verbose=0", *extra]
    if name:
        args += ["--set", f"name={name}"]
    for s in sets:
        args += ["--set", s]
    before = set(out_dir.glob("*")) if out_dir.exists() else set()
    code = train.main(args)
    new = sorted(set(out_dir.glob("*")) - before)
    return code, (new[-1] if new else None)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, cifar_dir):
    """A finished 2-epoch run of ShallowNet on 30 real images per class (a real run folder)."""
    code, run_dir = train_run(tmp_path_factory.mktemp("runs"), "model.name=shallownet", "model.params={}",
                              "data.source=cifar10", "data.subset=30", "data.test_subset=20",
                              "training.epochs=2", name="tiny")
    assert code == 0
    return run_dir
