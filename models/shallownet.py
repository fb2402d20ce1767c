"""ShallowNet, the one-convolution baseline of the PyImageSearch study project
(A. Rosebrock, "Deep Learning for Computer Vision with Python", Starter Bundle, 2017).

``shallownet``: Conv32 3x3 same, ReLU -> Flatten -> Dense(classes) -> softmax.
328,586 parameters (10 classes, 32x32x3). The study reports about 60% CIFAR-10 test
accuracy (*recalled*).
"""

import keras

from models.common import classifier_head, conv, model_input
from models.registry import register


@register
def shallownet(input_shape=(32, 32, 3), num_classes=10, weight_decay=0.0):
    inputs = model_input(input_shape, num_classes, "shallownet")
    x = conv(32, 3, weight_decay=weight_decay)(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, classifier_head(x, num_classes, weight_decay), name="shallownet")
