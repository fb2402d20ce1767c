"""Learning-curve figures: one run's curves (the training monitor) and several runs overlaid.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no
display needed) and saved atomically.
"""

from matplotlib.figure import Figure

from suite.atomic import atomic_path

PANELS = (("loss", "Loss"), ("accuracy", "Accuracy"), ("learning_rate", "Learning rate"))


def _panel(ax, key, title):
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    if key == "learning_rate":
        ax.set_yscale("log")


def plot_run(history, path, title):
    """Loss, accuracy (train and validation) and learning rate of one run, by epoch."""
    fig = Figure(figsize=(15, 4.4), layout="constrained")
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
        if ax.has_data() and key != "learning_rate":
            ax.legend()
    fig.suptitle(title)
    save(fig, path)


def plot_runs(histories, path, title="Learning curves"):
    """Several runs overlaid: one colour per run, solid training and dashed validation."""
    fig = Figure(figsize=(16, 9), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    panels = (("loss", "Training loss (solid) and validation loss (dashed)"),
              ("accuracy", "Training accuracy (solid) and validation accuracy (dashed)"),
              ("learning_rate", "Learning rate"), (None, None))
    colours = [f"C{i % 10}" for i in range(len(histories))]
    for ax, (key, title_) in zip(axes, panels):
        if key is None:
            ax.axis("off")
            continue
        _panel(ax, key, title_)
        for (name, h), colour in zip(histories.items(), colours):
            ax.plot(h["epoch"], h.get(key, []), "-", color=colour, label=name)
            if key != "learning_rate" and h.get(f"val_{key}"):
                ax.plot(h["epoch"], h[f"val_{key}"], "--", color=colour)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[3].legend(handles, labels, loc="center", title="runs", fontsize="large", title_fontsize="large")
    fig.suptitle(title, fontsize="x-large")
    save(fig, path)


def save(fig, path, dpi=100):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
