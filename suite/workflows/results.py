"""The suite's measured records in ``results/``: recording a finished run (with its seeds),
shipping its weights, and the table in ``results/README.md``; ``run(args)`` takes
``suite/commands/results.py``'s arguments.
"""

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from suite.config import load_config
from suite.core.atomic import atomic_path, make_folders, write_json, write_text
from suite.core.errors import UserError
from suite.core.quiet import import_keras
from suite.data.cifar10 import load_cifar10
from suite.weights.sidecar import read_sidecar, sidecar_path

STUDIES = "studies"  # results/studies/<name>/: records beside the table, each with its NOTE.md
RECORD_FILES = ("config.yaml", "history.json", "metrics.json", "curves.png")
OPTIONAL_FILES = ("provenance.json",)  # runs from before the suite wrote it have none
MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
FULL_TRAIN, FULL_TEST = 50_000, 10_000
FIRST_TEST = 1000  # the test images CI checks each shipped weights file on (tests/test_shipped_weights.py)


def run(args):
    results = Path(args.results)
    if args.command == "record":
        run_dir = Path(args.run)
        metrics = finished_run(run_dir)
        folder = record_folder(results / metrics["name"], run_dir)
        targets = [folder] + ([Path(args.weights_dir) / f"{metrics['model']}.weights.h5"] if args.weights else [])
        taken = [t for t in targets if t.exists()]
        if taken and not args.replace:  # checked before anything is written
            raise UserError(f"{taken[0]}: exists; give --replace to overwrite it")
        weights = ship_weights(run_dir, metrics, Path(args.weights_dir)) if args.weights else None
        copy_record(run_dir, folder)
        print(f"recorded {run_dir} as {folder}" + (f"; weights {weights}" if weights else ""))
    if args.command == "shipped":
        if args.limit is not None and args.limit < 1:
            raise UserError(f"--limit must be >= 1, got {args.limit}")
        measure_shipped(results, args.names, args.limit, args.severities)
    path = write_readme(results)
    print(path)
    return 0


# ----------------------------------------------------------------------------- record
def finished_run(run_dir):
    """The run's metrics.json, if it is a completed run on the full CIFAR-10; else UserError."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    missing = [f for f in RECORD_FILES if not (run_dir / f).is_file()]
    if missing:
        raise UserError(f"{run_dir}: not a finished run folder (no {', '.join(missing)})")
    metrics = read_json(run_dir / "metrics.json")
    if metrics.get("status") != "completed":
        raise UserError(f"{run_dir}: the run is {metrics.get('status')!r}, not completed; resume it first")
    if metrics.get("is_sample") or metrics.get("train_images") != FULL_TRAIN or metrics.get("test_images") != FULL_TEST:
        raise UserError(f"{run_dir}: trained on {metrics.get('train_images')} images and tested on "
                        f"{metrics.get('test_images')}; a record is a run on the full CIFAR-10 "
                        f"({FULL_TRAIN:,} and {FULL_TEST:,})")
    return metrics


def record_folder(headline, run_dir):
    """Where the run's record goes: ``results/<name>/``, or ``results/<name>/seed<N>/`` when
    that holds a record of the same config with another seed (``rows`` then reports the
    mean and spread of all of them)."""
    if not (headline / "config.yaml").is_file():
        return headline
    config, seed = config_without_seed(run_dir)
    headline_config, headline_seed = config_without_seed(headline)
    return headline / f"seed{seed}" if config == headline_config and seed != headline_seed else headline


def config_without_seed(folder):
    """``(config, seed)`` of a run or record folder: its config.yaml as ``load_config``
    resolves it (every setting, defaults filled in, so that a record written before a setting
    existed compares equal), less what does not change what is trained (the name,
    ``training.seed``, ``training.verbose``, ``output``), with ``runtime.precision: auto``
    replaced by the precision it resolved to (``metrics.json``); and the seed."""
    path = folder / "config.yaml"
    try:
        config = load_config(path)
    except UserError as e:
        raise UserError(f"{path}: not a run's config ({e})") from None
    config.pop("name", None)
    config.pop("output", None)
    config.pop("base", None)
    training = config["training"]
    training.pop("verbose", None)
    if config["runtime"]["precision"] == "auto" and (folder / "metrics.json").is_file():
        config["runtime"]["precision"] = read_json(folder / "metrics.json").get("precision", "auto")
    return config, training.pop("seed", None)


def seed_records(folder):
    """The record in ``folder`` and those of the same config with other seeds in its
    ``seed<N>/`` subfolders (a subfolder of another config, such as a variant kept for
    comparison, is not one of them)."""
    config, _ = config_without_seed(folder)
    others = [sub for sub in sorted(folder.glob("seed*")) if (sub / "metrics.json").is_file()
              and (sub / "config.yaml").is_file() and config_without_seed(sub)[0] == config]
    return [folder] + others


def copy_record(run_dir, folder):
    make_folders(folder)
    for name in RECORD_FILES + tuple(f for f in OPTIONAL_FILES if (run_dir / f).is_file()):
        with atomic_path(folder / name) as tmp:
            shutil.copyfile(run_dir / name, tmp)


def ship_weights(run_dir, metrics, weights_dir):
    """``final.weights.h5`` as ``<weights_dir>/<model>.weights.h5``, its sidecar completed
    with the run's final test figures and ``first_test_accuracy``; returns the new path."""
    source = run_dir / "final.weights.h5"
    if not source.is_file():
        raise UserError(f"{run_dir}: no final.weights.h5 to ship")
    size = source.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise UserError(f"{source}: {size / 2**20:.1f} MB; weights that ship are at most {MAX_WEIGHTS_BYTES // 2**20} MB")
    target = weights_dir / f"{metrics['model']}.weights.h5"
    sidecar = read_sidecar(source)
    if (sidecar.get("preprocessing") or {}).get("normalize") == "zca":
        whitening = run_dir / sidecar["preprocessing"]["zca"]["file"]
        raise UserError(f"{run_dir}: ZCA-whitened weights need their whitening file beside them "
                        f"({whitening.name}, {whitening.stat().st_size / 2**20:.1f} MB), over the "
                        f"{MAX_WEIGHTS_BYTES // 2**20} MB that ship; use them from the run folder")
    sidecar.update({
        "description": f"{metrics['model']} trained by this suite's train.py with the config "
                       f"{metrics['name']}; final weights after {metrics['epochs_run']} epochs",
        "config": f"configs/{metrics['name']}.yaml",
        "record": f"results/{metrics['name']}/",
        "epochs": metrics["epochs_run"],
        "test_accuracy": metrics["final_test_accuracy"],
        "test_loss": metrics["final_test_loss"],
        **({"test_accuracy_tta": metrics["final_test_accuracy_tta"], "tta": metrics["tta"]}
           if "final_test_accuracy_tta" in metrics else {}),
        "test_note": "the final epoch's figures on the 10,000 CIFAR-10 test images",
        f"test_accuracy_first_{FIRST_TEST}": first_test_accuracy(source, run_dir),
        "trained_on": {"device": metrics.get("device"), "backend": metrics.get("backend"),
                       "precision": metrics.get("precision")},
        "train_time_sec": metrics.get("train_time_sec"),
    })
    make_folders(weights_dir)
    with atomic_path(target, suffix=".weights.h5") as tmp:
        shutil.copyfile(source, tmp)
    write_json(sidecar_path(target), sidecar)
    return target


def first_test_accuracy(weights, run_dir):
    """The accuracy of ``weights`` (loaded as ``suite.models.create(..., pretrained=True)``
    loads them) on the first ``FIRST_TEST`` CIFAR-10 test images of the run's data: the
    figure CI checks the shipped file against."""
    import_keras()  # quietly, before the models load TensorFlow
    # lazy: TensorFlow, which recording a run without its weights never needs
    from suite.models.pretrained import load_wrapped
    from suite.models.registry import build  # lazy: as above

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    path = (config.get("data") or {}).get("path")
    data = load_cifar10(path if path and Path(path).exists() else None)  # else where this machine keeps it
    net, _ = load_wrapped(weights, build)
    probs = net.predict(data.x_test[:FIRST_TEST], batch_size=250, verbose=0)
    return float(np.mean(probs.argmax(axis=1) == data.y_test[:FIRST_TEST]))


# ----------------------------------------------------------------------------- shipped weights
SHIPPED = "shipped"  # results/shipped/<name>/: evaluate.py's robustness and calibration report of weights/<name>
SHIPPED_FILES = ("metrics.json", "report.txt", "corruptions.png", "reliability.png")


def measure_shipped(results, names, limit=None, severities="1-5"):
    """``evaluate.py --pretrained NAME --calibrate --corruptions all`` for each shipped name,
    each in its own process (what a user would run), its report kept as
    ``results/shipped/<name>/``; an existing one is replaced only once the new one is whole."""
    # lazy: TensorFlow, which listing the records never needs
    from suite.models.pretrained import list_pretrained
    known = list_pretrained()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"no shipped weights named {unknown[0]!r}; they are: {', '.join(known)}")
    for name in names or known:
        with tempfile.TemporaryDirectory() as scratch:
            command = [sys.executable, "-m", "suite.commands.evaluate", "--pretrained", name, "--calibrate",
                       "--corruptions", "all", "--severities", severities, "--out-dir", ".",
                       *(["--limit", str(limit)] if limit else [])]
            print(f"== {name}: {' '.join(command[1:])}", flush=True)
            if subprocess.run(command, cwd=scratch).returncode != 0:  # the record names no folder of this machine
                raise UserError(f"evaluating the shipped {name} failed (its error is above)")
            report = next(Path(scratch).iterdir())
            folder = results / SHIPPED / name
            make_folders(folder)
            for file in SHIPPED_FILES:
                with atomic_path(folder / file) as tmp:
                    shutil.copyfile(report / file, tmp)


def shipped_rows(results):
    """One dict per ``results/shipped/<name>/metrics.json``."""
    out = []
    for path in sorted((results / SHIPPED).glob("*/metrics.json")):
        m = read_json(path)
        cal, corr = m.get("calibration") or {}, m.get("corruptions") or {}
        after = cal.get("after_temperature") or {}
        out.append({"name": path.parent.name, "images": m.get("images"), "accuracy": m.get("accuracy"),
                    "corruption_accuracy": corr.get("mean_corruption_accuracy"),
                    "relative": corr.get("relative_to_clean"), "severities": corr.get("severities"),
                    "ece": cal.get("ece"), "ece_after": after.get("ece"), "temperature": cal.get("temperature"),
                    "machine": (m.get("provenance") or {}).get("cpu", "?")})
    return out


def shipped_table(results):
    """The README's section on the shipped weights' robustness and calibration ([] if none is measured)."""
    measured = shipped_rows(results)
    if not measured:
        return []
    lines = [
        "## Shipped weights: robustness and calibration", "",
        "Every file in `weights/`, measured by `python results.py shipped` (which runs `python evaluate.py "
        "--pretrained <name> --calibrate --corruptions all` for each; reports in [shipped/](shipped/)). "
        "\"corrupted\" is the mean accuracy over the 15 CIFAR-10-C-style corruptions at severities 1-5, made "
        "locally ([docs/robustness.md](../docs/robustness.md)); \"error ratio\" is the corruption error over the "
        "clean error. ECE is the expected calibration error with 15 bins; \"after T\" after temperature scaling "
        "fitted on 5,000 training images the network trained on (none of these weights held any out), which "
        "makes T too low and can raise the ECE ([docs/evaluating.md](../docs/evaluating.md#calibration)).", "",
        "| weights | test images | clean accuracy (%) | corrupted (%) | error ratio | ECE (%) | ECE after T (%) | T |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in measured:
        ratio = "-" if r["relative"] is None else f"{r['relative']:.2f}"
        t = "-" if r["temperature"] is None else f"{r['temperature']:.3f}"
        lines.append(f"| `{r['name']}` | {r['images']:,} | {percent(r['accuracy'])} | {percent(r['corruption_accuracy'])} "
                     f"| {ratio} | {percent(r['ece'])} | {percent(r['ece_after'])} | {t} |")
    machines = sorted({r["machine"] for r in measured})
    lines += ["", f"Measured on: {'; '.join(machines)}.", "",
              "Anchors (standard training, no robustness method): CIFAR-10-C mean corruption error of "
              "AllConvNet 30.8%, DenseNet 30.7%, WideResNet 26.9%, ResNeXt 27.5% (Hendrycks et al., AugMix, "
              "arXiv:1912.02781, Table 1, *recalled*: not confirmed against the paper's text; measured on the real "
              "CIFAR-10-C, so compare with care); ECE with 15 bins of ResNet-110 on CIFAR-10, 4.6% before and 0.83% "
              "after temperature scaling fitted on 5,000 held-out training images (Guo et al. 2017, "
              "arXiv:1706.04599, Table 1).", ""]
    return lines


# ----------------------------------------------------------------------------- readme
def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not readable JSON ({e})") from None


def published(results):
    path = results / "published.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: YAML syntax error ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config names")
    for name, entry in data.items():
        if not (isinstance(entry, dict) and (entry.get("accuracy") is None or isinstance(entry["accuracy"], float))
                and isinstance(entry.get("with_tta", False), bool)):
            raise UserError(f"{path}: {name}: expected a mapping with accuracy (a fraction, or null), source, "
                            f"and optionally with_tta (true or false)")
    return data


def rows(results):
    """One dict per record folder, sorted by config name."""
    if not results.is_dir():
        raise UserError(f"{results}: no such folder of records")
    sources = published(results)
    out = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir() and (p / "metrics.json").is_file()
                         and p.name != SHIPPED):
        runs = [read_json(f / "metrics.json") for f in seed_records(folder)]
        m = runs[0]
        ref = sources.get(folder.name) or {}
        final, final_sd, n = mean_and_sd([r.get("final_test_accuracy") for r in runs])
        tta, tta_sd, n_tta = mean_and_sd([r.get("final_test_accuracy_tta") for r in runs])
        paper = ref.get("accuracy")
        compared = tta if ref.get("with_tta") else final  # the source's figure is with test-time augmentation
        out.append({
            "config": folder.name, "model": m.get("model"), "epochs": m.get("epochs_run"),
            "final": final, "sd": final_sd, "n": n, "tta": tta, "tta_sd": tta_sd, "n_tta": n_tta,
            "paper": paper, "recalled": bool(ref.get("recalled")),
            "source": ref.get("source", ""),
            "difference": None if compared is None or paper is None else compared - paper,
            "hours": statistics.mean((r.get("train_time_sec") or 0) for r in runs) / 3600,
            "machine": f"{m.get('device', '?')}, {m.get('backend', '?')}, {m.get('precision', '?')}",
        })
    return out


def mean_and_sd(values):
    """``(mean, sample standard deviation, how many)`` of the numbers among ``values``; None
    for what there are too few of."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None, None, 0
    return statistics.mean(numbers), statistics.stdev(numbers) if len(numbers) > 1 else None, len(numbers)


def accuracy_cell(mean, sd, n):
    """``94.01 ± 0.12 (n=3)`` for several seeds, else the one figure."""
    return percent(mean) + (f" ± {100 * sd:.2f} (n={n})" if sd is not None else "")


def percent(value, signed=False):
    return "-" if value is None else f"{100 * value:{'+' if signed else ''}.2f}"


def study_title(note):
    """The first heading of a study's NOTE.md."""
    heading = next((l for l in note.read_text().splitlines() if l.startswith("#")), note.parent.name)
    return heading.lstrip("#").strip()


def write_readme(results):
    lines = [
        "# Measured results",
        "",
        "Every row is a complete run of `train.py` on the full CIFAR-10 (50,000 training and 10,000 test",
        "images) with the config of its name, recorded by `python results.py record <run folder>`; this file",
        "is rewritten by `python results.py readme` from the folders beside it. The accuracy is the",
        "**final epoch's** test accuracy (the best epoch is chosen on the test set, which inflates it);",
        "where a config was trained with several seeds (`seed<N>/` beside its record), the mean ± the",
        "sample standard deviation over n runs, and the training time is the mean per run. \"with TTA\"",
        "is the same with test-time augmentation (`training.tta`); a published figure measured with it",
        "(`with_tta` in [published.yaml](published.yaml), where the sources are) is compared with that.",
        "",
        "| model | config | epochs | final test accuracy (%) | with TTA (%) | published (%) | difference (points) "
        "| training time (h) | machine |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    records = rows(results)
    for r in records:
        paper = percent(r["paper"]) + (" (recalled)" if r["recalled"] and r["paper"] is not None else "")
        lines.append(f"| `{r['model']}` | [{r['config']}]({r['config']}/) | {r['epochs']} "
                     f"| {accuracy_cell(r['final'], r['sd'], r['n'])} | {accuracy_cell(r['tta'], r['tta_sd'], r['n_tta'])} "
                     f"| {paper} | {percent(r['difference'], signed=True)} | {r['hours']:.2f} | {r['machine']} |")
    lines += ["", "Sources of the published figures:", ""]
    lines += [f"- `{r['config']}`: {r['source'] or 'none recorded'}" for r in records]
    notes = [(r["config"], results / r["config"] / "NOTE.md") for r in records]
    notes = [(name, path.read_text().strip()) for name, path in notes if path.is_file()]
    if notes:
        lines += ["", "## Notes", ""]
        for name, text in notes:
            lines += [f"**{name}** ([NOTE.md]({name}/NOTE.md)): {text}", ""]
    lines += shipped_table(results)
    studies = sorted(results.glob(f"{STUDIES}/*/NOTE.md"))
    if studies:
        lines += ["## Studies", "",
                  f"Measured records that are not one config's full run (ablations, fine-tuning, precision),"
                  f" in `{STUDIES}/`, each with the NOTE.md that says how it was measured:", ""]
        lines += [f"- [{note.parent.name}]({note.parent.relative_to(results).as_posix()}/NOTE.md): {study_title(note)}"
                  for note in studies]
        lines.append("")
    path = results / "README.md"
    make_folders(results)
    write_text(path, "\n".join(lines) + "\n")
    return path
