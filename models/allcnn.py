"""The CIFAR networks of Springenberg, Dosovitskiy, Brox, Riedmiller, "Striving for
Simplicity: The All Convolutional Net", ICLR 2015 workshop, arXiv:1412.6806, and the
study project's Keras All-CNN (MateLabs "All-Conv-Keras", allconv.py / prediction.py).

Paper models, Tables 1 and 2 (parameters measured, 10 classes, 32x32x3):
``model_a`` 839,242; ``model_b`` 885,610; ``model_c`` 954,730; ``strided_cnn_c``
954,730; ``convpool_cnn_c`` 1,369,738; ``allcnn_c`` 1,369,738.
Every conv is followed by ReLU, the final 1x1 conv to the class maps included (Table 1:
"1x1 conv. 10 ReLU"; knob ``final_relu``). Convs are 'same' except the 3x3 conv after
the second down-sampling, which is 'valid' so that the average runs "over 6x6 spatial
dimensions" as the tables say (inferred; knob ``head_padding``); max pooling is 3x3
stride 2 ('same': 32 -> 16 -> 8). Dropout 20% on the input (``input_dropout``) and 50%
"after each pooling layer (or after the layer replacing the pooling layer)"
(``dropout``); Strided-CNN-C drops out after its stride-2 convs. Re-implementations that
drop the last ReLU or keep the last 3x3 'same' (the study's among them) depart from it.
Reported CIFAR-10 test error without augmentation (Table 3): A 12.47%, B 10.20%, C 9.74%,
Strided-CNN-C 10.19%, ConvPool-CNN-C 9.31%, All-CNN-C 9.08% (90.92% accuracy); All-CNN-C
with augmentation 7.25% (92.75%, *recalled*). Table 3's parameter column (~1.3M for
model C) does not match Table 1, which gives 954,730.

``allcnn_c_study`` (1,369,738): the topology of the circulating
``all_cnn_weights_0.9088_0.4994.hdf5`` (90.88% test accuracy): no activation after the
two stride-2 convs or after the final 1x1 conv, all 3x3 convs 'same' (8x8 average),
dropout 0.5 after the stride-2 convs and none on the input, Glorot init. Its nine convs
are its only weighted layers, in file order.

Ablation knobs (``suite.models.common``): ``activation`` (of every conv that has a ReLU in the
source), ``kernel_initializer``, ``batch_norm`` (after every conv but the class maps'),
``dropout``. The paper's models are themselves its pool-against-stride study (model C,
Strided-CNN-C, All-CNN-C) and all end in global average pooling, so they take no
``downsample`` or ``head``.
"""

import keras

from suite.models.common import (apply, check_choice, check_knobs, check_rate, conv, maybe_batch_norm, maybe_dropout,
                                 model_input, softmax_output)
from suite.models.registry import register

# Body specs: (filters, kernel, stride, relu) for a conv, "pool" for 3x3/2 max pooling,
# "drop" for the 50% dropout after each (replaced) pooling layer.
_A = [(96, 5, 1, True), "pool", "drop", (192, 5, 1, True), "pool", "drop"]
_B = [(96, 5, 1, True), (96, 1, 1, True), "pool", "drop",
      (192, 5, 1, True), (192, 1, 1, True), "pool", "drop"]
_C = [(96, 3, 1, True), (96, 3, 1, True), "pool", "drop",
      (192, 3, 1, True), (192, 3, 1, True), "pool", "drop"]
_STRIDED_C = [(96, 3, 1, True), (96, 3, 2, True), "drop",
              (192, 3, 1, True), (192, 3, 2, True), "drop"]
_CONVPOOL_C = [(96, 3, 1, True)] * 3 + ["pool", "drop"] + [(192, 3, 1, True)] * 3 + ["pool", "drop"]
_ALL_C = [(96, 3, 1, True), (96, 3, 1, True), (96, 3, 2, True), "drop",
          (192, 3, 1, True), (192, 3, 1, True), (192, 3, 2, True), "drop"]
_ALL_C_STUDY = [(96, 3, 1, True), (96, 3, 1, True), (96, 3, 2, False), "drop",
                (192, 3, 1, True), (192, 3, 1, True), (192, 3, 2, False), "drop"]


def _build(name, body, input_shape, num_classes, input_dropout, dropout, final_relu,
           head_padding, weight_decay, activation="relu", kernel_initializer="glorot_uniform", batch_norm=False):
    inputs = model_input(input_shape, num_classes, name)
    input_rate = check_rate(name, "input_dropout", input_dropout)
    rate = check_rate(name, "dropout", dropout)
    check_choice(name, "head_padding", head_padding, ("valid", "same"))
    check_knobs(name, activation, kernel_initializer, batch_norm=batch_norm)

    def layer(x, filters, kernel, strides=1, padding="same", relu=True, normalise=batch_norm):
        x = conv(filters, kernel, strides, padding=padding, activation=activation if relu else None,
                 kernel_initializer=kernel_initializer, weight_decay=weight_decay)(x)
        return apply(x, maybe_batch_norm(normalise))

    x = apply(inputs, maybe_dropout(input_rate))
    for item in body:
        if item == "pool":
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
        elif item == "drop":
            x = apply(x, maybe_dropout(rate))
        else:
            filters, kernel, stride, relu = item
            x = layer(x, filters, kernel, stride, relu=relu)
    x = layer(x, 192, 3, padding=head_padding)
    x = layer(x, 192, 1, padding="valid")
    x = layer(x, num_classes, 1, padding="valid", relu=final_relu, normalise=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, softmax_output()(x), name=name)


def _paper_model(name, body):
    def builder(input_shape=(32, 32, 3), num_classes=10, input_dropout=0.2, dropout=0.5,
                final_relu=True, head_padding="valid", activation="relu", kernel_initializer="glorot_uniform",
                batch_norm=False, weight_decay=0.0):
        return _build(name, body, input_shape, num_classes, input_dropout, dropout,
                      final_relu, head_padding, weight_decay, activation, kernel_initializer, batch_norm)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{name} of arXiv:1412.6806 (see the module docstring)."
    return register(builder)


model_a = _paper_model("model_a", _A)
model_b = _paper_model("model_b", _B)
model_c = _paper_model("model_c", _C)
strided_cnn_c = _paper_model("strided_cnn_c", _STRIDED_C)
convpool_cnn_c = _paper_model("convpool_cnn_c", _CONVPOOL_C)
allcnn_c = _paper_model("allcnn_c", _ALL_C)


@register
def allcnn_c_study(input_shape=(32, 32, 3), num_classes=10, input_dropout=0.0, dropout=0.5, activation="relu",
                   kernel_initializer="glorot_uniform", batch_norm=False, weight_decay=0.0):
    return _build("allcnn_c_study", _ALL_C_STUDY, input_shape, num_classes, input_dropout,
                  dropout, False, "same", weight_decay, activation, kernel_initializer, batch_norm)
