"""LeNet as the PyImageSearch study project builds it for CIFAR-10 (A. Rosebrock, "Deep
Learning for Computer Vision with Python", Starter Bundle, 2017; after LeCun et al. 1998,
"Gradient-based learning applied to document recognition").

``lenet``: Conv20 5x5 same, ReLU -> MP 2x2 -> Conv50 5x5 same, ReLU -> MP 2x2 -> Flatten
-> Dense500, ReLU -> Dense(classes) -> softmax. 1,632,080 parameters (10 classes,
32x32x3). The study reports no CIFAR-10 figure for it. Channels-last only, which sidesteps
the study's misspelled ``channels_first`` check. Ablation knobs (``suite.models.common``):
``activation``, ``kernel_initializer``, ``batch_norm`` (after each conv and the Dense500,
after the activation, as MiniVGGNet has it), ``downsample`` (``stride``: each conv strides
2 instead of being followed by pooling), ``head``, ``dropout`` (after the Dense500).
"""

import keras

from suite.models.common import (apply, check_knobs, check_rate, classifier_head, conv, dense, head_layer,
                                 maybe_batch_norm, maybe_dropout, model_input)
from suite.models.registry import register


@register
def lenet(input_shape=(32, 32, 3), num_classes=10, activation="relu", kernel_initializer="glorot_uniform",
          batch_norm=False, downsample="pool", head="flatten", dropout=0.0, weight_decay=0.0):
    name = "lenet"
    inputs = model_input(input_shape, num_classes, name)
    check_knobs(name, activation, kernel_initializer, downsample, head, batch_norm)
    rate = check_rate(name, "dropout", dropout)
    strided = downsample == "stride"
    x = inputs
    for filters in (20, 50):
        x = apply(x, conv(filters, 5, strides=2 if strided else 1, activation=activation,
                          kernel_initializer=kernel_initializer, weight_decay=weight_decay),
                  maybe_batch_norm(batch_norm), None if strided else keras.layers.MaxPooling2D(2))
    x = apply(x, head_layer(head), dense(500, activation=activation, weight_decay=weight_decay),
              maybe_batch_norm(batch_norm), maybe_dropout(rate))
    return keras.Model(inputs, classifier_head(x, num_classes, weight_decay), name=name)
