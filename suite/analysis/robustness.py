"""How a network holds up under CIFAR-10-C's corruptions (Hendrycks and Dietterich, ICLR
2019, arXiv:1903.12261): accuracy and NLL per corruption and severity, the summary for
``metrics.json``, a heatmap, and one image under every corruption.

The corrupted images are made on the fly by ``suite.data.corruptions`` from the test images
(deterministic from a seed), or read from the user's copy of the published CIFAR-10-C.

The summary follows AugMix (Hendrycks et al., ICLR 2020, arXiv:1912.02781), whose Table 1
reports for CIFAR-10-C the unnormalised mean corruption error: the error averaged over
the corruptions and severities evaluated, with no AlexNet baseline (that normalisation,
the mCE of the ImageNet-C paper, has no CIFAR-10 baseline).
"""

import time

import numpy as np
from matplotlib.figure import Figure

from suite.analysis.calibration import negative_log_likelihood
from suite.analysis.plots import save
from suite.core.errors import UserError
from suite.data.corruptions import GROUPS, NAMES, SEVERITIES, corrupt, load_real

TILE_SCALE = 4          # grid(): each 32 x 32 tile drawn 128 x 128, nearest neighbour


def evaluate(predict, x, y, names, severities, seed=0, real_dir=None, progress=print):
    """Accuracy and mean NLL of ``predict`` under each corruption and severity.

    ``predict(images_uint8)`` returns probabilities (N, classes). The images are the test
    images ``x`` (labels ``y``) corrupted by ``suite.data.corruptions.corrupt`` with
    ``seed``, or, with ``real_dir``, the first ``len(x)`` images of each severity of the
    published CIFAR-10-C files there (with their labels). ``progress`` (None for quiet)
    gets one line per corruption: its accuracies, images per second so far, seconds.

    Returns ``{"accuracy": {name: {severity: accuracy}}, "nll": {name: {severity: nll}},
    "images": count, "seconds": time, "source": "generated" or the folder, "seed": seed}``.
    """
    names = list(names)
    severities = list(severities)
    if not names or not severities:
        raise UserError("no corruption or no severity to evaluate")
    for name in names:                       # an unknown name, a bad severity or seed fails before any work
        corrupt(x[:0], name, severities[0], seed)
    for s in severities:
        corrupt(x[:0], names[0], s, seed)
    severities = [int(s) for s in severities]
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if real_dir is not None:
        batches = load_real(real_dir, names, severities, limit=len(x))
    else:
        batches = ((name, s, corrupt(x, name, s, seed), y) for name in names for s in severities)
    accuracy = {name: {} for name in names}
    nll = {name: {} for name in names}
    start, images = time.perf_counter(), 0
    for name, severity, images_s, labels in batches:
        probs = np.asarray(predict(images_s), dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(labels):
            raise ValueError(f"predict gave an array of shape {probs.shape} for {len(labels)} images")
        accuracy[name][severity] = float(np.mean(probs.argmax(axis=1) == labels))
        nll[name][severity] = negative_log_likelihood(probs, labels)
        images += len(labels)
        if progress is not None and len(accuracy[name]) == len(severities):
            elapsed = time.perf_counter() - start
            scores = " ".join(f"{accuracy[name][s]:.4f}" for s in severities)
            progress(f"{name:<18} {scores}   {images / max(elapsed, 1e-9):,.0f} images/s, {elapsed:.0f} s")
    return {"accuracy": accuracy, "nll": nll, "images": images, "seconds": time.perf_counter() - start,
            "source": "generated" if real_dir is None else str(real_dir), "seed": seed}


def _accuracies(results):
    """``{name: {severity: accuracy}}`` from ``evaluate``'s result or such a dict itself."""
    table = results["accuracy"] if "accuracy" in results else results
    return {name: {int(s): float(a) for s, a in by_severity.items()} for name, by_severity in table.items()}


def _mean(values):
    values = list(values)
    return float(np.mean(values)) if values else None


def summary(results, clean_accuracy):
    """The ``metrics.json`` entries: mean accuracy per corruption, per severity and per group
    (noise, blur, weather, digital), over everything evaluated (``mean_corruption_accuracy``),
    its error (``mean_corruption_error``, AugMix's unnormalised mCE for CIFAR-10-C), and that
    error relative to the clean error (None when the clean error is 0)."""
    table = _accuracies(results)
    every = [a for by_severity in table.values() for a in by_severity.values()]
    mean_accuracy = _mean(every)
    clean_error = 1.0 - float(clean_accuracy)
    error = None if mean_accuracy is None else 1.0 - mean_accuracy
    severities = sorted({s for by_severity in table.values() for s in by_severity})
    out = {
        "clean_accuracy": float(clean_accuracy),
        "mean_corruption_accuracy": mean_accuracy,
        "mean_corruption_error": error,
        "relative_to_clean": None if error is None or clean_error <= 0 else error / clean_error,
        "by_corruption": {name: _mean(by_severity.values()) for name, by_severity in table.items()},
        "by_severity": {str(s): _mean(t[s] for t in table.values() if s in t) for s in severities},
        "by_group": {group: _mean(a for name in members if name in table for a in table[name].values())
                     for group, members in GROUPS.items() if any(name in table for name in members)},
        "accuracy": {name: {str(s): a for s, a in sorted(by_severity.items())} for name, by_severity in table.items()},
    }
    if "nll" in results:
        out["mean_nll"] = _mean(v for by_severity in results["nll"].values() for v in by_severity.values())
    for key in ("images", "source", "seed"):
        if key in results:
            out[key] = results[key]
    return out


def heatmap(results, path, title):
    """Accuracy by corruption (rows, CIFAR-10-C's order) and severity (columns), each cell
    annotated, with each corruption's mean in a last column."""
    table = _accuracies(results)
    names = [n for n in NAMES if n in table] + [n for n in table if n not in NAMES]
    severities = sorted({s for by_severity in table.values() for s in by_severity})
    grid_ = np.full((len(names), len(severities) + 1), np.nan)
    for i, name in enumerate(names):
        for j, s in enumerate(severities):
            grid_[i, j] = table[name].get(s, np.nan)
        grid_[i, -1] = np.nanmean(grid_[i, :-1]) if np.isfinite(grid_[i, :-1]).any() else np.nan
    fig = Figure(figsize=(1.1 * len(severities) + 4.2, 0.42 * len(names) + 1.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid_, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.8, label="accuracy")
    for i in range(len(names)):
        for j in range(len(severities) + 1):
            if np.isfinite(grid_[i, j]):
                ax.text(j, i, f"{grid_[i, j]:.1%}", ha="center", va="center", fontsize=9,
                        fontweight="bold" if j == len(severities) else "normal")
    ax.axvline(len(severities) - 0.5, color="white", lw=3)
    ax.set_xticks(range(len(severities) + 1), [str(s) for s in severities] + ["mean"])
    ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names])
    ax.set_xlabel("severity")
    ax.set_title(title)
    save(fig, path)


def grid(image, path, seed=0, names=NAMES, severities=SEVERITIES, title=None):
    """One image (uint8 32 x 32 x 3) under every corruption (rows) and severity (columns),
    the clean image first in each row; tiles enlarged with nearest neighbour."""
    image = np.asarray(image)
    names = list(names)
    severities = list(severities)
    cols = len(severities) + 1
    fig = Figure(figsize=(1.45 * cols + 1.1, 1.45 * len(names) + 0.6), layout="constrained")
    axes = np.asarray(fig.subplots(len(names), cols, squeeze=False))
    for i, name in enumerate(names):
        tiles = [image] + [corrupt(image[None], name, s, seed)[0] for s in severities]
        for j, tile in enumerate(tiles):
            ax = axes[i, j]
            ax.imshow(np.repeat(np.repeat(tile, TILE_SCALE, axis=0), TILE_SCALE, axis=1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("clean" if j == 0 else f"severity {severities[j - 1]}", fontsize=10)
            if j == 0:
                ax.set_ylabel(name.replace("_", " "), fontsize=10)
    fig.suptitle(title or f"CIFAR-10-C corruptions (generated, seed {seed})")
    save(fig, path)
