"""Seconds that train.py spends on its per-epoch files, next to what Keras' own way costs.

    best   the best checkpoint: Keras' ``save_weights`` through ``suite.core.atomic`` (the
           network only, as train.py saves it)
    state  ``state.h5`` (network, augmentation and optimizer variables): one dataset per
           variable (the suite's first format) against one dataset per dtype
    curves ``plot_run`` of a 30-epoch history (train.py draws it on a background thread)

Each figure is the median of ``--repeats`` saves after one warm-up. Over a real epoch
these are small; over the short epochs of ``bench/throughput.py`` they are part of what
separates train.py from the bare step.

    python bench/checkpoints.py                              # ResNet-20/56/110, All-CNN-C, MiniVGGNet
    python bench/checkpoints.py --models resnet110 --repeats 9
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.core.quiet import import_keras  # noqa: E402

keras = import_keras()
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from suite import models  # noqa: E402
from suite.callbacks.checkpoints import TrainingState, numpy_values, save_weights_atomic  # noqa: E402
from suite.analysis.plots import plot_run  # noqa: E402
from suite.data.preprocessing import RandomFlipCrop, standardize, wrap  # noqa: E402


def per_variable_state(model, path):
    """The first state format, for comparison: one HDF5 dataset per variable."""
    with h5py.File(path, "w") as f:
        for group, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
            g = f.create_group(group)
            for i, value in enumerate(numpy_values(variables)):
                g.create_dataset(f"{i:05d}", data=value)


def median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name, repeats, folder):
    net = models.create(name)
    model = wrap(net, standardize([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]), RandomFlipCrop(4, True, (125, 123, 114), seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 64), verbose=0)
    state = TrainingState(folder / "state.h5", lambda epoch: {"epoch": epoch})
    state.set_model(model)
    epochs = list(range(1, 31))
    history = {"epoch": epochs, "loss": [2 / e for e in epochs], "val_loss": [2.2 / e for e in epochs],
               "accuracy": [1 - 0.9 / e for e in epochs], "val_accuracy": [1 - 1 / e for e in epochs],
               "learning_rate": [0.1 * 0.1 ** (e // 10) for e in epochs]}
    return {
        "variables": f"{len(net.variables)} / {len(model.variables) + len(model.optimizer.variables)}",
        "best: save_weights": median_seconds(lambda: save_weights_atomic(net, folder / "best.weights.h5"), repeats),
        "state: per variable": median_seconds(lambda: per_variable_state(model, folder / "old.h5"), repeats),
        "state: per dtype": median_seconds(lambda: state.on_epoch_end(0), repeats),
        "curves": median_seconds(lambda: plot_run(history, folder / "curves.png", name), repeats),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="resnet20,resnet56,resnet110,allcnn_c,minivggnet")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(f"# seconds per save, median of {args.repeats}; backend {keras.backend.backend()}, "
          f"keras {keras.__version__}, {os.cpu_count()} CPUs")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            rows.append((name, measure(name, args.repeats, Path(folder))))
    columns = list(rows[0][1])
    print("| model | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in rows:
        cells = [v if isinstance(v, str) else f"{v:.3f}" for v in row.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
