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
