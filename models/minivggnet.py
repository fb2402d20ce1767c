"""MiniVGGNet of the PyImageSearch study project (A. Rosebrock, "Deep Learning for
Computer Vision with Python", Starter Bundle, 2017), a small VGG (Simonyan & Zisserman
2014, arXiv:1409.1556).

``minivggnet``: [Conv32 3x3, ReLU, BN] x2 -> MP -> Drop 0.25 -> [Conv64 3x3, ReLU, BN] x2
-> MP -> Drop 0.25 -> Flatten -> Dense512, ReLU, BN -> Drop 0.5 -> Dense(classes) ->
softmax. BN comes after the ReLU, as in the study. 2,171,178 parameters with BN,
2,168,362 without (10 classes, 32x32x3). The study reports about 83% CIFAR-10 test
accuracy with BN and about 79% without (*recalled*).
"""

import keras

from models import common
from models.common import apply, check_rate, classifier_head, conv, dense, maybe_dropout, model_input
from models.registry import register


@register
def minivggnet(input_shape=(32, 32, 3), num_classes=10, batch_norm=True, conv_dropout=0.25,
               dropout=0.5, weight_decay=0.0):
    name = "minivggnet"
    inputs = model_input(input_shape, num_classes, name)
    conv_rate = check_rate(name, "conv_dropout", conv_dropout)
    head_rate = check_rate(name, "dropout", dropout)

    def bn():
        return common.batch_norm() if batch_norm else None

    x = inputs
    for filters in (32, 64):
        for _ in range(2):
            x = apply(x, conv(filters, 3, weight_decay=weight_decay), bn())
        x = apply(x, keras.layers.MaxPooling2D(2), maybe_dropout(conv_rate))
    x = keras.layers.Flatten()(x)
    x = apply(x, dense(512, activation="relu", weight_decay=weight_decay), bn(), maybe_dropout(head_rate))
    return keras.Model(inputs, classifier_head(x, num_classes, weight_decay), name=name)
