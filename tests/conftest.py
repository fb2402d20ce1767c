"""Shared fixtures: the real CIFAR-10 (from CIFAR10_PATH, as CI sets it) and small slices of it."""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("CIFAR10_PATH", str(REPO.parent / "shared" / "data" / "cifar-10-batches-py"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from suite.data import load_cifar10  # noqa: E402


@pytest.fixture(scope="session")
def cifar():
    """The full real CIFAR-10 as uint8 arrays (about 180 MB, read once per session)."""
    return load_cifar10()


@pytest.fixture(scope="session")
def fixed_batch(cifar):
    """32 real training images, 3 or 4 of every class, and their labels."""
    idx = np.concatenate([np.flatnonzero(cifar.y_train == c)[:4] for c in range(10)])[:32]
    return cifar.x_train[idx], cifar.y_train[idx]


def train_run(out_dir, *sets, config="configs/quickstart.yaml", name=None):
    """Run train.py in this process on a real-data subset; return (exit code, run folder)."""
    import train

    out_dir = Path(out_dir)
    args = ["--config", str(REPO / config), "--set", f"output.dir={out_dir}", "--set", "training.verbose=0"]
    if name:
        args += ["--set", f"name={name}"]
    for s in sets:
        args += ["--set", s]
    before = set(out_dir.glob("*")) if out_dir.exists() else set()
    code = train.main(args)
    new = sorted(set(out_dir.glob("*")) - before)
    return code, (new[-1] if new else None)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished 2-epoch run of ShallowNet on 30 real images per class (a real run folder)."""
    code, run_dir = train_run(tmp_path_factory.mktemp("runs"), "model.name=shallownet", "model.params={}",
                              "data.source=cifar10", "data.subset=30", "data.test_subset=20",
                              "training.epochs=2", name="tiny")
    assert code == 0
    return run_dir
