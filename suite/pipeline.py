"""The training input: shuffled batches of uint8 images, repeatable per epoch.

The order of epoch ``e`` depends only on ``(seed, e)`` (``epoch_order``), never on how
many epochs this process has run, so a resumed run sees exactly the batches an
uninterrupted one would.

``training_input`` picks the feeder. Under TensorFlow it is a ``tf.data`` dataset of one
epoch (``suite.runtime.tf_batches``) that ``fit`` passes over once per epoch: it gathers
batches in C++ while the step runs, where a ``PyDataset`` costs Python time every batch
(on the 2-core CPU a ShallowNet step took 15.4 ms fed by tf.data against 19.1 ms fed by
``Batches``; medians of 5 epochs of 150 batches, side by side). Under other backends
it is ``Batches``, a ``keras.utils.PyDataset``.

Keras asks for the first batches of the next epoch before the epoch callbacks run (it
opens the next pass as soon as the last batch is taken, and the input prefetches), so
the epoch cannot be set by a callback. Instead both feeders count passes: the tf.data
input counts ``iter`` calls, ``Batches`` counts requests for batch 0 after the last
batch. ``EpochOrder`` only sets the first epoch when ``fit`` begins.
"""

import keras
import numpy as np

from suite.config import steps_per_epoch


def epoch_order(seed, epoch, n, shuffle=True):
    """The order in which epoch ``epoch`` visits the ``n`` training images."""
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def training_input(x, y, batch_size, seed, first_epoch, one_hot, backend, flip_crop=None):
    """``(data, steps_per_epoch, callbacks)`` for ``fit``: the batches of every epoch from
    ``first_epoch`` on, in ``epoch_order``; flipped and cropped by ``flip_crop`` (a
    ``RandomFlipCrop``; TensorFlow only) if given."""
    if backend == "tensorflow":
        from suite.runtime import tf_batches
        epoch = EpochCounter(first_epoch)
        data = tf_batches(x, y, batch_size, seed, epoch, one_hot, flip_crop)
        return data, steps_per_epoch(len(x), batch_size), [EpochOrder(epoch, first_epoch)]
    if flip_crop is not None:
        raise ValueError("flip-and-crop in the input needs the tf.data input (TensorFlow)")
    batches = Batches(x, y, batch_size, seed=seed, one_hot=one_hot)
    return batches, None, [EpochOrder(batches, first_epoch)]


def validation_input(x, y, batch_size, backend):
    """``(validation_data, validation_batch_size)`` for ``fit``: a ``tf.data`` dataset under
    TensorFlow (``suite.runtime.tf_eval_batches``), the arrays elsewhere."""
    if backend == "tensorflow":
        from suite.runtime import tf_eval_batches
        return tf_eval_batches(x, y, batch_size), None
    return (x, y), batch_size


class EpochCounter:
    """The epoch that the tf.data input's next pass serves."""

    def __init__(self, first):
        self.next = first

    def start(self, epoch):
        self.next = epoch

    def take(self):
        """The epoch of a pass that begins now."""
        self.next += 1
        return self.next - 1


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, seed=0, shuffle=True, one_hot=False):
        super().__init__()
        self.x, self.y = x, y
        self.batch_size, self.seed, self.shuffle, self.one_hot = batch_size, seed, shuffle, one_hot
        self.start(0)

    def start(self, epoch):
        """The next batch served is batch 0 of ``epoch``."""
        self.epoch, self._next = epoch, 0
        self.order = epoch_order(self.seed, epoch, len(self.x), self.shuffle)

    def __len__(self):
        return steps_per_epoch(len(self.x), self.batch_size)

    def __getitem__(self, i):
        if i == 0 and self._next == len(self):
            self.start(self.epoch + 1)
        self._next = i + 1
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        y = self.y[idx]
        if self.one_hot:
            y = np.eye(10, dtype="float32")[y]
        return np.take(self.x, idx, axis=0), y


class EpochOrder(keras.callbacks.Callback):
    """Starts the input at the run's first epoch (``initial_epoch`` when resuming) when
    ``fit`` begins, after anything that looked at the data before (under a
    ``tf.distribute`` strategy Keras takes one batch to build the model)."""

    def __init__(self, feeder, initial_epoch):
        super().__init__()
        self.feeder, self.initial_epoch = feeder, initial_epoch

    def on_train_begin(self, logs=None):
        self.feeder.start(self.initial_epoch)
