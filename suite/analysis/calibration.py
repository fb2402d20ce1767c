"""Whether a network's confidences mean anything: the measures and the one-parameter fix of
Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017,
arXiv:1706.04599.

- ECE, the expected calibration error (their eq. 3): the test images binned by confidence
  (the top softmax probability) into 15 equal-width bins ((m-1)/15, m/15], and the
  bins' |accuracy - mean confidence| averaged, weighted by how many images each holds.
- NLL, the mean negative log-likelihood of the true class.
- The Brier score (Brier 1950): the squared distance between the probability vector and
  the one-hot label, summed over classes and averaged over images (0 perfect, 2 worst).
- Temperature scaling (their section 4.2): the logits divided by one scalar T > 0 fitted to
  minimise the NLL on held-out images; accuracy is unchanged. The networks here end in a
  softmax, so the logits are taken as ``log p`` (equal to the logits up to a per-image
  constant, which the softmax ignores).
"""

import numpy as np
from matplotlib.figure import Figure

from suite.analysis.plots import save

BINS = 15
PROB_FLOOR = 1e-30          # log(0) for probabilities that underflowed in float32
T_RANGE = (0.05, 20.0)      # the temperatures fit_temperature searches


def _float64(probs):
    return np.asarray(probs, dtype=np.float64)


def confidence_bins(probs, y, bins=BINS):
    """``(counts, accuracy, confidence)`` per equal-width confidence bin ((m-1)/bins, m/bins]
    (a confidence of exactly 0 goes to the first); empty bins hold NaN."""
    probs = _float64(probs)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, correct, minlength=bins) / counts
        mean_confidence = np.bincount(which, confidence, minlength=bins) / counts
    return counts, accuracy, mean_confidence


def expected_calibration_error(probs, y, bins=BINS):
    """ECE with ``bins`` equal-width bins (Guo et al. 2017, eq. 3), a fraction in [0, 1]."""
    counts, accuracy, confidence = confidence_bins(probs, y, bins)
    filled = counts > 0
    return float(np.sum(counts[filled] * np.abs(accuracy[filled] - confidence[filled])) / counts.sum())


def negative_log_likelihood(probs, y):
    """The mean of -log p(true class)."""
    probs = _float64(probs)
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(probs)), np.asarray(y)], PROB_FLOOR))))


def brier_score(probs, y):
    """The mean over images of sum_k (p_k - [k = y])^2."""
    probs = _float64(probs).copy()
    probs[np.arange(len(probs)), np.asarray(y)] -= 1.0
    return float(np.mean(np.sum(probs ** 2, axis=1)))


def measures(probs, y, bins=BINS):
    """``{"ece", "nll", "brier"}`` of ``probs`` against the labels ``y``."""
    return {"ece": expected_calibration_error(probs, y, bins), "nll": negative_log_likelihood(probs, y),
            "brier": brier_score(probs, y)}


def with_temperature(probs, temperature):
    """``softmax(log p / T)``: the probabilities after temperature scaling."""
    logits = np.log(np.maximum(_float64(probs), PROB_FLOOR)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probs, y, iterations=80):
    """The T in ``T_RANGE`` that minimises the NLL of ``with_temperature(probs, T)`` on
    ``(probs, y)``: a golden-section search over 1/T, in which the NLL is convex (a
    log-sum-exp of a linear function of 1/T, less a linear term)."""
    logits = np.log(np.maximum(_float64(probs), PROB_FLOOR))
    true = logits[np.arange(len(logits)), np.asarray(y)]

    def nll(beta):
        z = beta * logits
        top = z.max(axis=1)
        return float(np.mean(top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - beta * true))

    lo, hi = 1.0 / T_RANGE[1], 1.0 / T_RANGE[0]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(1.0 / ((lo + hi) / 2.0))


def reliability_diagram(probs, y, path, title, after=None, bins=BINS):
    """A reliability diagram (Guo et al. 2017, fig. 1): accuracy per confidence bin against
    the diagonal, with the ECE; ``after``, the probabilities after temperature scaling,
    drawn beside it. Written to ``path`` (PNG)."""
    panels = [("before", probs)] + ([("after temperature scaling", after)] if after is not None else [])
    fig = Figure(figsize=(4.2 * len(panels), 4.2))
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, (label, p) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        counts, accuracy, confidence = confidence_bins(p, y, bins)
        filled = counts > 0
        ax.bar(edges[:-1][filled], accuracy[filled], width=1.0 / bins, align="edge", color="#4c72b0",
               edgecolor="black", linewidth=0.5, label="accuracy")
        ax.bar(edges[:-1][filled], (confidence - accuracy)[filled], bottom=accuracy[filled], width=1.0 / bins,
               align="edge", color="#dd8452", alpha=0.5, edgecolor="#dd8452", label="gap to confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
               title=f"{label}: ECE {100 * expected_calibration_error(p, y, bins):.2f}%")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)
