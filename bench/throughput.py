"""Training and evaluation throughput of every registered model, measured three ways.

    suite  images/s of train.py itself (``train.main``): uint8 batches from the suite's
           input pipeline (tf.data under TensorFlow), flip + pad-and-crop (where
           ``runtime.augment_in`` puts it), in-model scaling, every callback, the
           curves, history and checkpoints rewritten each epoch. Taken from the wall
           clock between the ends of consecutive epochs, so it counts all of it, less
           the validation pass (evaluation, which the bare step does not do either).
    bare   images/s of the bare network's own training step (``train_on_batch``) on float32
           tensors already in memory: no data pipeline, no augmentation, no callbacks.
           (Not ``model.fit`` on NumPy arrays: on the 2-core CPU Keras' array pipeline
           itself costs up to half the time, e.g. MiniVGGNet 397 images/s against 725.)
    eval   images/s of evaluate.py's prediction loop on uint8 images, at its default batch.

Each figure is the median of ``--repeats`` epochs (or passes) after two warm-up epochs.
A bare pass runs at the start of every suite epoch (and is left out of its time) and
after the last, and suite/bare is the median of each epoch's ratio to the mean of the
passes just before and after it: this CPU's speed drifts by +-30% over minutes, and
figures taken seconds apart share the drift. The images are random uint8 (speed does
not depend on pixel values), so no data set is needed. Epoch sizes adapt to each model
so that an epoch takes about ``--seconds``.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.quiet import import_keras  # noqa: E402

keras = import_keras()
import numpy as np  # noqa: E402
import yaml  # noqa: E402

import models  # noqa: E402
import evaluate  # noqa: E402
import train  # noqa: E402
from suite.config import DEFAULTS  # noqa: E402
from suite.preprocessing import wrap  # noqa: E402
from suite.runtime import configure, device_description  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=8.0,
                   help="target length of one timed epoch (a real CIFAR-10 epoch on a 2-core CPU: 8 s to 8 min)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--suite-only", action="store_true",
                   help="only train.py's path, with --images per epoch (one compile per model: for short GPU leases)")
    p.add_argument("--images", type=int, default=25600, help="images per epoch with --suite-only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for train.py's runs, e.g. runtime.augment_in=model (repeatable)")
    p.add_argument("--out", help="also write the table (Markdown) and the raw figures (.json beside it)")
    p.add_argument("--one", metavar="JSON", help=argparse.SUPPRESS)  # internal: measure one model into JSON
    return p.parse_args()


class BareStep:
    """The network's own training step (``train_on_batch``) on float32 tensors already in
    memory: no data pipeline, no augmentation, no callbacks."""

    def __init__(self, name, batch, n_images, jit):
        self.net = models.create(name)
        self.net.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(),
                         metrics=["accuracy"], jit_compile=jit)
        rng = np.random.default_rng(0)
        shape = (batch, *self.net.input_shape[1:])
        self.batches = [(keras.ops.convert_to_tensor(rng.standard_normal(shape, dtype=np.float32)),
                         keras.ops.convert_to_tensor(rng.integers(0, 10, batch).astype("int32")))
                        for _ in range(max(1, n_images // batch))]
        for x, y in self.batches[:2]:
            self.net.train_on_batch(x, y)  # tracing and warm-up

    def rate(self):
        """Images/s of one pass over the batches."""
        start = time.perf_counter()
        for x, y in self.batches:
            self.net.train_on_batch(x, y)
        return len(self.batches) * len(self.batches[0][1]) / (time.perf_counter() - start)


class BarePasses(keras.callbacks.Callback):
    """Times one pass of ``bare`` at the start of every epoch of train.py's run and one
    after the last, so that each suite epoch lies between two bare figures taken right
    before and after it, under the same drift of the machine's speed (this CPU varies by
    +-30% over minutes)."""

    def __init__(self, bare):
        super().__init__()
        self.bare, self.rates, self.seconds = bare, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.time_one_pass()

    def on_train_end(self, logs=None):
        self.time_one_pass()

    def time_one_pass(self):
        start = time.perf_counter()
        self.rates.append(self.bare.rate())
        self.seconds.append(time.perf_counter() - start)

    def around(self, epoch):
        """The bare images/s around epoch ``epoch`` (0-based): the mean of the passes before and after it."""
        return (self.rates[epoch] + self.rates[epoch + 1]) / 2


def suite_run(name, batch, n_images, repeats, precision, workdir, bare=None, overrides=()):
    """train.py's real path on ``n_images`` synthetic images for ``2 + repeats`` epochs.

    Returns ``(suite, bare)``: per timed epoch, train.py's images/s from the wall clock
    between epoch ends (less the validation pass and the bare pass inside it), and the
    mean images/s of the bare passes just before and after it (empty without ``bare``).
    The first two epochs are warm-up: epoch 2's cycle still carries epoch 1's first
    checkpoint writes."""
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
    passes = [BarePasses(bare)] if bare else []
    with contextlib.redirect_stdout(io.StringIO()):
        code = train.main(["--config", str(path), *(a for o in overrides for a in ("--set", o))],
                          extra_callbacks=passes)
    if code != 0:
        raise RuntimeError(f"train.py failed for {name} (exit {code})")
    run = sorted((workdir / "runs").glob(f"bench-{name}-*"))[-1]
    history = json.loads((run / "history.json").read_text())
    epochs = len(history["wall_clock"])
    seconds = np.diff(history["wall_clock"]) - history["validation_time"][1:]
    if bare:
        seconds -= passes[0].seconds[1:epochs]
    return list(n_images / seconds[1:]), [passes[0].around(e) for e in range(2, epochs)] if bare else []


def eval_rate(net, n_images, repeats, runtime):
    """Median images/s of evaluate.py's own prediction loop, at its default batch size."""
    model = wrap(net, [0.0] * 3, [255.0] * 3)
    x = np.random.default_rng(2).integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    batch = evaluate.GPU_BATCH_SIZE if runtime.accelerator == "gpu" else evaluate.CPU_BATCH_SIZE
    return statistics.median(evaluate.predict(model, x, batch, runtime)[1] for _ in range(repeats))


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


def measure(name, args, runtime, workdir):
    """The figures of one model, as a dict (see the module docstring)."""
    if args.suite_only:
        suite, _ = suite_run(name, args.batch_size, args.images, args.repeats, args.precision, workdir,
                             overrides=args.set)
        return {"params": models.create(name).count_params(), "suite": statistics.median(suite),
                "train_images_per_epoch": args.images}
    probe = BareStep(name, args.batch_size, args.batch_size * 2, runtime.jit_compile)
    n_train = max(4, round(probe.rate() * args.seconds / args.batch_size)) * args.batch_size
    bare = BareStep(name, args.batch_size, n_train, runtime.jit_compile)
    suite, bare_rates = suite_run(name, args.batch_size, n_train, args.repeats, args.precision, workdir, bare,
                                  args.set)
    rate = statistics.median(bare_rates)
    n_eval = max(1000, min(10000, round(3 * rate * args.seconds / 500) * 500))
    return {"params": bare.net.count_params(), "suite": statistics.median(suite), "bare": rate,
            "ratio": statistics.median(s / b for s, b in zip(suite, bare_rates)),
            "suite_epochs": suite, "bare_passes": bare_rates,
            "eval": eval_rate(bare.net, n_eval, args.repeats, runtime), "train_images_per_epoch": n_train,
            "eval_images": n_eval}


def child_args(args):
    """The measuring options, for a child process that measures one model."""
    return ["--batch-size", str(args.batch_size), "--repeats", str(args.repeats), "--seconds", str(args.seconds),
            "--precision", args.precision, "--images", str(args.images), *(["--suite-only"] if args.suite_only else []),
            *(a for o in args.set for a in ("--set", o))]


def row(name, r):
    suite, bare, evaluated = (f"{r[k]:,.0f}" if r.get(k) else "-" for k in ("suite", "bare", "eval"))
    ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
    return f"| {name} | {r['params']:,} | {suite} | {bare} | {ratio} | {evaluated} |"


def main():
    args = parse_args()
    names = models.list_models() if args.models == "all" else args.models.split(",")
    rt_cfg = {**DEFAULTS["runtime"], "precision": args.precision}
    runtime = configure(rt_cfg, seed=0, deterministic=False)
    if args.one:  # a child process measuring one model
        with tempfile.TemporaryDirectory() as tmp:
            Path(args.one).write_text(json.dumps(measure(names[0], args, runtime, Path(tmp))))
        return
    info = machine(runtime) + "".join(f"; --set {o}" for o in args.set)
    print(f"# throughput, batch {args.batch_size}: {info}", flush=True)
    rows, raw = ["| model | params | suite train img/s | bare train img/s | suite/bare | eval img/s |",
                 "|---|---:|---:|---:|---:|---:|"], {}
    print("\n".join(rows), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            # one process per model: a model's threads, caches and graphs cannot slow the next one
            result = Path(tmp) / f"{name}.json"
            subprocess.run([sys.executable, __file__, *child_args(args), "--models", name, "--one", str(result)],
                           check=True, stdout=subprocess.DEVNULL)
            raw[name] = json.loads(result.read_text())
            rows.append(row(name, raw[name]))
            print(rows[-1], flush=True)
            if args.out:
                write_table(args, info, rows, raw)


def write_table(args, info, rows, raw):
    """The table so far (rewritten after every model, so a cut-off run keeps what it measured)."""
    Path(args.out).write_text(f"Throughput, batch {args.batch_size}, median of {args.repeats}: {info}\n\n"
                              + "\n".join(rows) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"machine": info, "results": raw}, indent=2))


if __name__ == "__main__":
    main()
