"""Classify your own images with trained weights: the top classes and their probabilities.

    python predict.py photo.jpg --pretrained allcnn_c
    python predict.py photos/ --run outputs/resnet20-20261201-204253 --top 5 --csv predictions.csv
    python predict.py --kaggle kaggle/test -o submission.csv --pretrained allcnn_c

An argument is an image file (PNG or JPEG, any size) or a folder, which stands for the
``.png``/``.jpg``/``.jpeg`` files in it. Each image is turned upright as its EXIF says,
cut to its largest centred square and shrunk to 32x32 (``suite.core.images``), on several
threads at once. A file that cannot be read gets one ``error:`` line naming it; the other
images are still classified, and the exit status is 1.

``--kaggle DIR`` reads the Kaggle CIFAR-10 competition's test folder (``1.png`` ...
``300000.png``) and writes its submission file (``id,label`` with class names, ids in
numeric order, every image): any unreadable image or non-numeric name is an error, and
the file is written only when complete.
"""

import argparse
import os
import sys

from suite.analysis.tta import add_argument as add_tta_argument
from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument
from suite.workflows.weight_source import add_arguments as add_weights_arguments


def parse_args(argv):
    p = argparse.ArgumentParser(description="Classify image files with trained CIFAR-10 weights.")
    add_version_argument(p)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files or folders of them")
    add_weights_arguments(p)
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per image (default: 3)")
    p.add_argument("--csv", metavar="FILE", help="also write the predictions as CSV")
    p.add_argument("--kaggle", metavar="DIR", help="the Kaggle competition's test folder: write its submission")
    p.add_argument("-o", "--output", metavar="FILE", help="with --kaggle: the submission file (default: submission.csv)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding threads (default: one per core)")
    add_tta_argument(p)
    p.add_argument("--no-temperature", action="store_true",
                   help="the network's own probabilities, without the temperature scaling that evaluate.py --calibrate "
                        "kept beside the weights")
    return p.parse_args(argv)


def main(argv=None):
    options = vars(parse_args(argv))
    # lazy: TensorFlow loads once the arguments are parsed, so that --help and --version answer at once
    from suite.api.weights import predict

    return run_cli(lambda given: predict(**given).exit_code, options)


if __name__ == "__main__":
    sys.exit(main())
