"""train.py --sweep on real data: one run per combination, named by its values, compared at
the end; a stopped sweep resumes where it stopped; a bad value fails before any training."""

import json
import shutil

import yaml

from suite.commands import train
from conftest import REPO

TINY = ["model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=10", "data.test_subset=5",
        "training.epochs=2", "training.verbose=0"]
SWEEPS = ["model.params.activation=relu,elu", "training.batch_size=32,64"]


def sweep_main(out, *args):
    sets = [a for s in [*TINY, f"output.dir={out}"] for a in ("--set", s)]
    return train.main(["--config", str(REPO / "configs/quickstart.yaml"), *sets, *args])


def test_a_sweep_runs_every_combination_and_resumes_what_was_stopped(tmp_path, capsys, cifar_dir):
    # --stop-after 1 stops the first run, and with it the sweep, after its first epoch.
    assert sweep_main(tmp_path, *[a for s in SWEEPS for a in ("--sweep", s)], "--stop-after", "1") == 0
    folder, = tmp_path.glob("quickstart-sweep-*")
    plan = json.loads((folder / "sweep.json").read_text())
    names = [r["name"] for r in plan["runs"]]
    assert names == ["quickstart-activation=relu-batch_size=32", "quickstart-activation=relu-batch_size=64",
                     "quickstart-activation=elu-batch_size=32", "quickstart-activation=elu-batch_size=64"]
    assert [p.name.rsplit("-", 2)[0] for p in folder.iterdir() if p.is_dir()] == [names[0]]
    assert "continue it with: python train.py --resume" in capsys.readouterr().err

    assert train.main(["--resume", str(folder)]) == 0
    runs = {name: next(folder.glob(f"{name}-2*")) for name in names}
    first = json.loads((runs[names[0]] / "history.json").read_text())
    assert first["epoch"] == [1, 2]  # resumed after its first epoch, not started again
    for name, run_dir in runs.items():
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert f"activation={cfg['model']['params']['activation']}" in name
        assert f"batch_size={cfg['training']['batch_size']}" in name
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    table = (folder / "table.md").read_text()
    assert all(name in table for name in names) and (folder / "curves.png").stat().st_size > 10_000

    # A run that never started is started; the completed ones are not trained again.
    stamps = {n: (runs[n] / "metrics.json").stat().st_mtime_ns for n in names}
    shutil.rmtree(runs[names[3]])
    capsys.readouterr()
    assert train.main(["--resume", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"[1/4] {names[0]}: finished" in out and f"[4/4] {names[3]}\n" in out
    assert all((runs[n] / "metrics.json").stat().st_mtime_ns == stamps[n] for n in names[:3])
    assert json.loads((next(folder.glob(f"{names[3]}-2*")) / "metrics.json").read_text())["status"] == "completed"


def test_a_bad_value_fails_before_anything_is_written(tmp_path, capsys):
    code = sweep_main(tmp_path, "--sweep", "model.params.activation=relu,eluu")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "activation must be one of" in err[0] and "'eluu'" in err[0]
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_sweep_arguments_are_checked(tmp_path, capsys):
    assert sweep_main(tmp_path, "--sweep", "training.batch_size") == 2
    assert "expected KEY=VALUE,VALUE" in capsys.readouterr().err
    assert sweep_main(tmp_path, "--sweep", "training.batch_size=32,32") == 2
    assert "given twice" in capsys.readouterr().err
