"""Export trained weights as files that need none of the suite's code: a Keras model
(``.keras``) and a TensorFlow SavedModel, both taking uint8 images (N, 32, 32, 3) and
returning class probabilities, with the input scaling inside.

    python export.py --pretrained allcnn_c -o exported
    python export.py --run outputs/resnet20-20261201-204253 -o exported           # its final.weights.h5
    python export.py --pretrained allcnn_c --format onnx -o exported-onnx      # checked in onnxruntime
    python export.py --pretrained allcnn_c --format tflite -o exported-tflite  # checked in the TFLite interpreter

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
import sys

from suite.api.weights import export
from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument
from suite.workflows.export import CHECK_IMAGES, FORMATS, TOLERANCE
from suite.workflows.weight_source import add_arguments as add_weights_arguments


def parse_args(argv):
    p = argparse.ArgumentParser(description="Export trained weights as a .keras file and a TensorFlow SavedModel, "
                                            "or as an ONNX or TFLite file.")
    add_version_argument(p)
    add_weights_arguments(p)
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="a new folder for the exported files")
    p.add_argument("--format", choices=FORMATS, default="keras",
                   help="keras (default): a .keras file and a SavedModel; onnx or tflite: one file, checked in "
                        f"onnxruntime or the TFLite interpreter against Keras on the first {CHECK_IMAGES:,} test "
                        f"images (the same classes, probabilities within {TOLERANCE:.0e}); onnx needs the export "
                        "extra: pip install 'cifar10-cnn-suite[export]'")
    p.add_argument("--data", choices=("cifar10", "sample"), default="cifar10",
                   help="with onnx or tflite, the test images checked: cifar10 (default) or the quick-start sample's")
    p.add_argument("--data-path", help="CIFAR-10 folder, .tar.gz or .npz (default: $CIFAR10_PATH, then Keras' cache)")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(lambda options: export(**options).exit_code, vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
