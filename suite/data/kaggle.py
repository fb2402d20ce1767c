"""The Kaggle CIFAR-10 competition's files ("CIFAR-10 - Object Recognition in Images"):
``train/1.png`` ... ``train/50000.png`` with ``trainLabels.csv`` (``id,label``, class
names), and ``test/1.png`` ... ``test/300000.png`` without labels. ``data.path`` may name
such a folder; ``predict.py --kaggle`` writes the submission for its ``test/``.
"""

import concurrent.futures
import csv
import os

import numpy as np

from suite.core.errors import UserError
from suite.core.images import open_image

LABELS = "trainLabels.csv"


def is_kaggle_folder(path):
    return (path / LABELS).is_file() and (path / "train").is_dir()


def read_labels(path, class_names):
    """``(ids, labels)`` from ``trainLabels.csv``: ids in file order, labels as class indices."""
    index = {name: i for i, name in enumerate(class_names)}
    ids, labels = [], []
    try:
        with open(path, newline="") as f:
            rows = csv.reader(f)
            if next(rows, None) != ["id", "label"]:
                raise UserError(f"{path}: the first line must be the header id,label")
            for line, row in enumerate(rows, start=2):
                if len(row) != 2 or not row[0].isdigit() or row[1] not in index:
                    raise UserError(f"{path}:{line}: expected <id>,<class name> with a class of "
                                    f"{', '.join(class_names)}; got {','.join(row)!r}")
                ids.append(int(row[0]))
                labels.append(index[row[1]])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    if not ids:
        raise UserError(f"{path}: no labels")
    return ids, np.array(labels, dtype=np.int32)


def read_training_images(folder, class_names):
    """``(images, labels)``: every ``train/<id>.png`` that ``trainLabels.csv`` lists, as
    (N, 32, 32, 3) uint8, decoded on one thread per core."""
    ids, labels = read_labels(folder / LABELS, class_names)
    paths = [folder / "train" / f"{i}.png" for i in ids]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        images = list(pool.map(open_image, paths))
    for path, image in zip(paths, images):
        if image.shape != (32, 32, 3):
            raise UserError(f"{path}: {image.shape[1]}x{image.shape[0]} pixels; the competition's images are 32x32")
    return np.stack(images), labels
