"""Where a training step's time goes on this CPU: TensorFlow's profiler over a few steps
of a config's network, summed by op type.

The network is built and compiled as train.py builds it (``suite.workflows.train.build``:
the config's optimizer, loss, ``jit_compile`` and ``steps_per_execution``), then trained
with ``fit`` on random uint8 images already in memory (a ``tf.data`` of them, scaled in the
model as train.py's input is) for ``--warmup`` steps and traced (``tf.profiler.experimental``)
over ``--steps`` more (``--inference``: evaluate.py's prediction loop instead). The trace's
TensorFlow ops (the ``tf_op`` of each event on the host's threads) are summed by type and shown per step,
as milliseconds of thread time: TensorFlow runs independent ops at once (inter-op
threads), so the column can add up to more than the wall clock. The last lines give the
wall clock of the traced steps and of as many steps just before, untraced (the profiler
slows small ops down).

    python bench/profile_step.py --config configs/resnet20.yaml
    python bench/profile_step.py --config configs/minivggnet.yaml --steps 16 --set runtime.threads=1
    python bench/profile_step.py --config configs/allcnn_c.yaml --top 25 --trace-dir /tmp/trace   # keep the trace for TensorBoard
"""

import argparse
import collections
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.core.quiet import import_keras  # noqa: E402

keras = import_keras()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from suite.config import load_config  # noqa: E402
from suite.core import cpu  # noqa: E402
from suite.analysis.inference import predict  # noqa: E402
from suite.data import cifar10  # noqa: E402
from suite.training.runtime import configure  # noqa: E402
from suite.workflows import evaluate  # noqa: E402
from suite.workflows import train as training  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--inference", action="store_true",
                   help="evaluate.py's prediction step (its CPU batch, the network as evaluate.py builds it) "
                        "instead of training")
    p.add_argument("--batch", type=int, help="batch size (default: the config's, or evaluate.py's with --inference)")
    p.add_argument("--steps", type=int, default=16, help="traced steps")
    p.add_argument("--warmup", type=int, default=16, help="steps before the trace (compilation, oneDNN's primitives)")
    p.add_argument("--top", type=int, default=20, help="op types shown")
    p.add_argument("--trace-dir", help="keep the trace here (default: a temporary folder)")
    return p.parse_args()


def fit_steps(trainer, batch, steps):
    x = np.random.default_rng(0).integers(0, 256, (batch * steps, 32, 32, 3)).astype("uint8")
    y = np.random.default_rng(1).integers(0, 10, batch * steps)
    if trainer.one_hot:
        y = keras.utils.to_categorical(y, trainer.one_hot)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    start = time.perf_counter()
    trainer.model.fit(data, epochs=1, verbose=0)
    return time.perf_counter() - start


def predict_steps(model, batch, steps):
    x = np.random.default_rng(0).integers(0, 256, (batch * steps, 32, 32, 3)).astype("uint8")
    start = time.perf_counter()
    predict(model, x, batch, progress=False)
    return time.perf_counter() - start


def op_times(trace_dir):
    """``{op type: microseconds}`` summed over every host thread of the trace in ``trace_dir``."""
    files = list(Path(trace_dir).rglob("*.xplane.pb"))
    space = xplane_pb2.XSpace()
    space.ParseFromString(files[-1].read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                kind = _op_type(meta.name, [(stat_names.get(s.metadata_id), s) for s in event.stats])
                if kind:
                    totals[kind] += event.duration_ps / 1e6
    return totals


def _op_type(name, stats):
    """The TensorFlow op type of a trace event (``scope/name:Type``), or None for other events."""
    for key, stat in stats:
        if key == "tf_op":
            return stat.str_value.rpartition(":")[2] or None
    if ":" in name and "/" in name.partition(":")[0]:
        return name.rpartition(":")[2]
    return None


def build_trainer(config, sets=()):
    """``(config, runtime, trainer)``: ``config``'s network built and compiled as train.py
    builds it, on a small stratified subset (the steps themselves are fed random images)."""
    cfg = load_config(config, sets)
    runtime = configure(cfg["runtime"], cfg["training"]["seed"], cfg["training"]["deterministic"])
    splits = cifar10.prepare({**cfg["data"], "subset": 50, "test_subset": 10}, cfg["training"]["seed"])
    return cfg, runtime, training.build(cfg, splits, runtime)


def main():
    args = parse_args()
    cfg, runtime, trainer = build_trainer(args.config, args.set)
    if args.inference:
        batch, steps = args.batch or evaluate.CPU_BATCH_SIZE, functools.partial(predict_steps, trainer.model)
    else:
        batch, steps = args.batch or cfg["training"]["batch_size"], functools.partial(fit_steps, trainer)
    steps(batch, args.warmup)
    untraced = steps(batch, args.steps)
    trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="profile_step-")
    tf.profiler.experimental.start(trace_dir)
    wall = steps(batch, args.steps)
    tf.profiler.experimental.stop()
    totals = op_times(trace_dir)
    busy = sum(totals.values())
    print(f"{cfg['model']['name']}, {'inference' if args.inference else 'training'}, batch {batch}, {args.steps} steps, "
          f"{runtime.steps_per_execution} per execution, batch norm {'fused' if runtime.fused_batch_norm else 'Keras'}, "
          f"XLA {'on' if runtime.jit_compile else 'off'}; {tf.__version__}, oneDNN {cpu.tensorflow_onednn()}")
    print(f"{'op type':32} {'ms/step':>9} {'share':>7}")
    for kind, us in totals.most_common(args.top):
        print(f"{kind:32} {us / 1e3 / args.steps:9.2f} {us / busy:7.1%}")
    rest = busy - sum(us for _, us in totals.most_common(args.top))
    print(f"{'(the other ' + str(max(0, len(totals) - args.top)) + ' types)':32} {rest / 1e3 / args.steps:9.2f} "
          f"{rest / busy if busy else 0:7.1%}")
    print(f"{'ops, thread time':32} {busy / 1e3 / args.steps:9.2f}")
    for what, seconds in (("wall clock, traced", wall), ("wall clock, not traced", untraced)):
        print(f"{what:32} {seconds * 1e3 / args.steps:9.2f}   ({batch * args.steps / seconds:,.0f} images/s)")


if __name__ == "__main__":
    main()
