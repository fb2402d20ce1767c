"""compare.py (curves and table) and TensorBoard logs, on short real runs.

Two MiniVGGNet runs on 20 real CIFAR-10 images per class with step decay every epoch:
factor 0.25 for 2 epochs, and factor 0.5 for 3 epochs, interrupted after epoch 2 and
resumed, so the runs differ in length and learning rate and one history was written by
two processes. Both log to TensorBoard.
"""

import csv
import io
import json
import math
import shutil
import struct
from pathlib import Path

import pytest

from suite.commands import compare
from conftest import train_run

LR0 = 0.01  # configs/quickstart.yaml


def _interrupt_at_epoch(stop_before):
    """A StopOnSignal.on_epoch_begin that acts as if Ctrl-C came before epoch ``stop_before`` (0-based)."""
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == stop_before:
            self.received = "SIGINT"
        self._check()
    return on_epoch_begin


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cifar_dir):
    """{label: run folder} of the two runs, both in one folder (``root``), as in outputs/."""
    from suite.commands import train
    from suite.callbacks import StopOnSignal

    root = tmp_path_factory.mktemp("outputs")
    common = ("data.source=cifar10", "data.subset=20", "data.test_subset=10", "schedule.name=step",
              "schedule.every=1", "callbacks.tensorboard=true")
    code, quarter = train_run(root, *common, "schedule.factor=0.25", "training.epochs=2", name="step0.25")
    assert code == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StopOnSignal, "on_epoch_begin", _interrupt_at_epoch(2))
        code, half = train_run(root, *common, "schedule.factor=0.5", "training.epochs=3", name="step0.5")
    assert code == 130  # interrupted after 2 complete epochs
    assert read(half, "history.json")["epoch"] == [1, 2]
    assert train.main(["--resume", str(half)]) == 0
    return {quarter.name: quarter, half.name: half}


def read(run_dir, name):
    return json.loads((Path(run_dir) / name).read_text())


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------- the runs themselves
def test_runs_differ_in_length_and_learning_rate(runs):
    (quarter, half) = runs.values()
    hq, hh = read(quarter, "history.json"), read(half, "history.json")
    assert hq["epoch"] == [1, 2] and hh["epoch"] == [1, 2, 3]  # the resumed history continues
    # step decay every epoch: lr0 * factor ** floor((1 + e) / 1) at 0-based epoch e
    assert hq["learning_rate"] == pytest.approx([LR0 * 0.25 ** e for e in (1, 2)], rel=1e-5)
    assert hh["learning_rate"] == pytest.approx([LR0 * 0.5 ** e for e in (1, 2, 3)], rel=1e-5)
    assert read(half, "metrics.json")["status"] == "completed"


# ----------------------------------------------------------------------------- curves
def lines_by_gid(fig):
    return {line.get_gid(): line for ax in fig.axes for line in ax.get_lines() if line.get_gid()}


def test_curves_figure_plots_each_runs_history(runs, tmp_path, monkeypatch, capsys):
    import suite.analysis.plots
    figures = []
    real = suite.analysis.plots.plot_runs
    monkeypatch.setattr(suite.analysis.plots, "plot_runs", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    root = next(iter(runs.values())).parent
    out = tmp_path / "figs" / "overlay.png"

    assert compare.main(["curves", str(root), "-o", str(out), "--title", "Step decay 0.25 vs 0.5"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert png_size(out) == (1400, 900) and out.stat().st_size > 20_000

    fig, = figures
    lines = lines_by_gid(fig)
    for label, run_dir in runs.items():  # labels are the folder names; the folder of runs was expanded
        history = read(run_dir, "history.json")
        for column in ("loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"):
            line = lines[f"{label}:{column}"]
            assert list(line.get_xdata()) == history["epoch"]
            assert list(line.get_ydata()) == pytest.approx(history[column])
    assert len(lines) == 2 * 5
    loss_ax, acc_ax, lr_ax, legend_ax = fig.axes
    assert [ax.get_title() for ax in (loss_ax, acc_ax, lr_ax)] == ["Loss", "Accuracy", "Learning rate (log scale)"]
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in (loss_ax, acc_ax, lr_ax))
    assert lr_ax.get_yscale() == "log"
    assert all(float(t).is_integer() for t in loss_ax.get_xticks())
    legend_texts = {t.get_text() for legend in [*legend_ax.artists, legend_ax.get_legend()]
                    for t in legend.get_texts()}
    assert set(runs) | {"training", "validation"} <= legend_texts
    assert not loss_ax.get_legend() and not acc_ax.get_legend() and not lr_ax.get_legend()  # no legend over curves
    assert fig.get_suptitle() == "Step decay 0.25 vs 0.5"


def test_curves_labels_and_default_output(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()  # a folder without history.json: skipped with a warning
    args = ["curves", *map(str, runs.values()), str(tmp_path / "notes"), "--labels", "factor 0.25", "factor 0.5"]
    assert compare.main(args) == 0
    out, err = capsys.readouterr()
    written = sorted((tmp_path / "outputs").glob("compare-*.png"))
    assert len(written) == 1 and out.strip() == str(Path("outputs") / written[0].name)
    assert png_size(written[0]) == (1400, 900)
    assert err.strip() == f"warning: skipping {tmp_path / 'notes'}: no history.json and no run folders in it"


def test_series_resumed_and_gappy_histories():
    from suite.analysis.plots import plot_runs, series

    # an epoch written twice (the last row wins), out of order, a missing and a NaN value
    history = {"epoch": [1, 2, 3, 2, 3, 4], "loss": [4.0, 3.0, 2.5, 2.9, 2.4, None],
               "learning_rate": [0.0, 0.1, 0.1, 0.1, 0.01, float("nan")]}
    assert series(history, "loss") == ([1, 2, 3, 4], [4.0, 2.9, 2.4, pytest.approx(math.nan, nan_ok=True)])
    epochs, lrs = series(history, "learning_rate", positive=True)  # a log axis skips the warmup's 0
    assert epochs == [1, 2, 3, 4] and math.isnan(lrs[0]) and lrs[1:3] == [0.1, 0.01] and math.isnan(lrs[3])
    fig = plot_runs({"a": history, "one epoch": {"epoch": [1], "loss": [2.0], "accuracy": [0.1]}})
    assert list(lines_by_gid(fig)["one epoch:loss"].get_xdata()) == [1]


# ----------------------------------------------------------------------------- table
def test_table_markdown_and_csv(runs, tmp_path, capsys):
    md, csv_path = tmp_path / "t" / "runs.md", tmp_path / "t" / "runs.csv"
    assert compare.main(["table", *map(str, runs.values()), "--md", str(md), "--csv", str(csv_path)]) == 0
    printed = capsys.readouterr().out
    assert printed == md.read_text()

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [r["run"] for r in rows] == list(runs)
    md_rows = [line for line in printed.splitlines()[2:] if line.startswith("| ")]
    assert len(md_rows) == 2
    for row, md_row, (label, run_dir) in zip(rows, md_rows, runs.items()):
        history, metrics = read(run_dir, "history.json"), read(run_dir, "metrics.json")
        n = len(history["epoch"])
        assert (row["model"], row["config"], row["status"]) == ("minivggnet", label.rsplit("-", 2)[0], "completed")
        assert int(row["epochs_run"]) == int(row["epochs_planned"]) == n
        assert float(row["best_val_accuracy"]) == pytest.approx(max(history["val_accuracy"]))
        assert float(row["final_val_accuracy"]) == pytest.approx(history["val_accuracy"][-1])
        assert float(row["final_test_accuracy"]) == pytest.approx(metrics["final_test_accuracy"])
        assert float(row["best_test_accuracy"]) == pytest.approx(metrics["best_test_accuracy"])
        assert int(row["parameters"]) == metrics["parameters"]
        assert float(row["train_time_sec"]) == pytest.approx(metrics["train_time_sec"])
        assert float(row["train_images_per_sec"]) == pytest.approx(metrics["train_images_per_sec"], abs=0.051)
        cells = [c.strip() for c in md_row.strip("|").split("|")]
        assert cells[0] == label and cells[3] == f"{n}/{n}"
        assert cells[4].startswith(f"{max(history['val_accuracy']):.4f} (")
        assert cells[6] == f"{metrics['final_test_accuracy']:.4f}" and cells[-1] == "completed"


def test_table_missing_values(runs, tmp_path, capsys):
    partial = tmp_path / "outputs" / "killed-run"  # a run killed before metrics.json was written
    partial.mkdir(parents=True)
    source = next(iter(runs.values()))
    for name in ("history.json", "config.yaml"):
        shutil.copy(source / name, partial / name)
    (tmp_path / "outputs" / "crashed").mkdir()
    (tmp_path / "outputs" / "crashed" / "config.yaml").write_text("name: crashed\n")
    csv_path = tmp_path / "runs.csv"

    assert compare.main(["table", str(tmp_path / "outputs"), "--csv", str(csv_path)]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == f"warning: skipping {tmp_path / 'outputs' / 'crashed'}: no history.json"
    cells = [c.strip() for c in out.splitlines()[2].strip("|").split("|")]
    assert cells[0] == "killed-run" and cells[3] == "2/2"  # epochs from history.json, planned from config.yaml
    assert cells[6:8] == ["-", "-"] and cells[8] == "-" and cells[-1] == "-"  # test accuracies, parameters, status
    row, = csv.DictReader(io.StringIO(csv_path.read_text()))
    assert row["final_test_accuracy"] == row["parameters"] == row["status"] == ""
    assert float(row["train_time_sec"]) == pytest.approx(sum(read(source, "history.json")["epoch_time"]), abs=0.01)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["missing path", "no runs", "label count", "figure suffix", "file not folder"])
def test_bad_input_exits_2_with_one_line(case, runs, tmp_path, capsys):
    run_dir = str(next(iter(runs.values())))
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    argv = {"missing path": ["table", str(tmp_path / "nope")],
            "no runs": ["curves", str(tmp_path / "empty"), "-o", str(tmp_path / "c.png")],
            "label count": ["curves", run_dir, "--labels", "a", "b", "-o", str(tmp_path / "c.png")],
            "figure suffix": ["curves", run_dir, "-o", str(tmp_path / "c.jpg2")],
            "file not folder": ["table", str(tmp_path / "file.txt")]}[case]
    assert compare.main(argv) == 2
    one_error_line(capsys)
    assert not (tmp_path / "c.png").exists()


# ----------------------------------------------------------------------------- TensorBoard
def tensorboard_scalars(folder):
    """{tag: {step: value}} from every event file in ``folder`` (tensor-valued summaries, as TF 2 writes them)."""
    import tensorflow as tf

    scalars = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                scalars.setdefault(value.tag, {})[event.step] = number
    return scalars


def test_tensorboard_has_every_epochs_scalars_and_learning_rate(runs):
    for run_dir in runs.values():
        history = read(run_dir, "history.json")
        steps = [e - 1 for e in history["epoch"]]  # Keras logs epoch e (1-based) at step e - 1
        train = tensorboard_scalars(run_dir / "tensorboard" / "train")
        val = tensorboard_scalars(run_dir / "tensorboard" / "validation")
        for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
            assert sorted(train.get(tag, {})) == steps, (run_dir.name, tag, sorted(train))
        for tag in ("epoch_loss", "epoch_accuracy"):
            assert sorted(val.get(tag, {})) == steps, (run_dir.name, tag, sorted(val))
        # the same numbers as history.json, the resumed epochs included
        assert [train["epoch_loss"][s] for s in steps] == pytest.approx(history["loss"], rel=1e-5)
        assert [val["epoch_accuracy"][s] for s in steps] == pytest.approx(history["val_accuracy"], rel=1e-5)
        assert all(v > 0 for v in train["epoch_learning_rate"].values())


def test_tensorboard_learning_rate_matches_history(runs):
    for run_dir in runs.values():
        history = read(run_dir, "history.json")
        logged = tensorboard_scalars(run_dir / "tensorboard" / "train")["epoch_learning_rate"]
        assert [logged[e - 1] for e in history["epoch"]] == pytest.approx(history["learning_rate"], rel=1e-5)


# ----------------------------------------------------------------------------- broken histories
def test_table_skips_runs_with_a_broken_history(runs, tmp_path, capsys):
    good = next(iter(runs.values()))
    broken = {"truncated": '{"epoch": [1, 2], "loss": [2.3', "not a dict of lists": "[1, 2]", "no epochs": "{}",
              "null losses": '{"epoch": [1], "loss": [null]}',
              "text values": '{"epoch": [1], "loss": ["2.3"], "val_accuracy": ["0.5"]}',
              "text epochs": '{"epoch": ["a"], "loss": [2.3]}', "infinite epoch": '{"epoch": [1e400], "loss": [2.3]}',
              "nested epoch": '{"epoch": [[1]], "loss": [2.3]}'}
    for name, text in broken.items():
        folder = tmp_path / "outputs" / name
        shutil.copytree(good, folder)
        (folder / "history.json").write_text(text)

    assert compare.main(["table", str(good), str(tmp_path / "outputs")]) == 0
    out, err = capsys.readouterr()
    rows = [line for line in out.splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == 1 and rows[0].startswith(f"| {good.name} |")  # no row of dashes for the broken ones
    warnings = err.strip().splitlines()
    assert len(warnings) == len(broken) and all(w.startswith("warning: ") for w in warnings)
    assert all(any(str(tmp_path / "outputs" / name) in w for w in warnings) for name in broken)

    assert compare.main(["table", str(tmp_path / "outputs"), "--md", str(tmp_path / "runs.md")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not (tmp_path / "runs.md").exists()
    assert err.strip().splitlines()[-1] == ("error: none of the runs has a readable history.json "
                                            "with a finished epoch to list")


def test_table_ignores_metrics_that_are_not_numbers(runs, tmp_path, capsys):
    good = next(iter(runs.values()))
    folder = tmp_path / "odd"
    shutil.copytree(good, folder)
    metrics = read(folder, "metrics.json")
    metrics.update(parameters="x", train_time_sec=[1], final_test_accuracy="0.5")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    assert compare.main(["table", str(folder)]) == 0
    out, err = capsys.readouterr()
    [row] = [line for line in out.splitlines()[2:] if line.startswith("| ")]
    assert row.startswith("| odd |")
    assert err.strip() == (f"warning: {folder}/metrics.json: ignoring final_test_accuracy, parameters, "
                           "train_time_sec: not a number")
