"""Training on several machines: two train.py workers on this machine (loopback, free ports),
started as docs/several-machines.md's recipe starts them, under MultiWorkerMirroredStrategy.

They train what one machine trains (same global batch, learning rates and weights), only
the chief writes the run folder, a killed worker stops the other with one line, and
``--resume`` on both finishes the run as if it had never stopped. Each test takes minutes
(marked slow). How TF_CONFIG is read: tests/test_tf_config.py."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import REPO, train_run
from suite.training.cluster import loopback_tf_configs

pytestmark = pytest.mark.slow

EPOCHS = 4
SETS = ["model.name=shallownet", "model.params={}", "data.source=sample", "data.subset=20", "data.test_subset=10",
        "training.batch_size=50", f"training.epochs={EPOCHS}", "schedule.name=step", "schedule.factor=0.5",
        "schedule.every=1", "augment.flip=true", "augment.crop=4", "training.verbose=0"]
STEPS = 200 // 50  # 20 images of each class, a global batch of 50
RATES = [0.01 * 0.5 ** (1 + e) for e in range(EPOCHS)]  # step: lr0 * factor ** floor((1 + epoch) / every)


def start_workers(args, tmp_path, worker_env=None):
    """The chief (worker 0) and worker 1, each ``python train.py <args>`` with its output in
    files and train.py's own TensorFlow log level, as a user starts them; worker 1 makes its
    temporary folders in ``tmp_path/tmp``."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    user = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # conftest sets it
    envs = [{}, {"TMPDIR": str(tmp_path / "tmp"), **(worker_env or {})}]
    procs, launch = [], len(list(tmp_path.glob("worker0-*.out")))
    for i, (config, env) in enumerate(zip(loopback_tf_configs(2), envs)):
        logs = [open(tmp_path / f"worker{i}-{launch}.{kind}", "w+") for kind in ("out", "err")]
        procs.append(subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, stdout=logs[0], stderr=logs[1],
                                      env={**user, "TF_CONFIG": config, **env}))
        procs[-1].logs = logs
    return procs


def finish(procs, timeout=240):
    """``(exit status, stdout, stderr)`` of each process, once it has ended."""
    results = []
    for p in procs:
        code = p.wait(timeout=timeout)
        for log in p.logs:
            log.seek(0)
        results.append((code, *(log.read() for log in p.logs)))
    return results


def new_run_args(out):
    return ["--config", "configs/shallownet.yaml", *(a for s in SETS for a in ("--set", s)), "--set", f"output.dir={out}"]


def weights(path):
    values = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: values.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return values


def assert_close(a, b, atol, what):
    """Assert two weights files' values agree within ``atol``; print the largest difference
    (``pytest -s`` shows it: docs/several-machines.md quotes it)."""
    assert sorted(a) == sorted(b)
    largest = max(float(np.max(np.abs(a[name] - b[name]))) for name in a)
    print(f"\nlargest |difference| of {what}: {largest:.3g}")
    assert largest <= atol, (what, largest)


@pytest.fixture(scope="module")
def one_machine(tmp_path_factory):
    """The same run on one machine, in this process: the reference."""
    code, run = train_run(tmp_path_factory.mktemp("one"), *SETS, config="configs/shallownet.yaml")
    assert code == 0
    return run


def history(run):
    return json.loads((run / "history.json").read_text())


def test_two_workers_train_what_one_machine_trains_and_only_the_chief_writes(tmp_path, one_machine):
    out, kept = tmp_path / "runs", tmp_path / "worker1"
    (chief_code, chief_out, chief_err), (code, worker_out, err) = finish(
        start_workers(new_run_args(out), tmp_path, {"SUITE_WORKER_DIR": str(kept)}))
    assert chief_code == 0 and code == 0, (chief_err[-2000:], err[-2000:])
    assert "this is worker 0 at 127.0.0.1:" in chief_out and ", the chief)" in chief_out
    assert f"run folder  {kept}" in worker_out
    # only the chief wrote the run folder; worker 1 wrote its copy where it was told, nothing else
    [run] = list(out.iterdir())
    assert not list((tmp_path / "tmp").iterdir())
    final = weights(run / "final.weights.h5")
    assert_close(weights(kept / "final.weights.h5"), final, 0, "the two workers' final weights")
    # a global batch of training.batch_size: as many steps, and the weights, as on one machine
    with h5py.File(run / "state.h5", "r") as f:
        assert f["optimizer"]["int64"][()].tolist() == [EPOCHS * STEPS]  # sgd/iteration
    assert_close(final, weights(one_machine / "final.weights.h5"), 1e-6, "two workers' and one machine's")
    assert history(run)["learning_rate"] == pytest.approx(RATES)
    assert history(run)["loss"] == pytest.approx(history(one_machine)["loss"], rel=1e-5)
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_a_killed_worker_stops_the_other_and_both_resume_to_the_same_result(tmp_path, one_machine):
    out = tmp_path / "runs"
    chief, worker = start_workers(new_run_args(out), tmp_path)
    deadline = time.time() + 180
    while not list(out.glob("*/state.json")) and time.time() < deadline and chief.poll() is None:
        time.sleep(0.05)
    chief.send_signal(signal.SIGKILL)  # right after an epoch's checkpoints, before the run ends
    killed = time.time()
    [(code, _, err)] = finish([worker], timeout=120)
    stopped_after = time.time() - killed
    chief.wait()
    [run] = list(out.iterdir())
    assert code == 2, err[-2000:]
    # one line, besides the suite's warnings (no Graphviz here): no traceback, no TF log
    [line] = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert line.startswith("error: worker 1: lost contact with the cluster (") and "Graph execution" not in line
    assert err.strip().endswith("; the chief's run folder keeps the last complete epoch: "
                                "start every worker again with python train.py --resume <that folder>")
    assert stopped_after < 60, stopped_after
    assert not list((tmp_path / "tmp").iterdir())  # worker 1's private folder went with it
    with h5py.File(run / "state.h5", "r") as f:
        done = int(f.attrs["epochs_done"])
    assert 1 <= done < EPOCHS

    (chief_code, chief_out, chief_err), (code, _, err) = finish(start_workers(["--resume", str(run)], tmp_path))
    assert chief_code == 0 and code == 0, (chief_err[-2000:], err[-2000:])
    assert f"resuming {run} after epoch {done} of {EPOCHS}" in chief_out
    assert list(out.iterdir()) == [run] and not list((tmp_path / "tmp").iterdir())
    assert history(run)["epoch"] == list(range(1, EPOCHS + 1))
    assert history(run)["learning_rate"] == pytest.approx(RATES)
    assert_close(weights(run / "final.weights.h5"), weights(one_machine / "final.weights.h5"), 1e-6,
                 "two workers' killed and resumed and one machine's uninterrupted")
