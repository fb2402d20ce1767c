"""The checkout's folders beside the ``suite`` package: ``results/``, ``weights/``, ``data/``."""

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
RESULTS = CHECKOUT / "results"
WEIGHTS = CHECKOUT / "weights"
SAMPLE = CHECKOUT / "data" / "cifar10_sample.npz"
