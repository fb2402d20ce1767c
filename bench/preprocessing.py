"""Milliseconds per batch of the preprocessing alone: in the model (scaling, and
flip-and-crop then scaling) and, under TensorFlow, in train.py's tf.data input.

This is the work train.py does on every batch that the bare step of
``bench/throughput.py`` does not, so for the cheapest networks it is most of the gap
between the two (ShallowNet's whole training step takes 15-16 ms a batch on the
2-core CPU, on both cores: 25-28 ms of CPU time). The input runs on tf.data's threads
beside the step, so its CPU time per batch (all threads) is what it takes from training;
its wall time is how long the step would wait for a batch if nothing were prefetched.

    python bench/preprocessing.py                  # batch 128, median of 5 runs of 300 calls
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.core.quiet import import_keras  # noqa: E402

keras = import_keras()
import numpy as np  # noqa: E402

from suite.data.preprocessing import RandomFlipCrop, Standardize  # noqa: E402


class AsInTraining(keras.layers.Layer):
    """Calls ``layer`` as in training (augmenting), also inside ``predict_on_batch``."""

    def __init__(self, layer):
        super().__init__(dtype=layer.dtype_policy)
        self.layer = layer

    def call(self, x):
        return self.layer(x, training=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    images = keras.ops.convert_to_tensor(
        np.random.default_rng(0).integers(0, 256, (args.batch_size, 32, 32, 3), dtype=np.uint8))
    scale = Standardize([125.3, 123.0, 113.9], [63.0, 62.1, 66.7], dtype="float32")
    flip_crop = RandomFlipCrop(4, flip=True, fill=(125, 123, 114), seed=0)
    scale_only = Standardize([0, 0, 0], [255, 255, 255], dtype="float32")  # `normalize: scale`
    variants = {"scaling": lambda x: scale(x),
                "scaling (normalize: scale)": lambda x: scale_only(x),
                "flip-and-crop + scaling": lambda x: scale(AsInTraining(flip_crop)(x))}
    steps = {}
    for name, fn in variants.items():
        model_input = keras.Input((32, 32, 3), dtype="uint8")
        steps[name] = keras.Model(model_input, fn(model_input))
    augmented = steps["flip-and-crop + scaling"].predict_on_batch(images)
    assert not np.allclose(augmented, steps["scaling"].predict_on_batch(images)), "not augmenting"
    print(f"# backend {keras.backend.backend()}, batch {args.batch_size}, median of {args.repeats} x {args.calls} calls")
    for name, model in steps.items():
        model.predict_on_batch(images)  # traces Keras' compiled predict step
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(args.calls):
                model.predict_on_batch(images)
            runs.append((time.perf_counter() - start) / args.calls * 1000)
        print(f"{name:26s} {statistics.median(runs):6.2f} ms a batch")
    if keras.backend.backend() == "tensorflow":
        time_input(args, flip_crop)


def time_input(args, flip_crop):
    """train.py's tf.data input (``suite.data.pipeline.tf_batches``) over 50,000 images, plain
    and with flip-and-crop: wall and CPU milliseconds per batch, taken alternately."""
    from suite.data.pipeline import EpochCounter, tf_batches

    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 50000).astype("int32")
    inputs = {"input: gather": iter(tf_batches(x, y, args.batch_size, 0, EpochCounter(0), False).repeat()),
              "input: flip-and-crop": iter(tf_batches(x, y, args.batch_size, 0, EpochCounter(0), False, flip_crop).repeat())}
    runs = {name: [] for name in inputs}
    for it in inputs.values():
        for _ in range(50):
            next(it)
    for _ in range(args.repeats):
        for name, it in inputs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                next(it)
            runs[name].append(((time.perf_counter() - wall) / args.calls * 1000,
                               (time.process_time() - cpu) / args.calls * 1000))
    for name, figures in runs.items():
        print(f"{name:26s} {statistics.median(w for w, _ in figures):6.2f} ms a batch "
              f"({statistics.median(c for _, c in figures):.2f} ms of CPU)")


if __name__ == "__main__":
    main()
