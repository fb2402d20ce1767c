"""Look inside a trained network: its filters, its feature maps, and Grad-CAM heatmaps of
where it looks (Selvaraju et al. 2017, ``suite.analysis.gradcam``).

    python visualize.py filters  --pretrained allcnn_c                   # first conv's kernels, RGB
    python visualize.py filters  --pretrained allcnn_c --layer conv2d_3  # per-channel maps of one layer
    python visualize.py features --pretrained allcnn_c --layer conv2d_1 --index 7
    python visualize.py features --run outputs/resnet20-20261201-204253 --image cat.jpg
    python visualize.py gradcam  --pretrained allcnn_c --count 8         # the first 8 test images
    python visualize.py gradcam  --pretrained allcnn_c --mistakes 8      # the 8 most confident mistakes
    python visualize.py gradcam  --weights x.weights.h5 --image a.png b.jpg --layer conv2d_5

The weights come with ``--pretrained NAME`` (``suite.models.list_models(pretrained=True)``),
``--weights FILE`` (a ``.weights.h5`` with its sidecar) or ``--run RUN_DIR`` (its
``final.weights.h5``, or ``--checkpoint best``). Grad-CAM uses the last convolution unless
``--layer`` names another; ``python visualize.py layers ...`` lists them. The PNGs go into
a new folder ``outputs/visualize-<name>-<what>-<timestamp>/`` (``--out-dir``), whose path
is printed.
"""

import argparse
import sys

from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument
from suite.workflows.weight_source import add_arguments as add_weights_arguments


def parse_args(argv):
    p = argparse.ArgumentParser(description="Draw a network's filters, feature maps and Grad-CAM heatmaps.")
    add_version_argument(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="{filters,features,gradcam,layers}")
    common = argparse.ArgumentParser(add_help=False)
    add_weights_arguments(common)
    common.add_argument("--layer", help="a conv layer by name (see the `layers` command)")
    common.add_argument("--out-dir", default="outputs", help="where the new folder goes (default: outputs)")
    common.add_argument("--data-path", help="CIFAR-10 for the test images (default: $CIFAR10_PATH, Keras' cache)")
    images = argparse.ArgumentParser(add_help=False)
    images.add_argument("--image", nargs="+", metavar="FILE", help="image files (any size; resized to 32x32)")
    sub.add_parser("layers", parents=[common], help="list the conv layers")
    sub.add_parser("filters", parents=[common], help="conv kernels: RGB for the first layer, else per channel")
    features = sub.add_parser("features", parents=[common, images], help="one layer's activation maps for one image")
    features.add_argument("--index", type=int, default=0, help="the test image (default: 0)")
    gradcam = sub.add_parser("gradcam", parents=[common, images], help="Grad-CAM heatmaps, predicted and true class")
    pick = gradcam.add_mutually_exclusive_group()
    pick.add_argument("--count", type=int, default=8, help="the first N test images (default: 8)")
    pick.add_argument("--mistakes", type=int, metavar="N", help="the N test images misclassified most confidently")
    return p.parse_args(argv)


def main(argv=None):
    options = vars(parse_args(argv))
    # lazy: TensorFlow loads once the arguments are parsed, so that --help and --version answer at once
    from suite.api.weights import visualize

    return run_cli(lambda given: visualize(**given).exit_code, options)


if __name__ == "__main__":
    sys.exit(main())
