"""The training input: shuffled batches of uint8 images, repeatable per epoch.

The order of epoch ``e`` depends only on ``(seed, e)``, never on how many epochs this
process has run, so a resumed run sees exactly the batches an uninterrupted one would.
"""

import math

import keras
import numpy as np


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, seed=0, shuffle=True, one_hot=False):
        super().__init__()
        self.x, self.y = x, y
        self.batch_size, self.seed, self.shuffle, self.one_hot = batch_size, seed, shuffle, one_hot
        self.set_epoch(0)

    def set_epoch(self, epoch):
        n = len(self.x)
        self.order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        y = self.y[idx]
        if self.one_hot:
            y = np.eye(10, dtype="float32")[y]
        return np.take(self.x, idx, axis=0), y


class EpochOrder(keras.callbacks.Callback):
    """Tells ``Batches`` which epoch is starting, so it can draw that epoch's order."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
