"""Training and evaluation throughput of every registered model, measured three ways.

    suite  images/s of train.py itself (``train.main``): uint8 batches from the suite's
           PyDataset, in-model scaling and augmentation (flip + pad-and-crop), every
           callback, the curves, history and checkpoints rewritten each epoch. Taken from
           the wall clock between the ends of consecutive epochs, so it counts all of it.
    bare   images/s of ``model.fit`` on the bare network, with in-memory float32 tensors,
           no augmentation and no callbacks: the model's own training step.
    eval   images/s of the suite's evaluation path: the wrapped model's ``predict`` on
           uint8 images with batch 500, as evaluate.py runs it.

Each figure is the median of ``--repeats`` epochs (or passes) after one warm-up. The
images are random uint8 (speed does not depend on pixel values), so no data set is
needed. Epoch sizes adapt to each model so that an epoch takes about ``--seconds``.

    python bench/throughput.py                                # every model, batch 128
    python bench/throughput.py --models resnet20,allcnn_c --repeats 5
    KERAS_BACKEND=jax python bench/throughput.py --out bench/h100.md   # on a GPU
"""

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

import models  # noqa: E402
import train  # noqa: E402
from suite.config import DEFAULTS  # noqa: E402
from suite.preprocessing import wrap  # noqa: E402
from suite.runtime import configure, device_description  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0, help="target length of one timed epoch")
    p.add_argument("--precision", default="auto")
    p.add_argument("--suite-only", action="store_true",
                   help="only train.py's path, with --images per epoch (one compile per model: for short GPU leases)")
    p.add_argument("--images", type=int, default=25600, help="images per epoch with --suite-only")
    p.add_argument("--out", help="also write the table (Markdown) and the raw figures (.json beside it)")
    return p.parse_args()


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.start]


def bare_rate(name, batch, n_images, repeats, jit):
    """Median images/s of ``fit`` on the bare network and float32 tensors in memory."""
    net = models.create(name)
    net.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_images, *net.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, 10, n_images).astype("int32")
    timer = EpochTimes()
    net.fit(x, y, batch_size=batch, epochs=1 + repeats, verbose=0, callbacks=[timer], shuffle=False)
    return n_images / statistics.median(timer.times[1:]), net


def probe_rate(name, batch, jit):
    """A rough images/s from a few steps, to size the timed epochs."""
    rate, _ = bare_rate(name, batch, batch * 3, 1, jit)
    return rate


def suite_rate(name, batch, n_images, repeats, precision, workdir):
    """Median images/s of train.py's real path, from the wall clock between epoch ends."""
    rng = np.random.default_rng(1)
    data = workdir / f"synthetic-{n_images}.npz"
    if not data.exists():
        np.savez(data, x_train=rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8),
                 y_train=rng.integers(0, 10, n_images).astype("int32"),
                 x_test=rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
                 y_test=np.repeat(np.arange(10), 10).astype("int32"))
    cfg = {"name": f"bench-{name}", "model": {"name": name},
           "data": {"path": str(data)}, "augment": {"flip": True, "crop": 4},
           "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
           "training": {"epochs": 2 + repeats, "batch_size": batch, "verbose": 0},
           "runtime": {"precision": precision}, "output": {"dir": str(workdir / "runs")}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with contextlib.redirect_stdout(io.StringIO()):
        code = train.main(["--config", str(path)])
    if code != 0:
        raise RuntimeError(f"train.py failed for {name} (exit {code})")
    run = sorted((workdir / "runs").glob(f"bench-{name}-*"))[-1]
    clock = json.loads((run / "history.json").read_text())["wall_clock"]
    cycles = np.diff(clock)[1:]  # epoch 2's cycle still carries epoch 1's first checkpoint writes
    return n_images / float(np.median(cycles))


def eval_rate(net, n_images, repeats):
    model = wrap(net, [0.0] * 3, [255.0] * 3)
    x = np.random.default_rng(2).integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    times = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=500, verbose=0)
        times.append(time.perf_counter() - start)
    return n_images / statistics.median(times[1:])


def machine(runtime):
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    versions = f"keras {keras.__version__}"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        versions += f", tensorflow {tf.__version__}"
    elif keras.backend.backend() == "jax":
        import jax
        versions += f", jax {jax.__version__}"
    return (f"{device_description(runtime)}; CPU {cpu}, {os.cpu_count()} cores; backend {runtime.backend} "
            f"({versions}); precision {runtime.precision}; XLA {'on' if runtime.jit_compile else 'off'}")


def main():
    args = parse_args()
    names = models.list_models() if args.models == "all" else args.models.split(",")
    rt_cfg = {**DEFAULTS["runtime"], "precision": args.precision}
    runtime = configure(rt_cfg, seed=0, deterministic=False)
    info = machine(runtime)
    print(f"# throughput, batch {args.batch_size}: {info}", flush=True)
    header = "| model | params | suite train img/s | bare train img/s | suite/bare | eval img/s |"
    rows, raw = [header, "|---|---:|---:|---:|---:|---:|"], {}
    print("\n".join(rows), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            keras.backend.clear_session()
            configure(rt_cfg, seed=0, deterministic=False)
            if args.suite_only:
                suite = suite_rate(name, args.batch_size, args.images, args.repeats, args.precision, Path(tmp))
                params = models.create(name).count_params()
                raw[name] = {"params": params, "suite": suite, "train_images_per_epoch": args.images}
                rows.append(f"| {name} | {params:,} | {suite:,.0f} | - | - | - |")
                print(rows[-1], flush=True)
                if args.out:
                    write_table(args, info, rows, raw)
                continue
            rough = probe_rate(name, args.batch_size, runtime.jit_compile)
            n_train = max(4, round(rough * args.seconds / args.batch_size)) * args.batch_size
            bare, net = bare_rate(name, args.batch_size, n_train, args.repeats, runtime.jit_compile)
            n_eval = max(1000, min(10000, round(3 * bare * args.seconds / 500) * 500))
            evaluated = eval_rate(net, n_eval, args.repeats)
            keras.backend.clear_session()
            suite = suite_rate(name, args.batch_size, n_train, args.repeats, args.precision, Path(tmp))
            raw[name] = {"params": net.count_params(), "suite": suite, "bare": bare, "eval": evaluated,
                         "train_images_per_epoch": n_train, "eval_images": n_eval}
            rows.append(f"| {name} | {net.count_params():,} | {suite:,.0f} | {bare:,.0f} | {suite / bare:.2f} "
                        f"| {evaluated:,.0f} |")
            print(rows[-1], flush=True)
            if args.out:
                write_table(args, info, rows, raw)
    if args.out:
        write_table(args, info, rows, raw)


def write_table(args, info, rows, raw):
    """The table so far (rewritten after every model, so a cut-off run keeps what it measured)."""
    Path(args.out).write_text(f"Throughput, batch {args.batch_size}, median of {args.repeats}: {info}\n\n"
                              + "\n".join(rows) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"machine": info, "results": raw}, indent=2))


if __name__ == "__main__":
    main()
