"""The learning rate of every epoch, in the logs and in TensorBoard.

``LearningRateLogger`` must come before the callbacks that read the logs (monitor, TensorBoard).
"""

import keras

from suite.training.schedules import learning_rate_at


class LearningRateLogger(keras.callbacks.Callback):
    """``logs["learning_rate"]``: the rate the schedule gave at the epoch's first step."""

    def __init__(self, schedule, steps_per_epoch):
        super().__init__()
        self.schedule, self.steps_per_epoch = schedule, steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = learning_rate_at(self.schedule, epoch * self.steps_per_epoch)


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard, showing the same per-epoch learning rate as history.json.

    Keras' own callback overwrites ``logs["learning_rate"]`` with the optimizer's rate at
    the epoch's end, which is the next epoch's rate: a step schedule would show each drop
    one epoch early. This keeps the rate ``LearningRateLogger`` put there.
    """

    def _collect_learning_rate(self, logs):
        return logs
