"""LearningRateLogger: the learning rate in every epoch's logs, which Keras leaves out.

It must come before the callbacks that read the logs (monitor, TensorBoard).
"""

import keras

from suite.schedules import learning_rate_at


class LearningRateLogger(keras.callbacks.Callback):
    """``logs["learning_rate"]``: the rate the schedule gave at the epoch's first step."""

    def __init__(self, schedule, steps_per_epoch):
        super().__init__()
        self.schedule, self.steps_per_epoch = schedule, steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = learning_rate_at(self.schedule, epoch * self.steps_per_epoch)
