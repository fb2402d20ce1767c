"""Evaluate trained weights on the CIFAR-10 test set: loss, accuracy, a per-class report,
the most confused classes, a confusion matrix, a grid of misclassified images, calibration
(ECE, NLL, Brier, a reliability diagram) and, asked for, robustness to CIFAR-10-C-style
corruptions.

    python evaluate.py --run outputs/allcnn_c-20261122-153000                  # the run's final.weights.h5
    python evaluate.py --run outputs/allcnn_c-20261122-153000 --checkpoint best # flagged if the test set chose it
    python evaluate.py --pretrained resnet20 --calibrate                        # temperature scaling
    python evaluate.py --pretrained resnet20 --corruptions all                  # CIFAR-10-C-style robustness
    python evaluate.py --pretrained minivggnet                                  # shipped weights, by name
    python evaluate.py --weights weights/allcnn_c.weights.h5                    # model from the .json sidecar
    python evaluate.py --weights weights/allcnn_c.weights.h5 --data sample      # the quick-start sample
    python evaluate.py --weights x.weights.h5 --config configs/allcnn_c_pretrain.yaml
    python evaluate.py --weights all_cnn_weights_0.9088_0.4994.hdf5 --model allcnn_c_study --normalize scale

The weights file may be a Keras 3 ``.weights.h5`` (what the suite writes) or a Keras 2
HDF5 file (``save_weights("x.h5")``; told apart by its contents, see
``suite/weights/formats.py``). The model and its input scaling come from, in this order,
``--model`` (with ``--param`` and ``--normalize``), ``--config``, the sidecar JSON beside
the weights, or the run folder's ``config.yaml``.

Everything goes into a new folder ``outputs/eval-<name>-<timestamp>/`` (``--out-dir``):
what the reports of ``suite/analysis/reports.py`` write (``per_class.csv``, ``confusion.png``,
``misclassified.png``, ``reliability.png``, ``predictions.npz``), ``metrics.json`` (with
``provenance``: what made the report) and ``report.txt`` (what is printed).
"""

import argparse
import sys

from suite.analysis.tta import add_argument as add_tta_argument
from suite.api.weights import evaluate
from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument
from suite.workflows.evaluate import CPU_BATCH_SIZE, GPU_BATCH_SIZE
from suite.workflows.weight_source import add_arguments as add_weights_arguments


def parse_args(argv):
    p = argparse.ArgumentParser(description="Evaluate CIFAR-10 weights on the test set and write a report.")
    add_version_argument(p)
    add_weights_arguments(p)  # --weights (Keras 3 .weights.h5 or Keras 2 .h5/.hdf5), --run, --pretrained
    p.add_argument("--config", help="the model and normalisation from this experiment config (YAML)")
    p.add_argument("--model", help="the model by registry name (needed for legacy files, which have no sidecar)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="with --model: a builder knob, e.g. --param batch_norm=false (repeatable; values are YAML)")
    p.add_argument("--normalize", choices=("scale", "none", "standardize", "zca"),
                   help="with --model: scale (x/255, default), none (raw pixels), standardize (per-channel statistics "
                        "of the training images) or zca (GCN and ZCA whitening fitted on them)")
    p.add_argument("--data", choices=("cifar10", "sample"), default="cifar10",
                   help="cifar10: the test set (default); sample: the test part of the quick-start sample in data/")
    p.add_argument("--data-path", help="CIFAR-10 folder, .tar.gz or .npz (default: $CIFAR10_PATH, then Keras' cache)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N test images")
    p.add_argument("--batch-size", type=int,
                   help=f"images per forward pass (default: {CPU_BATCH_SIZE} on a CPU, {GPU_BATCH_SIZE} on a GPU)")
    p.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"), default="auto",
                   help="auto (default): float32 on a CPU, mixed on a GPU, as train.py; mixed_bfloat16 is about "
                        "twice as fast on CPUs with AVX512_BF16 or AMX, with slightly different figures")
    add_tta_argument(p)
    p.add_argument("--calibrate", action="store_true",
                   help="fit temperature scaling (Guo et al. 2017) on held-out training images, never the test set, "
                        "and report ECE, NLL and Brier before and after; kept beside the weights for predict.py")
    p.add_argument("--corruptions", metavar="all|NAME,...",
                   help="also evaluate under CIFAR-10-C's corruptions (Hendrycks & Dietterich 2019), made here from "
                        "the test images: all 15, or names or groups (noise, blur, weather, digital) separated by commas")
    p.add_argument("--severities", default="1-5", metavar="1-5",
                   help="with --corruptions: the severities, e.g. 1-5 (default), 3 or 1,3,5")
    p.add_argument("--corruptions-dir", metavar="DIR",
                   help="evaluate on the real CIFAR-10-C in DIR (<corruption>.npy and labels.npy) instead of "
                        "corrupting here, for figures comparable with papers")
    p.add_argument("--corruption-seed", type=int, default=0, metavar="N",
                   help="with --corruptions: the seed the random corruptions are drawn from (default 0)")
    p.add_argument("--out-dir", default="outputs", help="where the report folder is created (default: outputs)")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(lambda options: evaluate(**options).exit_code, vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
