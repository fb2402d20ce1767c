"""Test-time augmentation: the prediction for an image is made from several views of it.

The levels are airbench's (Jordan 2024, arXiv:2404.00498, sec. 3.7; ``legacy/airbench94.py``,
``infer``): 0 the image alone; 1 the image and its mirror image, weighted equally; 2 half
of that, plus a quarter each for the same pair moved by one pixel down-right and
up-left (the image padded by reflection). The source averages logits; here the
log-probabilities are averaged, which gives the same softmax (each view's log-softmax is
its logits less a constant).
"""

import numpy as np

LEVELS = (0, 1, 2)
NAMES = {0: "none", 1: "level 1: the image and its mirror image",
         2: "level 2: the image and its mirror image, each also moved by one pixel down-right and up-left"}


def add_argument(parser):
    """The ``--tta [LEVEL]`` option of evaluate.py and predict.py (``--tta`` alone: level 2)."""
    parser.add_argument("--tta", type=int, nargs="?", const=2, default=0, choices=LEVELS, metavar="LEVEL",
                        help="test-time augmentation: 1 mirror, 2 (--tta alone) mirror and 1-pixel moves, "
                             "airbench's; default 0: none. Give it after any file arguments")


def views(images, level):
    """``[(weight, images)]`` for uint8 ``images`` (N, H, W, C) at TTA ``level``; the first
    view is ``images`` itself."""
    mirrored = [(0.5, images), (0.5, images[:, :, ::-1])]
    if level == 0:
        return [(1.0, images)]
    if level == 1:
        return mirrored
    h, w = images.shape[1:3]
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    moved = [padded[:, :h, :w], padded[:, 2:h + 2, 2:w + 2]]
    return ([(weight / 2, x) for weight, x in mirrored]
            + [(0.125, x) for m in moved for x in (m, m[:, :, ::-1])])


def combine(weighted_probs):
    """The softmax of the weighted mean of the views' log-probabilities: ``[(weight, probs)]`` -> probs."""
    log_mean = sum(weight * np.log(np.maximum(probs.astype(np.float64), 1e-38)) for weight, probs in weighted_probs)
    log_mean -= log_mean.max(axis=1, keepdims=True)
    out = np.exp(log_mean)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def predict_with_tta(predict_fn, images, level):
    """``predict_fn(images) -> probs`` applied to every view of ``images``, combined."""
    if level == 0:
        return predict_fn(images)
    return combine([(weight, predict_fn(np.ascontiguousarray(x))) for weight, x in views(images, level)])
