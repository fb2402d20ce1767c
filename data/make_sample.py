"""Make data/cifar10_sample.npz: the small stratified sample of real CIFAR-10 for the quick start.

    python data/make_sample.py ../shared/data/cifar-10-batches-py

150 training images of every class (1,500) drawn from the official training batches
and 50 test images of every class (500) from the official test batch, with a fixed seed,
stored losslessly (uint8, NHWC) in a compressed .npz. See data/SAMPLE.md.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from suite.data.cifar10 import load_cifar10, stratified_indices  # noqa: E402

TRAIN_PER_CLASS, TEST_PER_CLASS, SEED = 150, 50, 2015


def main(source):
    data = load_cifar10(source)
    train = stratified_indices(data.y_train, TRAIN_PER_CLASS, SEED)
    test = stratified_indices(data.y_test, TEST_PER_CLASS, SEED)
    out = Path(__file__).with_name("cifar10_sample.npz")
    np.savez_compressed(out, x_train=data.x_train[train], y_train=data.y_train[train],
                        x_test=data.x_test[test], y_test=data.y_test[test],
                        train_indices=train, test_indices=test)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
