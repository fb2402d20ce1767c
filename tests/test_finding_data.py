"""The tests find CIFAR-10 where the suite does, and stop at once with one line without it;
the fast tier runs without it, and a test that does not ask for it cannot read it.

Most cases run pytest on a few tests in a fresh process whose home folder is an empty
temporary one, with ``CIFAR10_PATH`` and ``KERAS_HOME`` unset: a new user's machine. Its
proxy is a closed local port, so Keras' download fails at once here and never fetches
170 MB on a machine that happens to be online.
"""

import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import NO_DATA, REPO
from suite.data import cifar10 as data
from suite.core.errors import UserError

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there
NEEDS_DATA = "tests/test_data.py::test_official_files_unpickle_exactly_as_plain_pickle_does[data_batch_1]"


def pytest_in_fresh_home(home, *args, env=None):
    extra = env or {}
    env = {k: v for k, v in os.environ.items()
           if k not in ("CIFAR10_PATH", "KERAS_HOME") and not k.lower().endswith("_proxy")}
    env.update(HOME=str(home), http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])), **extra)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - start


def test_no_data_anywhere_stops_the_session_with_one_line(tmp_path):
    done, seconds = pytest_in_fresh_home(tmp_path, NEEDS_DATA, "-q")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("ERROR: the tests need the real CIFAR-10: CIFAR10_PATH is not set")
    assert "Keras' download failed" in line
    assert f"in {tmp_path / '.keras' / 'datasets' / 'cifar-10-batches-py'}, or set CIFAR10_PATH" in line
    assert "passed" not in done.stdout and "failed" not in done.stdout  # no test ran
    assert "Downloading data from" not in done.stdout  # Keras' line, held back until data arrives
    assert seconds < 120, seconds


def test_the_fast_tier_needs_no_data_and_skipped_tests_do_not_look_for_it(tmp_path):
    # test_data.py's tests all read the data; -m fast leaves them out
    done, _ = pytest_in_fresh_home(tmp_path, "-q", "-m", "fast", "tests/test_schedules.py", "tests/test_data.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout and "deselected" in done.stdout and "CIFAR-10" not in done.stdout + done.stderr


def test_a_test_that_does_not_ask_for_the_data_cannot_read_it():
    assert os.environ["CIFAR10_PATH"] == NO_DATA
    with pytest.raises(UserError, match="CIFAR10_PATH: .* does not exist"):
        data.load_cifar10()


def test_data_in_keras_cache_is_found_without_cifar10_path(tmp_path, cifar_dir):
    datasets = tmp_path / ".keras" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "cifar-10-batches-py").symlink_to(cifar_dir.resolve(), target_is_directory=True)
    done, _ = pytest_in_fresh_home(tmp_path, NEEDS_DATA)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"CIFAR-10 for the tests: {datasets / 'cifar-10-batches-py'}\n" in done.stdout  # the header
    assert "1 passed" in done.stdout


def test_data_where_keras_3_downloads_it_is_found(tmp_path, cifar_dir):
    datasets = tmp_path / ".keras" / "datasets" / "cifar-10-batches-py-target"
    datasets.mkdir(parents=True)
    (datasets / "cifar-10-batches-py").symlink_to(cifar_dir.resolve(), target_is_directory=True)
    done, _ = pytest_in_fresh_home(tmp_path, NEEDS_DATA)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"CIFAR-10 for the tests: {datasets / 'cifar-10-batches-py'}\n" in done.stdout
    assert "1 passed" in done.stdout


def test_cifar10_path_may_name_an_npz_as_for_the_suite(tmp_path, cifar):
    npz = tmp_path / "cifar10.npz"
    np.savez(npz, x_train=cifar.x_train, y_train=cifar.y_train, x_test=cifar.x_test, y_test=cifar.y_test)
    done, _ = pytest_in_fresh_home(tmp_path, NEEDS_DATA, env={"CIFAR10_PATH": str(npz)})
    assert done.returncode == 0, done.stdout + done.stderr
    header = f"CIFAR-10 for the tests: {Path(tempfile.gettempdir()) / 'cifar-10-batches-py-'}"
    assert header in done.stdout
    assert "1 passed" in done.stdout


def test_keras_download_lands_where_the_next_run_finds_it(tmp_path, monkeypatch, capsys, cifar, cifar_dir):
    """Online with an empty cache, the suite downloads through Keras' own
    ``cifar10.load_data``; here Keras is handed the real batches as a local tar file in
    place of the web address, so that what is tested is where Keras 3 extracts them."""
    from keras.src.datasets import cifar10 as keras_cifar10
    from keras.src.utils.file_utils import get_file

    tar = tmp_path / "cifar-10-python.tar"
    with tarfile.open(tar, "w") as t:
        t.add(cifar_dir.resolve(), arcname="cifar-10-batches-py")
    keras_home = tmp_path / "keras"
    keras_home.mkdir()  # Keras writes to /tmp/.keras instead when the folder is not there to write to

    def local_get_file(fname, origin, extract, file_hash):
        assert origin == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
        return get_file(fname, tar.as_uri(), extract=extract, cache_dir=str(keras_home))

    monkeypatch.setattr(keras_cifar10, "get_file", local_get_file)
    monkeypatch.setattr(data, "KERAS_CACHE", keras_home / "datasets" / "cifar-10-batches-py")
    monkeypatch.setattr(data, "KERAS3_CACHE", keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py")
    monkeypatch.delenv("CIFAR10_PATH", raising=False)
    assert data.resolve_source() is None
    capsys.readouterr()
    downloaded = data.load_cifar10()
    assert downloaded.source == "keras.datasets.cifar10 download"
    assert capsys.readouterr().out.startswith(f"Downloading data from {tar.as_uri()}\n")  # shown once data came
    assert data.resolve_source() == keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    cached = data.load_cifar10()
    for a, b in [(downloaded.x_train, cifar.x_train), (downloaded.y_train, cifar.y_train),
                 (cached.x_test, cifar.x_test), (cached.y_test, cifar.y_test)]:
        np.testing.assert_array_equal(a, b)
