"""Two train.py workers on this machine: how long a lost worker takes to stop the other,
and whether JAX trains with two processes on the CPU.

    faults  for each worker (the chief, worker 1) and each fault (SIGKILL: the process is
            gone and its sockets close; SIGSTOP: it hangs, as a frozen or cut-off machine
            does), start two workers on a long ShallowNet run (the test's config), wait
            for the first epoch's checkpoints, hit one worker and time until the other
            exits; its exit status and last line are shown
    jax     two processes joined by ``jax.distributed.initialize`` (coordinator on
            loopback), ``keras.distribution.DataParallel`` over both CPUs, each process
            fed its half of every global batch, against one process; losses and weights

    python bench/multiworker.py                 # both, writes nothing but temporary folders
    python bench/multiworker.py --only jax
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from suite.training.cluster import loopback_tf_configs  # noqa: E402

SETS = ["model.name=shallownet", "model.params={}", "data.source=sample", "data.subset=20", "data.test_subset=10",
        "training.batch_size=50", "training.epochs=40", "training.verbose=0"]


def fault(victim, sig, out):
    """Seconds from hitting worker ``victim`` until the other exits, its status and last line."""
    args = ["--config", "configs/shallownet.yaml", *(a for s in SETS for a in ("--set", s)), "--set", f"output.dir={out}"]
    logs = [open(out.parent / f"{out.name}-{i}.err", "w+") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
                              env={**os.environ, "TF_CONFIG": config})
             for config, log in zip(loopback_tf_configs(2), logs)]
    while not list(out.glob("*/state.json")):
        time.sleep(0.05)
    procs[victim].send_signal(sig)
    hit = time.time()
    other = procs[1 - victim]
    try:
        code = other.wait(timeout=600)
    except subprocess.TimeoutExpired:
        code = "still running after 600 s"
        other.kill()
    seconds = time.time() - hit
    procs[victim].kill()
    procs[victim].wait()
    logs[1 - victim].seek(0)
    lines = logs[1 - victim].read().strip().splitlines()
    return seconds, code, lines[-1] if lines else ""


JAX_PROCESS = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import jax
process, processes, port = (int(a) for a in sys.argv[1:4])
if processes > 1:
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=processes, process_id=process,
                               initialization_timeout=120)
import keras, numpy as np
keras.utils.set_random_seed(0)
distribution = keras.distribution.DataParallel(devices=jax.devices())
distribution.auto_shard_dataset = False  # each process feeds its own part of every global batch
keras.distribution.set_distribution(distribution)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
model.compile("sgd", "mse")
rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 8)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
mine = np.arange(64).reshape(4, processes, -1)[:, process].ravel()  # global batches of 16
history = model.fit(x[mine], y[mine], batch_size=16 // processes, epochs=2, verbose=0, shuffle=False)
kernel = keras.ops.convert_to_numpy(model.layers[0].kernel.value)
print(json.dumps({"devices": len(jax.devices()), "loss": history.history["loss"], "kernel_sum": float(kernel.sum()),
                  "versions": f"keras {keras.__version__}, jax {jax.__version__}"}))
"""


def jax_processes(processes):
    port = json.loads(loopback_tf_configs(1)[0])["cluster"]["worker"][0].rsplit(":", 1)[1]
    procs = [subprocess.Popen([sys.executable, "-c", JAX_PROCESS, str(i), str(processes), port], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(processes)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        results.append(json.loads(out.strip().splitlines()[-1]) if p.returncode == 0 else err.strip().splitlines()[-1])
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=("faults", "jax"))
    args = p.parse_args()
    if args.only != "jax":
        with tempfile.TemporaryDirectory() as folder:
            for victim in (0, 1):
                for sig in (signal.SIGKILL, signal.SIGSTOP):
                    seconds, code, line = fault(victim, sig, Path(folder) / f"{sig.name}-{victim}")
                    who = "the chief" if victim == 0 else "worker 1"
                    print(f"{sig.name} {who}: the other exited after {seconds:.1f} s with status {code}: {line}")
    if args.only != "faults":
        for processes in (2, 1):
            print(f"jax, {processes} process(es):", *jax_processes(processes), sep="\n  ")


if __name__ == "__main__":
    main()
