"""What evaluate.py reports about a set of predictions, one registered function per report.

A report is a function ``(ev, out) -> (lines, metrics)`` registered in ``REPORTS``: it
reads the ``Evaluation`` (images, labels, softmax outputs and what is derived from them),
may write its files into the report folder ``out``, and returns the lines it prints
(also kept in ``report.txt``) and its entries of ``metrics.json``. ``run_reports`` runs
them in the order they are registered here, so a new report is one function below.
``scores_on_test`` is the shorter figure that train.py records at the end of a run.
"""

from dataclasses import dataclass
from functools import cached_property

import keras
import numpy as np
from matplotlib.figure import Figure

from suite.analysis import calibration
from suite.analysis.plots import save
from suite.analysis.tta import combine, views
from suite.core.atomic import atomic_path, write_text
from suite.core.registry import Registry

EPSILON = 1e-7                  # keras.config.epsilon(), as Keras' cross-entropy clips
TOP_CONFUSED = 5
GRID_ROWS, GRID_COLS = 6, 8     # misclassified images shown: the most confident mistakes

REPORTS = Registry("report")   # run in the order they are registered
report = REPORTS.register


@dataclass
class Evaluation:
    x: np.ndarray               # uint8 images
    y: np.ndarray               # true classes
    probs: np.ndarray           # softmax outputs
    class_names: list
    model_name: str
    is_sample: bool             # the quick-start sample, not the CIFAR-10 test set
    images_per_sec: float
    seconds: float
    temperature: float = None   # temperature scaling's T (fitted on held-out training images), or None
    temperature_note: str = ""  # where T came from

    @cached_property
    def predicted(self):
        return self.probs.argmax(axis=1)

    @cached_property
    def confusion(self):
        """Counts; rows: true class, columns: predicted class."""
        k = len(self.class_names)
        return np.bincount(self.y * k + self.predicted, minlength=k * k).reshape(k, k)


def run_reports(ev, out):
    """Every report on ``ev``, writing into ``out``: ``(lines, metrics)`` of them all."""
    lines, metrics = [], {}
    for fn in REPORTS.functions():
        more_lines, more_metrics = fn(ev, out)
        lines += more_lines
        metrics.update(more_metrics)
    return lines, metrics


def scores_on_test(model, x, y, batch_size, label, tta=0):
    """Test cross-entropy and accuracy (plain cross-entropy: no L2 penalty, no label
    smoothing); with ``tta`` (a ``suite.analysis.tta`` level) also those of the test-time augmented
    predictions, named ``..._tta``, from the same forward passes (the first view is the
    image itself)."""
    weighted = [(weight, model.predict(images, batch_size=batch_size, verbose=0)) for weight, images in views(x, tta)]
    scores = _scores(y, weighted[0][1], label)
    if tta:
        scores.update(_scores(y, combine(weighted), label, "_tta"))
    return scores


def _scores(y, probs, label, suffix=""):
    loss = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(y, probs))
    return {f"{label}_test_loss{suffix}": float(np.mean(loss)),
            f"{label}_test_accuracy{suffix}": float(np.mean(probs.argmax(axis=1) == y))}


@report
def loss_and_accuracy(ev, out):
    """Cross-entropy (in float64, clipped as Keras clips) and accuracy."""
    p = ev.probs.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(np.mean(-np.log(np.clip(p[np.arange(len(ev.y)), ev.y], EPSILON, 1 - EPSILON))))
    accuracy = float(np.mean(ev.predicted == ev.y))
    lines = [f"\n{'SAMPLE' if ev.is_sample else 'test'} loss {loss:.4f}  accuracy {accuracy:.4f}  ({len(ev.y):,} "
             f"images, {ev.images_per_sec:,.0f} images/s, {ev.seconds:.1f} s)"]
    if ev.is_sample:
        lines.append("note: these figures are on the quick-start sample, not the CIFAR-10 test set")
    return lines, {"loss": loss, "accuracy": accuracy, "images": len(ev.y),
                   "images_per_sec": round(ev.images_per_sec, 1), "predict_seconds": round(ev.seconds, 3)}


@report
def per_class(ev, out):
    """Precision, recall, F1 and support per class, macro and weighted averages: a table and ``per_class.csv``."""
    rows, averages = class_report(ev.confusion, ev.class_names)
    write_text(out / "per_class.csv", report_csv(rows, averages))
    return ["", report_table(rows, averages)], {"class_names": ev.class_names, "per_class": rows, **averages}


@report
def most_confused(ev, out):
    """The TOP_CONFUSED most frequent (true, predicted) mistakes."""
    k = len(ev.class_names)
    off = ev.confusion.copy()
    np.fill_diagonal(off, 0)
    order = sorted(range(k * k), key=lambda i: -off.flat[i])[:TOP_CONFUSED]
    confused = [{"true": ev.class_names[i // k], "predicted": ev.class_names[i % k], "count": int(off.flat[i])}
                for i in order if off.flat[i] > 0]
    lines = ["", "most confused (true -> predicted):"]
    lines += [f"  {c['true']:>10} -> {c['predicted']:<10} {c['count']:>5}" for c in confused] or ["  (no mistakes)"]
    return lines, {"most_confused": confused}


@report
def confusion_matrix(ev, out):
    """``confusion.png`` and the matrix in the metrics."""
    accuracy = float(np.mean(ev.predicted == ev.y))
    title = f"{ev.model_name}: accuracy {accuracy:.2%} on {len(ev.y):,} " + \
        ("SAMPLE images (not the test set)" if ev.is_sample else "test images")
    plot_confusion(ev.confusion, ev.class_names, out / "confusion.png", title)
    return [], {"confusion_matrix": ev.confusion.tolist(),
                "confusion_matrix_axes": "rows: true class, columns: predicted class, in class_names order"}


@report
def misclassified(ev, out):
    """``misclassified.png``: the mistakes the model was most sure of."""
    plot_mistakes(ev.x, ev.y, ev.predicted, ev.probs, ev.class_names, out / "misclassified.png",
                  f"{ev.model_name}: the most confident mistakes" + (" (on the SAMPLE)" if ev.is_sample else ""))
    return [], {}


@report
def calibration_report(ev, out):
    """ECE (15 bins), NLL and Brier score (``suite.analysis.calibration``), before and, given
    a temperature, after temperature scaling; ``reliability.png``."""
    before = calibration.measures(ev.probs, ev.y)
    after = calibration.with_temperature(ev.probs, ev.temperature) if ev.temperature else None
    metrics = {"calibration": {"bins": calibration.BINS, **before}}
    lines = ["", f"calibration: ECE {100 * before['ece']:.2f}% (15 bins)  NLL {before['nll']:.4f}  "
                 f"Brier {before['brier']:.4f}"]
    if after is not None:
        scaled = calibration.measures(after, ev.y)
        metrics["calibration"].update({"temperature": ev.temperature, "temperature_from": ev.temperature_note,
                                       "after_temperature": scaled})
        lines.append(f"  after temperature scaling (T = {ev.temperature:.3f}, {ev.temperature_note}): "
                     f"ECE {100 * scaled['ece']:.2f}%  NLL {scaled['nll']:.4f}  Brier {scaled['brier']:.4f}")
    calibration.reliability_diagram(ev.probs, ev.y, out / "reliability.png",
                                    f"{ev.model_name}: reliability on {len(ev.y):,} "
                                    + ("SAMPLE images" if ev.is_sample else "test images"), after)
    return lines, metrics


@report
def predictions(ev, out):
    """``predictions.npz``: every softmax output, true and predicted class."""
    with atomic_path(out / "predictions.npz") as tmp:
        np.savez_compressed(tmp, probs=ev.probs, y_true=ev.y, y_pred=ev.predicted.astype(np.int32))
    return [], {}


def class_report(confusion, class_names):
    """Precision, recall, F1 and support per class (0 where undefined), macro and weighted averages."""
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    rows = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)]
    n = int(support.sum())
    weights = support / n if n else np.zeros_like(tp)
    averages = {
        "macro_avg": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                      "f1": float(f1.mean()), "support": n},
        "weighted_avg": {"precision": float(precision @ weights), "recall": float(recall @ weights),
                         "f1": float(f1 @ weights), "support": n},
    }
    return rows, averages


def report_table(rows, averages):
    width = max(12, *(len(c["class"]) for c in rows))
    lines = [f"{'class':<{width}}  precision  recall  f1-score  support"]
    for name, c in [(c["class"], c) for c in rows] + [("", None)] + \
            [(k.replace("_avg", " avg"), v) for k, v in averages.items()]:
        lines.append(f"{name:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}  {c['f1']:8.4f}  {c['support']:7d}"
                     if c else "")
    return "\n".join(lines)


def report_csv(rows, averages):
    lines = ["class,precision,recall,f1,support"]
    for name, c in [(c["class"], c) for c in rows] + [(k, v) for k, v in averages.items()]:
        lines.append(f"{name},{c['precision']:.6f},{c['recall']:.6f},{c['f1']:.6f},{c['support']}")
    return "\n".join(lines) + "\n"


def plot_confusion(confusion, class_names, path, title):
    """Counts in every cell; colour by the fraction of the true class (row), so the mistakes show."""
    k = len(class_names)
    rows = confusion.sum(axis=1, keepdims=True)
    fraction = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    fig = Figure(figsize=(9.5, 8.5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    size = 11 if confusion.max() < 1000 else 9
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=size,
                    color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    save(fig, path)


def plot_mistakes(x, y, predicted, probs, class_names, path, title):
    """The misclassified images the model was most sure of, with true and predicted labels."""
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:GRID_ROWS * GRID_COLS]
    cols = GRID_COLS
    rows = max(1, -(-len(wrong) // cols))
    fig = Figure(figsize=(2 * cols, 2.35 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(x[i], interpolation="nearest")
        ax.set_title(f"true: {class_names[y[i]]}\npred: {class_names[predicted[i]]} "
                     f"({probs[i, predicted[i]]:.0%})", fontsize=9)
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(f"{title} ({len(wrong)} of {int(np.sum(predicted != y)):,} misclassified)")
    save(fig, path)
