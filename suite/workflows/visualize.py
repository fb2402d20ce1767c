"""Drawing a network's filters, feature maps and Grad-CAM heatmaps into a new folder;
``run(options)`` takes ``suite/commands/visualize.py``'s options (``suite.api.options.VisualizeOptions``)
and returns an ``Outcome`` carrying the folder.
"""

from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from suite import models
from suite.analysis import gradcam
from suite.analysis.plots import save
from suite.core.errors import UserError
from suite.core.folders import new_folder
from suite.core.images import open_image
from suite.core.outcome import Outcome
from suite.data.cifar10 import load_cifar10, only_classes
from suite.data.preprocessing import input_scaling
from suite.models.pretrained import load_with_sidecar
from suite.workflows.weight_source import weights_file, weights_name

MAX_FILTERS, MAX_CHANNELS, MAX_MAPS = 16, 16, 64


def run(args):
    keras.backend.clear_session()  # layer names as in a fresh process (conv2d, conv2d_1, ...), whoever calls

    path, _ = weights_file(args)
    net, sidecar = load_with_sidecar(path, models.create)
    scale = Scaling(input_scaling(sidecar["preprocessing"], Path(path).parent))
    classes = sidecar.get("class_names") or [str(i) for i in range(net.output_shape[-1])]
    if args.command == "layers":
        for layer in gradcam.conv_layers(net):
            print(f"{layer.name:<24} {layer.kernel.shape}  -> {layer.output.shape}")
        return Outcome(0, layers=[layer.name for layer in gradcam.conv_layers(net)])
    gradcam.conv_layer(net)  # a network without convolutions is one error line here
    first = gradcam.conv_layers(net)[0]
    layer = gradcam.conv_layer(net, args.layer) if args.layer or args.command == "gradcam" else first
    name = weights_name(args, path)
    if args.command == "features":
        images, _, titles = pick_images(args, [args.index], classes)
    elif args.command == "gradcam":
        images, labels, titles = gradcam_images(net, scale, args, classes)
    out = new_folder(Path(args.out_dir), f"visualize-{name}-{args.command}", "--out-dir: cannot create a folder in")
    if args.command == "filters":
        draw_filters(layer, out, name, rgb=layer is first)
    elif args.command == "features":
        draw_features(net, layer, scale(images[:1]), images[0], titles[0], out)
    else:
        draw_gradcam(net, layer, scale(images), images, labels, titles, classes, out)
    print(out)
    return Outcome(0, folder=out)


# ----------------------------------------------------------------------------- inputs
class Scaling:
    """uint8 images to what the network takes, as numpy: the sidecar's input scaling layer
    (``suite.data.preprocessing.input_scaling``) applied outside the model, because Grad-CAM
    differentiates the bare network with respect to its float input."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, images):
        return keras.ops.convert_to_numpy(self.layer(np.asarray(images, "uint8")))


def pick_images(args, indices, class_names):
    """``(uint8 images, true labels or None, titles)``: files given with --image, else the
    test images at ``indices``."""
    if getattr(args, "image", None):
        images = np.stack([open_image(p, 32) for p in args.image])
        return images, None, [Path(p).name for p in args.image]
    x_test, y_test = test_set(args, class_names)
    bad = [i for i in indices if not 0 <= i < len(x_test)]
    if bad:
        raise UserError(f"--index {bad[0]}: the test set has images 0..{len(x_test) - 1}")
    return x_test[indices], y_test[indices], [f"test image {i}" for i in indices]


def test_set(args, class_names):
    """The test images and labels, of the network's classes only (a fine-tuned one's)."""
    data = load_cifar10(args.data_path)
    if not len(data.x_test):
        raise UserError(f"{data.source}: has no test images (no test labels); give image files with --image")
    if class_names != data.class_names and set(class_names) <= set(data.class_names):
        data = only_classes(data, class_names)
    return data.x_test, data.y_test


# ----------------------------------------------------------------------------- drawing
def draw_filters(layer, out, name, rgb):
    """Kernels as RGB tiles (``rgb``: the first layer, which sees the image's three channels)
    or as per-channel maps."""
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    kh, kw, channels, filters = kernel.shape
    if rgb and channels == 3:
        shown = kernel[..., :MAX_FILTERS * 4]
        tiles = [_unit(shown[..., f]) for f in range(shown.shape[-1])]
        fig, axes = _grid(len(tiles), cols=8, size=1.2)
        for ax, tile in zip(axes, tiles):
            ax.imshow(tile, interpolation="nearest")
        title = f"{name}: {layer.name} kernels ({kh}x{kw}, {filters} filters, RGB, each scaled to its range)"
    else:
        rows, cols = min(filters, MAX_FILTERS), min(channels, MAX_CHANNELS)
        limit = float(np.abs(kernel[:, :, :cols, :rows]).max()) or 1.0
        fig, axes = _grid(rows * cols, cols=cols, size=0.9)
        for i, ax in enumerate(axes[:rows * cols]):
            ax.imshow(kernel[:, :, i % cols, i // cols], cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest")
        title = (f"{name}: {layer.name} kernels ({kh}x{kw}); rows: filters 1-{rows} of {filters}, "
                 f"columns: input channels 1-{cols} of {channels}")
    fig.suptitle(title)
    _save(fig, out / f"filters-{layer.name}.png")


def draw_features(net, layer, x, image, title, out):
    maps = gradcam.activation_maps(net, layer, x)[0]
    shown = min(maps.shape[-1], MAX_MAPS)
    fig, axes = _grid(shown + 1, cols=9, size=1.3)
    axes[0].imshow(image, interpolation="nearest")
    axes[0].set_title("input", fontsize=8)
    for c, ax in enumerate(axes[1:shown + 1]):
        ax.imshow(maps[..., c], cmap="viridis", interpolation="nearest")
        ax.set_title(str(c + 1), fontsize=7)
    fig.suptitle(f"{layer.name}: {shown} of {maps.shape[-1]} activation maps ({maps.shape[0]}x{maps.shape[1]}) "
                 f"for {title}")
    _save(fig, out / f"features-{layer.name}.png")


def gradcam_images(net, scale, args, class_names):
    """The images --image, --mistakes or --count pick: ``(uint8 images, labels or None, titles)``."""
    if args.image:
        return pick_images(args, [], class_names)
    n = args.mistakes or args.count
    if n < 1:
        raise UserError(f"--{'mistakes' if args.mistakes is not None else 'count'} must be >= 1, got {n}")
    x_test, y_test = test_set(args, class_names)
    if args.mistakes:
        probs = net.predict(scale(x_test), batch_size=250, verbose=0)
        wrong = np.flatnonzero(probs.argmax(1) != y_test)
        indices = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:n]
    else:
        indices = np.arange(min(n, len(x_test)))
    return x_test[indices], y_test[indices], [f"test {i}" for i in indices]


def draw_gradcam(net, layer, x, images, labels, titles, classes, out):
    """Each image, and its Grad-CAM heatmaps for the predicted (and, if known, the true) class."""
    probs = net.predict(x, verbose=0)
    predicted = probs.argmax(1)
    columns = [("predicted", predicted)] + ([("true", labels)] if labels is not None else [])
    cams = {kind: gradcam.upsample(gradcam.grad_cam(net, layer, x, cls), images.shape[1]) for kind, cls in columns}
    fig, axes = _grid(len(images) * (1 + len(columns)), cols=1 + len(columns), size=2.0)
    for i, image in enumerate(images):
        row = axes[i * (1 + len(columns)):(i + 1) * (1 + len(columns))]
        truth = f", true {classes[labels[i]]}" if labels is not None else ""
        row[0].imshow(image, interpolation="nearest")
        row[0].set_title(f"{titles[i]}{truth}", fontsize=8)
        for ax, (kind, cls) in zip(row[1:], columns):
            ax.imshow(image, interpolation="nearest")
            ax.imshow(cams[kind][i], cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
            ax.set_title(f"{kind}: {classes[cls[i]]} ({probs[i, cls[i]]:.0%})", fontsize=8)
    fig.suptitle(f"Grad-CAM at {layer.name}")
    _save(fig, out / f"gradcam-{layer.name}.png")


def _unit(tile):
    low, high = tile.min(), tile.max()
    return (tile - low) / (high - low) if high > low else np.zeros_like(tile)


def _grid(count, cols, size):
    rows = max(1, -(-count // cols))
    fig = Figure(figsize=(cols * size, rows * size + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    return fig, axes


def _save(fig, path):
    save(fig, path)
