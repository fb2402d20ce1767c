"""ShallowNet, the one-convolution baseline of the PyImageSearch study project
(A. Rosebrock, "Deep Learning for Computer Vision with Python", Starter Bundle, 2017).

``shallownet``: Conv32 3x3 same, ReLU -> Flatten -> Dense(classes) -> softmax.
328,586 parameters (10 classes, 32x32x3). The study reports about 60% CIFAR-10 test
accuracy (*recalled*). Ablation knobs (``suite.models.common``): ``activation``,
``kernel_initializer``, ``batch_norm``, ``head``, ``dropout``; it has no down-sampling.
"""

import keras

from suite.models.common import (apply, check_knobs, check_rate, classifier_head, conv, head_layer, maybe_batch_norm,
                                 maybe_dropout, model_input)
from suite.models.registry import register


@register
def shallownet(input_shape=(32, 32, 3), num_classes=10, activation="relu", kernel_initializer="glorot_uniform",
               batch_norm=False, head="flatten", dropout=0.0, weight_decay=0.0):
    name = "shallownet"
    inputs = model_input(input_shape, num_classes, name)
    check_knobs(name, activation, kernel_initializer, head=head, batch_norm=batch_norm)
    x = apply(inputs, conv(32, 3, activation=activation, kernel_initializer=kernel_initializer,
                           weight_decay=weight_decay),
              maybe_batch_norm(batch_norm), head_layer(head), maybe_dropout(check_rate(name, "dropout", dropout)))
    return keras.Model(inputs, classifier_head(x, num_classes, weight_decay), name=name)
