"""LeNet as the PyImageSearch study project builds it for CIFAR-10 (A. Rosebrock, "Deep
Learning for Computer Vision with Python", Starter Bundle, 2017; after LeCun et al. 1998,
"Gradient-based learning applied to document recognition").

``lenet``: Conv20 5x5 same, ReLU -> MP 2x2 -> Conv50 5x5 same, ReLU -> MP 2x2 -> Flatten
-> Dense500, ReLU -> Dense(classes) -> softmax. 1,632,080 parameters (10 classes,
32x32x3). The study reports no CIFAR-10 figure for it. Channels-last only, which sidesteps
the study's misspelled ``channels_first`` check.
"""

import keras

from models.common import classifier_head, conv, dense, model_input
from models.registry import register


@register
def lenet(input_shape=(32, 32, 3), num_classes=10, weight_decay=0.0):
    inputs = model_input(input_shape, num_classes, "lenet")
    x = conv(20, 5, weight_decay=weight_decay)(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv(50, 5, weight_decay=weight_decay)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = dense(500, activation="relu", weight_decay=weight_decay)(x)
    return keras.Model(inputs, classifier_head(x, num_classes, weight_decay), name="lenet")
