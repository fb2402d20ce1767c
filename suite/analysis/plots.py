"""Learning-curve figures: one run's curves (the training monitor) and several runs overlaid.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no
display needed) and saved atomically.
"""

import math
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator

from suite.core.atomic import atomic_path
from suite.core.rules import is_finite_number

PANELS = (("loss", "Loss"), ("accuracy", "Accuracy"), ("learning_rate", "Learning rate"))


def _panel(ax, key, title):
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs are whole numbers, even for one epoch
    if key == "learning_rate":
        ax.set_yscale("log")
        # label some minor ticks too (2x, 3x, 5x 10^n) while the rates span less than 2 decades,
        # so that a step decay's rates can be read off the axis
        ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def plot_run(history, path, title):
    """Loss, accuracy (train and validation) and learning rate of one run, by epoch.

    The training monitor redraws this every epoch, so its margins are fixed, wide enough
    for the tick labels these axes get: matplotlib's constrained layout, which measures
    every label first, took half of each draw.
    """
    fig = Figure(figsize=(15, 4.4))
    fig.subplots_adjust(left=0.055, right=0.915, bottom=0.12, top=0.85, wspace=0.28)
    axes = fig.subplots(1, 3)
    epochs = history.get("epoch", [])
    for ax, (key, label) in zip(axes, PANELS):
        _panel(ax, key, label)
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            values = history.get(name)
            if key == "learning_rate" and values:  # a log axis cannot show the 0 that a warmup starts from
                values = [v if v and v > 0 else None for v in values]
            if values and any(v is not None for v in values):
                ax.plot(epochs, values, style, marker="o" if len(epochs) < 30 else None, ms=3,
                        label="validation" if name.startswith("val_") else ("training" if key != "learning_rate" else "lr"))
    handles, labels = axes[0].get_legend_handles_labels() if epochs else ([], [])
    if handles:  # one legend for both panels, beside them, where it covers no curve
        fig.legend(handles, labels, loc="upper right", frameon=False)
    fig.suptitle(title)
    save(fig, path)


def series(history, key, positive=False):
    """``(epochs, values)`` of one history column, ready to plot.

    Epochs are sorted and each appears once (the last row for an epoch wins, so a history
    that repeats epochs after a resume still draws one line); a row whose epoch is not a
    whole number is left out; a missing, non-finite or (with ``positive``, for a log
    axis) non-positive value becomes NaN, which leaves a gap in the line instead of a
    made-up point.
    """
    by_epoch = {}
    for epoch, value in zip(history.get("epoch") or [], history.get(key) or []):
        if not (is_finite_number(epoch) and float(epoch).is_integer()):
            continue
        ok = is_finite_number(value) and (value > 0 or not positive)
        by_epoch[int(epoch)] = float(value) if ok else math.nan
    epochs = sorted(by_epoch)
    return epochs, [by_epoch[e] for e in epochs]


def run_colours(n):
    """``n`` distinguishable colours: tab10, then tab20, then evenly spaced hues."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](i / (n - 1)) for i in range(n)]


OVERLAY_PANELS = (("loss", "Loss"), ("accuracy", "Accuracy"), ("learning_rate", "Learning rate (log scale)"))


def plot_runs(histories, path=None, title="Learning curves"):
    """Several runs overlaid, one colour per run; return the Figure (saved to ``path`` if given).

    ``histories`` maps each run's label to its history (``history.json``'s dict of lists).
    Three panels - loss, accuracy (training solid, validation dashed) and the learning
    rate on a log axis - and a fourth that holds the legend, so it never covers a curve.
    Every plotted line has the gid ``"<label>:<column>"`` (e.g. ``"run-a:val_loss"``),
    so its data can be read back with ``line.get_xdata()`` / ``get_ydata()``.
    """
    n = len(histories)
    longest_label = max((len(str(label)) for label in histories), default=0)
    legend_cols = 1 if n <= 10 or longest_label > 36 else 2
    legend_rows = math.ceil(n / legend_cols)
    fig = Figure(figsize=(14, max(9.0, 5.0 + 0.25 * legend_rows)), layout="constrained")  # taller for long legends
    axes = fig.subplots(2, 2).ravel()
    colours = run_colours(n)
    longest = max((len(series(h, "loss")[0]) for h in histories.values()), default=0)
    marker = dict(marker="o", ms=3.5) if longest <= 40 else {}
    for ax, (key, panel_title) in zip(axes, OVERLAY_PANELS):
        _panel(ax, key, panel_title)
        positive = key == "learning_rate"
        for (label, history), colour in zip(histories.items(), colours):
            columns = (key,) if key == "learning_rate" else (key, f"val_{key}")
            for column in columns:
                epochs, values = series(history, column, positive)
                if not any(v == v for v in values):  # nothing but gaps: draw nothing
                    continue
                dots = marker or (dict(marker="o", ms=3.5) if len(epochs) == 1 else {})  # a lone point needs one
                ax.plot(epochs, values, "--" if column.startswith("val_") else "-", color=colour, lw=1.6,
                        gid=f"{label}:{column}", **dots)
        if not ax.has_data():
            if positive:
                ax.set_yscale("linear")  # a log axis with no data only warns
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, f"no {key.replace('_', ' ')} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
    legend_ax = axes[3]
    legend_ax.axis("off")
    run_handles = [Line2D([], [], color=c, lw=2.5, label=label) for label, c in zip(histories, colours)]
    style_handles = [Line2D([], [], color="0.3", ls="-", lw=1.6, label="training"),
                     Line2D([], [], color="0.3", ls="--", lw=1.6, label="validation")]
    style_legend = legend_ax.legend(handles=style_handles, title="line style (loss, accuracy)", loc="upper left",
                                    bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False, alignment="left")
    legend_ax.add_artist(style_legend)
    legend_ax.legend(handles=run_handles, title=f"runs ({n})", loc="upper left", bbox_to_anchor=(0.0, 0.84),
                     ncols=legend_cols, fontsize="medium" if n <= 10 else "small", frameon=False,
                     alignment="left")
    fig.suptitle(title, fontsize="x-large")
    if path is not None:
        save(fig, path)
    return fig


def save(fig, path, dpi=100):
    """Write ``fig`` atomically; the format follows the file's suffix (PNG by default)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
