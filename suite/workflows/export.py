"""Exporting weights as a ``.keras`` file and a SavedModel that need none of the suite's code;
``run(args)`` takes ``suite/commands/export.py``'s arguments.
"""

import sys
from pathlib import Path

from suite.core.quiet import import_keras  # noqa: E402

keras = import_keras()  # before anything else imports TensorFlow, so that its native start-up lines stay hidden

import numpy as np  # noqa: E402

from suite import models  # noqa: E402
from suite.core.atomic import atomic_folder, atomic_path, make_folders, write_text  # noqa: E402
from suite.core.errors import UserError  # noqa: E402
from suite.core.quiet import native_stderr_silenced  # noqa: E402
from suite.data.preprocessing import input_scaling  # noqa: E402
from suite.models.airbench import WhiteningConv  # noqa: E402
from suite.models.pretrained import load_with_sidecar  # noqa: E402
from suite.models.resnet import ZeroPadShortcut  # noqa: E402
from suite.workflows.weight_source import weights_file, weights_name


def run(args):
    out = Path(args.out)
    if out.exists():
        raise UserError(f"-o {out}: exists; give a new folder (nothing is overwritten)")
    path, _ = weights_file(args)
    net, sidecar = load_with_sidecar(path, models.create)
    name = weights_name(args, path)
    model = portable_model(net, sidecar["preprocessing"], name, Path(path).parent)
    make_folders(out)
    with atomic_path(out / f"{name}.keras") as tmp:
        model.save(str(tmp))
    classes = sidecar.get("class_names") or [str(i) for i in range(net.output_shape[-1])]
    write_text(out / f"{name}_classes.txt", "\n".join(classes) + "\n")
    written = [out / f"{name}.keras", out / f"{name}_classes.txt"]
    if keras.backend.backend() == "tensorflow":
        write_savedmodel(model, out / f"{name}_savedmodel")
        written.append(out / f"{name}_savedmodel")
    else:
        print(f"note: no SavedModel under the {keras.backend.backend()} backend (it needs TensorFlow)", file=sys.stderr)
    print("\n".join(map(str, written)))
    return 0


def write_savedmodel(model, folder):
    """``model`` as a SavedModel in ``folder``, which appears only once complete. TensorFlow
    reports a failed write as an OpError ending in the system's words ("...; No space
    left on device [Op:SaveV2]"), which becomes a WriteError naming ``folder``."""
    import tensorflow as tf  # lazy: TensorFlow itself, for the SavedModel only

    with atomic_folder(folder) as draft:
        try:
            with native_stderr_silenced():  # TensorFlow's C++ lines while it writes the graph
                model.export(str(draft), format="tf_saved_model", verbose=False)
        except tf.errors.OpError as e:
            raise OSError(None, e.message.rsplit("; ", 1)[-1].split(" [Op:")[0].strip()) from None


def portable_model(net, preprocessing, name, folder):
    """uint8 images -> the training set's scaling -> ``net``, in built-in Keras layers only
    (``folder``: the sidecar's, where a ZCA whitening file is)."""
    inputs = keras.Input(net.input_shape[1:], dtype="uint8", name="images")
    if preprocessing.get("normalize") == "zca":
        x = input_scaling(preprocessing, folder)(inputs)
    else:
        mean, std = np.asarray(preprocessing["mean"]), np.asarray(preprocessing["std"])
        x = keras.layers.Normalization(mean=mean, variance=std ** 2, name="standardize")(inputs)
    return keras.Model(inputs, portable_copy(net)(x), name=name)


def portable_copy(net):
    """``net`` with its weights and Keras' layers only: each ``ZeroPadShortcut`` replaced by
    a fixed 1x1 convolution, airbench94's ``WhiteningConv`` by a 2x2 one, and the suite's
    initializers (which a loaded model never calls) by zeros."""
    def clone(layer):
        if isinstance(layer, ZeroPadShortcut):
            return keras.layers.Conv2D(layer.filters, 1, strides=layer.strides, use_bias=False, trainable=False,
                                       name=layer.name)
        if isinstance(layer, WhiteningConv):
            return keras.layers.Conv2D(layer.filters, 2, padding="valid", name=layer.name)
        return layer.__class__.from_config(_without_suite_initializers(layer.get_config()))

    copy = keras.models.clone_model(net, clone_function=clone)
    for original, layer in zip(net.layers, copy.layers):
        if isinstance(original, ZeroPadShortcut):
            channels = original.input.shape[-1]
            kernel = np.zeros((1, 1, channels, original.filters), "float32")
            start = (original.filters - channels) // 2
            kernel[0, 0, np.arange(channels), start + np.arange(channels)] = 1.0
            layer.set_weights([kernel])
        elif isinstance(original, WhiteningConv):  # its weights list the trained bias first
            layer.set_weights([keras.ops.convert_to_numpy(original.kernel), keras.ops.convert_to_numpy(original.bias)])
        else:
            layer.set_weights(original.get_weights())
    return copy


def _without_suite_initializers(config):
    return {key: "zeros" if isinstance(value, dict) and str(value.get("registered_name", "")).startswith("suite>")
            else value for key, value in config.items()}
