"""Training and evaluation throughput of every registered model, measured three ways.

    suite  images/s of train.py itself (``suite.train``): uint8 batches from the suite's
           input pipeline (tf.data under TensorFlow), flip + pad-and-crop (where
           ``runtime.augment_in`` puts it), in-model scaling, every callback, the
           curves, history and checkpoints rewritten each epoch. Taken from the wall
           clock between the starts of consecutive epochs, so it counts all of it, less
           the validation pass (evaluation, which the bare step does not do either).
    bare   images/s of the bare network's own training step (``train_on_batch``) on float32
           tensors already in memory: no data pipeline, no augmentation, no callbacks.
           (Not ``model.fit`` on NumPy arrays: on the 2-core CPU Keras' array pipeline
           itself costs up to half the time, e.g. MiniVGGNet 397 images/s against 725.)
    eval   images/s of evaluate.py's prediction loop on uint8 images, at its default batch.

Training figures come from the epochs of one train.py run, after two warm-up epochs.
Within each epoch the bare step runs in turns with train.py's batches, in blocks of about
a second (``PairedEpochs``), and each epoch gives one suite/bare ratio: this CPU's speed
drifts by +-30% over minutes and by a few percent from second to second, and figures
taken in the same seconds share the drift. What is left is noise with heavy tails, so
the run keeps timing epochs until the median ratio is known to ``--error`` (its standard
error, estimated from the median absolute deviation), with at least ``--repeats`` and at
most ``--max-repeats`` epochs; the table gives the median ratio, its standard error and
the number of epochs. suite and bare are medians over the same epochs, eval the median of
``--repeats`` passes. The images are random uint8 (speed does not depend on pixel
values), so no data set is needed. Epoch sizes adapt to each model so that its training
batches take about ``--seconds`` (and its bare blocks as long again).

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

from suite.core.quiet import import_keras  # noqa: E402

keras = import_keras()
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from suite import models  # noqa: E402
from suite.core.errors import run_cli  # noqa: E402
from suite.workflows import evaluate  # noqa: E402
from suite.api import train  # noqa: E402
from suite.config import DEFAULTS  # noqa: E402
from suite.analysis.inference import predict  # noqa: E402
from suite.data.preprocessing import standardize, wrap  # noqa: E402
from suite.training.runtime import configure, device_description, fuse_batch_norm  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5, help="timed epochs at least (and evaluation passes)")
    p.add_argument("--max-repeats", type=int, default=12, help="timed epochs at most")
    p.add_argument("--error", type=float, default=0.01,
                   help="stop timing epochs once the median suite/bare ratio's standard error is this small")
    p.add_argument("--seconds", type=float, default=8.0,
                   help="target time of one timed epoch's training batches, bare blocks not counted "
                        "(a real CIFAR-10 epoch on a 2-core CPU: 8 s to 8 min)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--suite-only", action="store_true",
                   help="only train.py's path, with --images per epoch (one compile per model: for short GPU leases)")
    p.add_argument("--images", type=int, default=25600, help="images per epoch with --suite-only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for train.py's runs, e.g. runtime.augment_in=model (repeatable)")
    p.add_argument("--out", help="also write the table (Markdown) and the raw figures (.json beside it)")
    p.add_argument("--one", metavar="JSON", help=argparse.SUPPRESS)  # internal: measure one model into JSON
    return p.parse_args()


BLOCK_SECONDS = 1.0  # bare steps and train.py's batches take turns in blocks of about this long


class BareStep:
    """The network's own training step (``train_on_batch``) on float32 tensors already in
    memory: no data pipeline, no augmentation, no callbacks; its batch norms run as
    train.py runs them under ``runtime`` (``fuse_batch_norm``), if given."""

    def __init__(self, name, batch, jit, distinct=4, runtime=None):
        self.net = models.create(name)
        if runtime is not None:
            fuse_batch_norm(self.net, runtime)
        self.net.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(),
                         metrics=["accuracy"], jit_compile=jit)
        rng = np.random.default_rng(0)
        shape = (batch, *self.net.input_shape[1:])
        self.batch = batch
        self.batches = [(keras.ops.convert_to_tensor(rng.standard_normal(shape, dtype=np.float32)),
                         keras.ops.convert_to_tensor(rng.integers(0, 10, batch).astype("int32")))
                        for _ in range(distinct)]
        self.seconds(2)  # tracing and warm-up

    def seconds(self, steps):
        """Seconds that ``steps`` steps take."""
        start = time.perf_counter()
        for i in range(steps):
            self.net.train_on_batch(*self.batches[i % len(self.batches)])
        return time.perf_counter() - start


def median_error(values):
    """Standard error of the median of ``values``, robust to the machine's outliers: the
    median absolute deviation scaled to a normal sigma (x 1.4826), times the median's
    efficiency factor sqrt(pi / 2) = 1.2533, over sqrt(n)."""
    centre = statistics.median(values)
    spread = 1.4826 * statistics.median(abs(v - centre) for v in values)
    return 1.2533 * spread / len(values) ** 0.5


class PairedEpochs(keras.callbacks.Callback):
    """Times train.py's epochs from the inside, with the bare step run in turns with them.

    Before the training steps catch up with the bare ones, ``block`` more bare steps run
    (about ``BLOCK_SECONDS``; checked before each execution of ``steps_per_execution``
    steps); their time is left out of the epoch's, and the epoch's bare figure is the
    images/s of all its bare steps. The two figures of an epoch's ratio are thus
    sampled over the same seconds, so that the machine's changes of speed (+-30% over
    minutes, and a few percent from one second to the next) hit both alike. The input
    pipeline's buffer is full at each turn (it is faster than the step), so none of its
    work moves into the bare blocks. An epoch runs from its start to the start of the next:
    its training batches and every callback and file written at its end, less its
    validation pass and its bare blocks.

    Once ``least`` epochs after ``warmup`` are timed and the median ratio's standard error
    is at most ``error``, or ``most`` are timed, the run stops: the epoch just begun ends
    after one batch and is not counted."""

    def __init__(self, n_images, warmup, least, most, error, bare=None, block=1):
        super().__init__()
        self.n_images, self.warmup, self.least, self.most, self.error = n_images, warmup, least, most, error
        self.bare, self.block, self.suite, self.bare_rates = bare, block, [], []
        self.started = self.validation_started = None
        self.next_block = 0

    def on_epoch_begin(self, epoch, logs=None):
        now = time.perf_counter()
        if self.started is not None:
            self.suite.append(self.n_images / (now - self.started - self.validation - self.bare_seconds))
            if self.bare:
                self.bare_rates.append(self.bare_images / self.bare_seconds)
        self.started, self.validation, self.bare_seconds, self.bare_images = now, 0.0, 0.0, 0
        self.next_block = 0
        if self.enough():
            self.model.stop_training = True

    def on_train_batch_begin(self, batch, logs=None):
        if not self.bare:
            return
        # fit calls this once per execution of steps_per_execution steps: keep the bare
        # steps level with the training steps about to run.
        upcoming = min(batch + self.model.steps_per_execution, self.params.get("steps") or batch + 1)
        while self.next_block < upcoming:
            self.bare_seconds += self.bare.seconds(self.block)
            self.bare_images += self.block * self.bare.batch
            self.next_block += self.block

    def on_test_begin(self, logs=None):
        self.validation_started = time.perf_counter()

    def on_test_end(self, logs=None):
        self.validation += time.perf_counter() - self.validation_started

    def timed(self):
        """``(suite, bare, ratios)`` of the timed epochs: images/s through train.py, images/s
        of the bare steps run in turns with it, and their ratio."""
        suite, bare = self.suite[self.warmup:], self.bare_rates[self.warmup:]
        return suite, bare, [s / b for s, b in zip(suite, bare)]

    def enough(self):
        suite, _, ratios = self.timed()
        if len(suite) >= self.most:
            return True
        return len(suite) >= self.least and (not self.bare or median_error(ratios) <= self.error)


def suite_run(name, batch, n_images, args, workdir, bare=None, block=1):
    """train.py's real path on ``n_images`` synthetic images, timed by ``PairedEpochs``
    (two warm-up epochs: the second still carries the first's first checkpoint writes).
    Returns the ``PairedEpochs`` callback."""
    rng = np.random.default_rng(1)
    data = workdir / f"synthetic-{n_images}.npz"
    if not data.exists():
        np.savez(data, x_train=rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8),
                 y_train=rng.integers(0, 10, n_images).astype("int32"),
                 x_test=rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
                 y_test=np.repeat(np.arange(10), 10).astype("int32"))
    most = args.max_repeats if bare else args.repeats
    paired = PairedEpochs(n_images, 2, args.repeats, most, args.error, bare, block)
    cfg = {"name": f"bench-{name}", "model": {"name": name},
           "data": {"path": str(data)}, "augment": {"flip": True, "crop": 4},
           "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
           "training": {"epochs": paired.warmup + most + 1, "batch_size": batch, "verbose": 0},
           "runtime": {"precision": args.precision}, "output": {"dir": str(workdir / "runs")}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_cli(lambda overrides: train(str(path), overrides=overrides, callbacks=[paired]).exit_code,
                       list(args.set))
    if code != 0:
        raise RuntimeError(f"train.py failed for {name} (exit {code})")
    return paired


def eval_rate(net, n_images, repeats, runtime):
    """Median images/s of evaluate.py's own prediction loop, at its default batch size."""
    model = wrap(net, standardize([0.0] * 3, [255.0] * 3))
    x = np.random.default_rng(2).integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    batch = evaluate.GPU_BATCH_SIZE if runtime.accelerator == "gpu" else evaluate.CPU_BATCH_SIZE
    return statistics.median(predict(model, x, batch, runtime.jit_compile, progress=False)[1] for _ in range(repeats))


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
        suite, _, _ = suite_run(name, args.batch_size, args.images, args, workdir).timed()
        return {"params": models.create(name).count_params(), "suite": statistics.median(suite),
                "train_images_per_epoch": args.images}
    bare = BareStep(name, args.batch_size, runtime.jit_compile, runtime=runtime)
    step = statistics.median(bare.seconds(1) for _ in range(3))
    block = max(1, round(BLOCK_SECONDS / step))
    n_train = max(4, round(args.seconds / step)) * args.batch_size
    suite, bare_rates, ratios = suite_run(name, args.batch_size, n_train, args, workdir, bare, block).timed()
    rate = statistics.median(bare_rates)
    n_eval = max(1000, min(10000, round(3 * rate * args.seconds / 500) * 500))
    return {"params": bare.net.count_params(), "suite": statistics.median(suite), "bare": rate,
            "ratio": statistics.median(ratios), "ratio_error": median_error(ratios), "epochs": len(ratios),
            "suite_epochs": suite, "bare_epochs": bare_rates, "block": block,
            "eval": eval_rate(bare.net, n_eval, args.repeats, runtime), "train_images_per_epoch": n_train,
            "eval_images": n_eval}


def child_args(args):
    """The measuring options, for a child process that measures one model."""
    return ["--batch-size", str(args.batch_size), "--repeats", str(args.repeats), "--max-repeats",
            str(args.max_repeats), "--error", str(args.error), "--seconds", str(args.seconds),
            "--precision", args.precision, "--images", str(args.images), *(["--suite-only"] if args.suite_only else []),
            *(a for o in args.set for a in ("--set", o))]


def row(name, r):
    suite, bare, evaluated = (f"{r[k]:,.0f}" if r.get(k) else "-" for k in ("suite", "bare", "eval"))
    ratio = f"{r['ratio']:.3f} ± {r['ratio_error']:.3f} ({r['epochs']})" if r.get("ratio") else "-"
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
    rows, raw = ["| model | params | suite train img/s | bare train img/s | suite/bare ± error (epochs) | eval img/s |",
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
    epochs = (f"medians of {args.repeats} epochs" if args.suite_only else f"medians of {args.repeats} to "
              f"{args.max_repeats} epochs (to a standard error of {args.error} in suite/bare)")
    Path(args.out).write_text(f"Throughput, batch {args.batch_size}, {epochs}: {info}\n\n"
                              + "\n".join(rows) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"machine": info, "results": raw}, indent=2))


if __name__ == "__main__":
    main()
