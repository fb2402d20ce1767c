"""MiniVGGNet of the PyImageSearch study project (A. Rosebrock, "Deep Learning for
Computer Vision with Python", Starter Bundle, 2017), a small VGG (Simonyan & Zisserman
2014, arXiv:1409.1556).

``minivggnet``: [Conv32 3x3, ReLU, BN] x2 -> MP -> Drop 0.25 -> [Conv64 3x3, ReLU, BN] x2
-> MP -> Drop 0.25 -> Flatten -> Dense512, ReLU, BN -> Drop 0.5 -> Dense(classes) ->
softmax. BN comes after the ReLU, as in the study. 2,171,178 parameters with BN,
2,168,362 without (10 classes, 32x32x3). The study reports about 83% CIFAR-10 test
accuracy with BN and about 79% without (*recalled*). Ablation knobs (``suite.models.common``):
``activation``, ``kernel_initializer``, ``batch_norm``, ``downsample`` (``stride``: the
second conv of each block strides 2 instead of the pooling), ``head``, ``dropout``
(before the classifier) and ``conv_dropout`` (after each block).
"""

import keras

from suite.models.common import (apply, check_knobs, check_rate, classifier_head, conv, dense, head_layer,
                                 maybe_batch_norm, maybe_dropout, model_input)
from suite.models.registry import register


@register
def minivggnet(input_shape=(32, 32, 3), num_classes=10, batch_norm=True, conv_dropout=0.25,
               dropout=0.5, activation="relu", kernel_initializer="glorot_uniform", downsample="pool",
               head="flatten", weight_decay=0.0):
    name = "minivggnet"
    inputs = model_input(input_shape, num_classes, name)
    check_knobs(name, activation, kernel_initializer, downsample, head, batch_norm)
    conv_rate = check_rate(name, "conv_dropout", conv_dropout)
    head_rate = check_rate(name, "dropout", dropout)
    strided = downsample == "stride"

    x = inputs
    for filters in (32, 64):
        for i in range(2):
            stride = 2 if strided and i == 1 else 1
            x = apply(x, conv(filters, 3, strides=stride, activation=activation,
                              kernel_initializer=kernel_initializer, weight_decay=weight_decay),
                      maybe_batch_norm(batch_norm))
        x = apply(x, None if strided else keras.layers.MaxPooling2D(2), maybe_dropout(conv_rate))
    x = apply(x, head_layer(head), dense(512, activation=activation, weight_decay=weight_decay),
              maybe_batch_norm(batch_norm), maybe_dropout(head_rate))
    return keras.Model(inputs, classifier_head(x, num_classes, weight_decay), name=name)
