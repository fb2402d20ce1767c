"""Callbacks that add to every epoch's logs what Keras leaves out: the learning rate and timing.

They must come before the callbacks that read the logs (monitor, TensorBoard).
"""

import time

import keras

from suite.schedules import learning_rate_at


class LearningRateLogger(keras.callbacks.Callback):
    """``logs["learning_rate"]``: the rate the schedule gave at the epoch's first step."""

    def __init__(self, schedule, steps_per_epoch):
        super().__init__()
        self.schedule, self.steps_per_epoch = schedule, steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = learning_rate_at(self.schedule, epoch * self.steps_per_epoch)


class EpochTimer(keras.callbacks.Callback):
    """``logs["epoch_time"]`` (seconds, with validation), ``logs["train_images_per_sec"]``
    (training batches only) and ``logs["wall_clock"]`` (Unix time at the epoch's end; the
    difference between two epochs counts everything, checkpoints and plots included)."""

    def __init__(self, num_train):
        super().__init__()
        self.num_train = num_train

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.train_end = time.perf_counter(), None

    def on_test_begin(self, logs=None):  # validation starts when the training batches are done
        self.train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.train_end = self.train_end or now
        logs["epoch_time"] = now - self.start
        logs["train_images_per_sec"] = self.num_train / max(self.train_end - self.start, 1e-9)
        logs["wall_clock"] = time.time()
