"""Where the suite's shipped files are: the experiment configs, the pretrained weights with
their sidecars, the quick-start sample, and the checkout's ``results/``.

Run from a checkout (installed editable or not at all), they are the checkout's folders
beside the ``suite`` package: ``configs/``, ``weights/``, ``data/``. Installed from a
wheel, the same files travel inside the package as ``suite/shipped/{configs,weights,data}``
(pyproject.toml's package data), and ``results/`` is the current folder's.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
CHECKOUT = PACKAGE.parent
IN_CHECKOUT = (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "configs").is_dir()
SHIPPED = CHECKOUT if IN_CHECKOUT else PACKAGE / "shipped"
CONFIGS = SHIPPED / "configs"
WEIGHTS = SHIPPED / "weights"
SAMPLE = SHIPPED / "data" / "cifar10_sample.npz"
RESULTS = CHECKOUT / "results" if IN_CHECKOUT else Path("results")
