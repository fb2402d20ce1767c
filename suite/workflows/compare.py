"""Comparing run folders: their learning curves in one figure, and a summary table;
``run(args)`` takes ``suite/commands/compare.py``'s arguments.
"""

import csv
import io
import json
import math
import statistics
import sys
from pathlib import Path

from suite.core.atomic import write_text
from suite.core.errors import UserError
from suite.core.folders import new_file_name
from suite.core.rules import is_finite_number

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def run(args):
    runs = find_runs(args.runs)
    labels = run_labels(runs, args.labels)
    if args.command == "curves":
        return curves(runs, labels, args.output, args.title)
    return table(runs, labels, args.md, args.csv)


# ----------------------------------------------------------------------------- finding runs
def warn(message):
    print(f"warning: {message}", file=sys.stderr)


def find_runs(paths):
    """The run folders that ``paths`` name, in order, each once; folders of runs are expanded.

    Folders without history.json are skipped with a warning line each; when nothing is
    left, one error says so instead.
    """
    runs, seen, skipped = [], set(), []

    def add(folder):
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            runs.append(folder)

    for arg in paths:
        path = Path(arg)
        if path.is_file() and path.name == "history.json":
            path = path.parent
        if not path.exists():
            raise UserError(f"{arg}: no such file or folder")
        if not path.is_dir():
            raise UserError(f"{arg}: not a folder (give a run folder or a folder of run folders)")
        if (path / "history.json").is_file():
            add(path)
            continue
        if (path / "config.yaml").is_file():  # a run folder that has not finished an epoch
            skipped.append(f"skipping {path}: no history.json (no epoch finished yet)")
            continue
        children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not children:
            skipped.append(f"skipping {path}: no history.json and no run folders in it")
            continue
        for child in children:
            if (child / "history.json").is_file():
                add(child)
            else:
                skipped.append(f"skipping {child}: no history.json")
    if not runs:
        why = f"; {len(skipped)} folder{'s' * (len(skipped) != 1)} without history.json" if skipped else ""
        raise UserError(f"no runs found in {', '.join(paths)} (a run folder holds history.json{why})")
    for message in skipped:
        warn(message)
    return runs


def run_labels(runs, labels=None):
    """``labels`` if given (one per run), else the folder names, with the parent's name
    added where two runs share a folder name."""
    if labels is not None:
        if len(labels) != len(runs):
            raise UserError(f"--labels: {len(labels)} labels for {len(runs)} runs "
                            f"({', '.join(str(r) for r in runs)})")
        if len(set(labels)) != len(labels):
            raise UserError("--labels: the labels must differ from each other")
        return list(labels)
    names = [r.name for r in runs]
    out = []
    for r in runs:
        out.append(r.name if names.count(r.name) == 1 else f"{r.resolve().parent.name}/{r.name}")
    for i, label in enumerate(out):  # still the same (e.g. a/x/run and b/x/run): number them
        if out.count(label) > 1:
            out[i] = f"{label} ({out[:i + 1].count(label)})"
    return out


def read_json(path):
    """The JSON in ``path``, or None (with a warning if it exists but cannot be read)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        warn(f"ignoring {path}: {e}")
        return None


def read_config(path):
    path = Path(path)
    if not path.is_file():
        return None
    import yaml
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        warn(f"ignoring {path}: {str(e).splitlines()[0]}")
        return None
    return cfg if isinstance(cfg, dict) else None


def read_history(run_dir):
    history = read_json(Path(run_dir) / "history.json")
    if history is not None and not (isinstance(history, dict) and all(isinstance(v, list) for v in history.values())):
        warn(f"ignoring {run_dir}/history.json: not a dict of lists")
        return None
    return history


def readable_histories(runs, labels, purpose):
    """``{label: history}`` of the runs whose history.json holds an epoch with a numeric loss.

    The others (a broken or empty history.json) are skipped with a warning each; when
    none is left, one error says so (exit status 2).
    """
    from suite.analysis.plots import series  # lazy: keeps matplotlib unloaded for a table

    def has_a_loss(history, key):
        return any(v == v for v in series(history, key)[1])  # NaN marks a missing or unusable value

    histories = {}
    for run_dir, label in zip(runs, labels):
        history = read_history(run_dir)  # None (with a warning) when broken
        if history is not None and not (has_a_loss(history, "loss") or has_a_loss(history, "val_loss")):
            warn(f"skipping {run_dir}: history.json has no epoch with a numeric loss")
        elif history is not None:
            histories[label] = history
    if not histories:
        raise UserError(f"none of the runs has a readable history.json with a finished epoch {purpose}")
    return histories


# ----------------------------------------------------------------------------- curves
def curves(runs, labels, output, title):
    from suite.analysis.plots import plot_runs  # lazy: keeps matplotlib unloaded for a table

    histories = readable_histories(runs, labels, "to plot")
    path = figure_path(output)
    plot_runs(histories, path, title or f"Learning curves of {len(histories)} run{'s' * (len(histories) != 1)}")
    print(path)
    return 0


def figure_path(output):
    if output:
        path = Path(output)
        if path.suffix.lower() not in FIGURE_FORMATS:
            raise UserError(f"-o {output}: the figure file must end in {', '.join(FIGURE_FORMATS)}")
        if path.is_dir():
            raise UserError(f"-o {output}: is a folder; give a file name")
    else:
        return new_file_name("outputs", "compare", ".png")
    make_parent(path)
    return path


def make_parent(path):
    """The folder ``path`` goes into, made if missing; one error line if it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path.parent}: cannot create the folder ({e.strerror})") from None


# ----------------------------------------------------------------------------- table
# (key, Markdown header, Markdown alignment); the CSV has the keys as its header.
COLUMNS = (
    ("run", "run", "left"),
    ("model", "model", "left"),
    ("config", "config", "left"),
    ("epochs_run", "epochs", "right"),          # Markdown: "run/planned"
    ("epochs_planned", None, None),
    ("best_val_accuracy", "best val acc (epoch)", "right"),
    ("best_val_epoch", None, None),
    ("final_val_accuracy", "final val acc", "right"),
    ("final_test_accuracy", "final test acc", "right"),
    ("best_test_accuracy", "best-ckpt test acc", "right"),
    ("parameters", "params", "right"),
    ("train_time_sec", "train time", "right"),
    ("train_images_per_sec", "images/s", "right"),
    ("status", "status", "left"),
)


def summarise(run_dir, label, history):
    """One table row of raw values (None where the run folder does not have them)."""
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / "metrics.json")
    metrics = numeric_fields_checked(metrics, run_dir) if isinstance(metrics, dict) else {}
    cfg = read_config(run_dir / "config.yaml") or {}
    from suite.analysis.plots import series  # lazy: keeps matplotlib unloaded for a table

    def cfg_get(section, key):
        value = cfg.get(section)
        return value.get(key) if isinstance(value, dict) else None

    epochs_v, val_acc = series(history, "val_accuracy")
    finite = [(v, e) for e, v in zip(epochs_v, val_acc) if v == v]
    best_val = max(finite, key=lambda ve: ve[0]) if finite else (None, None)
    _, speeds = series(history, "train_images_per_sec")
    speeds = [s for s in speeds if s == s]
    _, times = series(history, "epoch_time")
    times = [t for t in times if t == t]
    epochs_run = metrics.get("epochs_run")
    if epochs_run is None and history:
        epochs_run = len(series(history, "loss")[0]) or len(series(history, "val_loss")[0])
    return {
        "run": label,
        "model": metrics.get("model") or (cfg_get("model", "name")),
        "config": cfg.get("name") or metrics.get("name"),
        "epochs_run": epochs_run,
        "epochs_planned": metrics.get("epochs_planned") or cfg_get("training", "epochs"),
        "best_val_accuracy": best_val[0],
        "best_val_epoch": best_val[1],
        "final_val_accuracy": finite[-1][0] if finite else None,
        "final_test_accuracy": metrics.get("final_test_accuracy"),
        "best_test_accuracy": metrics.get("best_test_accuracy"),
        "parameters": metrics.get("parameters"),
        # train.py's train_time_sec is the sum of the epochs' times; a run killed before
        # writing metrics.json still has them in its history
        "train_time_sec": metrics.get("train_time_sec") if metrics.get("train_time_sec") is not None
        else (round(sum(times), 2) if times else None),
        "train_images_per_sec": round(statistics.median(speeds), 1) if speeds else metrics.get("train_images_per_sec"),
        "status": metrics.get("status"),
    }


METRICS_NUMBERS = ("epochs_run", "epochs_planned", "final_test_accuracy", "best_test_accuracy", "parameters",
                   "train_time_sec", "train_images_per_sec")


def numeric_fields_checked(metrics, run_dir):
    """``metrics`` without the fields that should be numbers and are not (with a warning)."""
    bad = [k for k in METRICS_NUMBERS if metrics.get(k) is not None and not is_finite_number(metrics[k])]
    if bad:
        warn(f"{run_dir}/metrics.json: ignoring {', '.join(bad)}: not a number")
    return {k: v for k, v in metrics.items() if k not in bad}


def _missing(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def format_duration(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def markdown_cells(row):
    def acc(v):
        return "-" if _missing(v) else f"{v:.4f}"

    epochs = "-" if _missing(row["epochs_run"]) else str(row["epochs_run"])
    if not _missing(row["epochs_planned"]):
        epochs += f"/{row['epochs_planned']}"
    best_val = acc(row["best_val_accuracy"])
    if not _missing(row["best_val_epoch"]):
        best_val += f" ({row['best_val_epoch']})"
    cells = {
        "run": row["run"], "model": row["model"], "config": row["config"], "epochs_run": epochs,
        "best_val_accuracy": best_val, "final_val_accuracy": acc(row["final_val_accuracy"]),
        "final_test_accuracy": acc(row["final_test_accuracy"]), "best_test_accuracy": acc(row["best_test_accuracy"]),
        "parameters": None if _missing(row["parameters"]) else f"{row['parameters']:,}",
        "train_time_sec": None if _missing(row["train_time_sec"]) else format_duration(row["train_time_sec"]),
        "train_images_per_sec": None if _missing(row["train_images_per_sec"]) else f"{row['train_images_per_sec']:,.0f}",
        "status": row["status"],
    }
    return {k: "-" if _missing(v) or v == "" else str(v).replace("|", "\\|").replace("\n", " ")
            for k, v in cells.items()}


def to_markdown(rows):
    shown = [(key, header, align) for key, header, align in COLUMNS if header]
    lines = ["| " + " | ".join(h for _, h, _ in shown) + " |",
             "| " + " | ".join("---:" if a == "right" else "---" for _, _, a in shown) + " |"]
    for row in rows:
        cells = markdown_cells(row)
        lines.append("| " + " | ".join(cells[key] for key, _, _ in shown) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _, _ in COLUMNS])
    for row in rows:
        writer.writerow(["" if _missing(row[key]) else row[key] for key, _, _ in COLUMNS])
    return buffer.getvalue()


def table(runs, labels, md_path, csv_path):
    histories = readable_histories(runs, labels, "to list")
    rows = [summarise(run_dir, label, histories[label]) for run_dir, label in zip(runs, labels) if label in histories]
    markdown = to_markdown(rows)
    for path, text in ((md_path, markdown), (csv_path, to_csv(rows) if csv_path else None)):
        if not path:
            continue
        path = Path(path)
        if path.is_dir():
            raise UserError(f"{path}: is a folder; give a file name")
        make_parent(path)
        write_text(path, text)  # a failure to write: suite.core.errors.WriteError, exit status 1
    print(markdown, end="")
    return 0
