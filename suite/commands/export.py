"""Export trained weights as files that need none of the suite's code: a Keras model
(``.keras``) and a TensorFlow SavedModel, both taking uint8 images (N, 32, 32, 3) and
returning class probabilities, with the input scaling inside.

    python export.py --pretrained allcnn_c -o exported
    python export.py --run outputs/resnet20-20261201-204253 --checkpoint final -o exported

writes ``<out>/<name>.keras`` (``keras.saving.load_model`` in a process that has only
Keras), ``<out>/<name>_savedmodel/`` (``tf.saved_model.load(...).serve(images)``, or
TensorFlow Serving) and ``<out>/<name>_classes.txt`` (the class names, one a line, in
output order). ``<out>`` must not exist yet: nothing is overwritten.

The suite's own layers are swapped for Keras' built-in ones with the same arithmetic:
the scaling (``Standardize``) for ``Normalization`` with the training set's channel mean
and variance (ZCA-whitened weights keep their whitening, which is built-in layers already:
``suite.data.whitening``), and the ResNets' parameter-free shortcut (``ZeroPadShortcut``, subsampling
and zero channels) for a fixed 1x1 convolution with stride, whose kernel copies each
channel to its place (``portable_copy``).
"""

import argparse

from suite.core.errors import run_cli
from suite.workflows.export import run
from suite.workflows.weight_source import add_arguments as add_weights_arguments


def parse_args(argv):
    p = argparse.ArgumentParser(description="Export trained weights as a .keras file and a TensorFlow SavedModel.")
    add_weights_arguments(p)
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="a new folder for the exported files")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(run, parse_args(argv))
