"""The tests find CIFAR-10 where the suite does, and stop at once with one line without it.

Each case runs pytest on one test in a fresh process whose home folder is an empty
temporary one, with ``CIFAR10_PATH`` and ``KERAS_HOME`` unset: a new user's machine. Its
proxy is a closed local port, so Keras' download fails at once here and never fetches
170 MB on a machine that happens to be online.
"""

import os
import subprocess
import sys
import time

from conftest import REPO, cifar_folder

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


def pytest_in_fresh_home(home, test, *options):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CIFAR10_PATH", "KERAS_HOME") and not k.lower().endswith("_proxy")}
    env.update(HOME=str(home), http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", *options, "-p", "no:cacheprovider", test],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - start


def test_no_data_anywhere_stops_the_session_with_one_line(tmp_path):
    done, seconds = pytest_in_fresh_home(tmp_path, "tests/test_schedules.py", "-q")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("ERROR: the tests need the real CIFAR-10: CIFAR10_PATH is not set")
    assert "Keras' download failed" in line
    assert f"in {tmp_path / '.keras' / 'datasets' / 'cifar-10-batches-py'}, or set CIFAR10_PATH" in line
    assert "passed" not in done.stdout and "failed" not in done.stdout  # no test ran
    assert seconds < 120, seconds


def test_data_in_keras_cache_is_found_without_cifar10_path(tmp_path):
    datasets = tmp_path / ".keras" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "cifar-10-batches-py").symlink_to(cifar_folder().resolve(), target_is_directory=True)
    done, _ = pytest_in_fresh_home(tmp_path, "tests/test_data.py::test_real_data_layout_and_statistics")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"CIFAR-10 for the tests: {datasets / 'cifar-10-batches-py'}\n" in done.stdout  # the header
    assert "1 passed" in done.stdout
