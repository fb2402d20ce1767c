"""Classifying image files with trained weights: the top classes per image, a CSV, or the
Kaggle competition's submission; ``run(args)`` takes ``suite/commands/predict.py``'s arguments.
"""

import concurrent.futures
import sys
from pathlib import Path

import keras
import numpy as np

from suite import models
from suite.analysis.calibration import with_temperature
from suite.analysis.tta import predict_with_tta
from suite.core.atomic import write_text
from suite.core.errors import UserError
from suite.core.images import open_image
from suite.core.outcome import Outcome
from suite.models.pretrained import load_wrapped
from suite.weights.temperature import temperature_of
from suite.workflows.weight_source import weights_file

EXTENSIONS = (".png", ".jpg", ".jpeg")
CHUNK = 2048        # images decoded and classified at a time (bounds the memory for 300,000 images)
BATCH_SIZE = 250


def run(args):
    check_arguments(args)
    files = kaggle_files(Path(args.kaggle)) if args.kaggle else image_files(args.images)
    model, classes, temperature = load_model(args)
    top = min(args.top, len(classes))
    results, failed = classify(model, files, args.workers, strict=bool(args.kaggle), tta=args.tta)
    if temperature:
        results = [(path, with_temperature(probs[None], temperature)[0]) for path, probs in results]
    if args.kaggle:
        path = Path(args.output or "submission.csv")
        write_text(path, submission(files, results, classes))
        print(f"{path}: {len(files):,} predictions")
        return Outcome(0, file=path, results=results, classes=classes)
    for path, probs in results:
        order = np.argsort(-probs, kind="stable")[:top]
        print(f"{path}: " + ", ".join(f"{classes[i]} {probs[i]:.1%}" for i in order))
    if args.csv:
        write_text(args.csv, predictions_csv(results, classes, top))
    if failed:
        print(f"{failed} of {len(files)} images could not be read", file=sys.stderr)
    return Outcome(1 if failed else 0, results=results, classes=classes, failed=failed)


def check_arguments(args):
    if args.top < 1:
        raise UserError(f"--top must be >= 1, got {args.top}")
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.kaggle and args.images:
        raise UserError("--kaggle reads the competition's test folder; give no other images")
    if not args.kaggle and not args.images:
        raise UserError("give image files or folders to classify, or --kaggle DIR")
    if args.output and not args.kaggle:
        raise UserError("-o goes with --kaggle (use --csv for other images)")
    for flag, path in (("-o", args.output or ("submission.csv" if args.kaggle else None)), ("--csv", args.csv)):
        if path and (Path(path).is_dir() or not Path(path).absolute().parent.is_dir()):
            raise UserError(f"{flag} {path}: not a file in an existing folder")


def image_files(arguments):
    """The files the arguments name, in order; a folder stands for its image files, sorted."""
    files = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
            if not found:
                raise UserError(f"{path}: no {'/'.join(EXTENSIONS)} files in this folder")
            files += found
        else:
            files.append(path)  # a missing or odd file is reported when it is read
    return files


def kaggle_files(folder):
    """The competition's test images ``<id>.png``, in numeric order of their ids."""
    if not folder.is_dir():
        raise UserError(f"--kaggle {folder}: no such folder")
    files = [p for p in folder.iterdir() if p.is_file()]
    odd = [p.name for p in files if not (p.stem.isdigit() and p.suffix.lower() == ".png")]
    if odd:
        raise UserError(f"--kaggle {folder}: {odd[0]} is not <id>.png, as the competition's test images are "
                        f"({len(odd)} such file{'s' * (len(odd) != 1)})")
    if not files:
        raise UserError(f"--kaggle {folder}: no images")
    return sorted(files, key=lambda p: int(p.stem))


def load_model(args):
    """The network with its input scaling built in (uint8 in, probabilities out), its class
    names, and the temperature kept beside its weights (``evaluate.py --calibrate``) unless
    ``--no-temperature``: None where there is none."""
    path, _ = weights_file(args)
    model, sidecar = load_wrapped(path, models.create)
    temperature, note = (None, None) if args.no_temperature else temperature_of(sidecar)
    if temperature:
        print(f"probabilities temperature-scaled, T = {temperature:.3f} ({note}); --no-temperature for the raw ones",
              file=sys.stderr)
    return model, sidecar.get("class_names") or [str(i) for i in range(model.output_shape[-1])], temperature


def classify(model, files, workers, strict, tta=0):
    """``([(path, probabilities)], failures)``, decoding ``workers`` images at a time. A
    file that cannot be read is an ``error:`` line (``strict``: a UserError). ``tta``: a
    ``suite.analysis.tta`` level."""
    results, failed = [], 0
    progress = keras.utils.Progbar(len(files), unit_name="image") if len(files) > CHUNK else None
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(files), CHUNK):
            chunk = files[start:start + CHUNK]
            images, good = [], []
            for path, image in zip(chunk, pool.map(_decode, chunk)):
                if isinstance(image, UserError):
                    if strict:
                        raise image
                    print(f"error: {image}", file=sys.stderr)
                    failed += 1
                else:
                    images.append(image)
                    good.append(path)
            if images:
                probs = predict_with_tta(lambda x: model.predict(x, batch_size=BATCH_SIZE, verbose=0),
                                         np.stack(images), tta)
                results += zip(good, probs)
            if progress is not None:
                progress.update(start + len(chunk))
    return results, failed


def _decode(path):
    try:
        return open_image(path, 32)
    except UserError as e:
        return e


def submission(files, results, classes):
    """The competition's CSV: ``id,label`` with class names, in the files' (numeric) order."""
    rows = ["id,label"] + [f"{int(Path(path).stem)},{classes[int(np.argmax(probs))]}" for path, probs in results]
    return "\n".join(rows) + "\n"


def predictions_csv(results, classes, top):
    """One row per image: the file, then the top classes and their probabilities."""
    head = ["file"] + [f"{kind}_{k}" for k in range(1, top + 1) for kind in ("class", "probability")]
    rows = [",".join(head)]
    for path, probs in results:
        order = np.argsort(-probs, kind="stable")[:top]
        rows.append(",".join([_csv_field(str(path))] + [f"{classes[i]},{probs[i]:.6f}" for i in order]))
    return "\n".join(rows) + "\n"


def _csv_field(text):
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
