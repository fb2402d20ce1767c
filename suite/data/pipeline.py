"""The training input: shuffled batches of uint8 images, repeatable per epoch.

The order of epoch ``e`` depends only on ``(seed, e)`` (``epoch_order``), never on how
many epochs this process has run, so a resumed run sees exactly the batches an
uninterrupted one would.

``training_input`` picks the feeder. Under TensorFlow it is a ``tf.data`` dataset of one
epoch (``tf_batches``) that ``fit`` passes over once per epoch: it gathers batches in
C++ while the step runs, where a ``PyDataset`` costs Python time every batch
(docs/performance.md, "What makes the CPU path fast"). Under other backends it is
``Batches``, a ``keras.utils.PyDataset``. TensorFlow is imported only by the ``tf_*`` functions.

Keras asks for the first batches of the next epoch before the epoch callbacks run (it
opens the next pass as soon as the last batch is taken, and the input prefetches), so
the epoch cannot be set by a callback. Instead both feeders count passes: the tf.data
input counts ``iter`` calls, ``Batches`` counts requests for batch 0 after the last
batch. ``EpochOrder`` only sets the first epoch when ``fit`` begins.
"""

import math

import keras
import numpy as np

from suite.data.preprocessing import ALTERNATING


def steps_per_epoch(num_train, batch_size):
    return math.ceil(num_train / batch_size)


def epoch_order(seed, epoch, n, shuffle=True):
    """The order in which epoch ``epoch`` visits the ``n`` training images."""
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def training_input(x, y, batch_size, seed, first_epoch, one_hot, backend, flip_crop=None):
    """``(data, steps_per_epoch, callbacks)`` for ``fit``: the batches of every epoch from
    ``first_epoch`` on, in ``epoch_order``; flipped and cropped by ``flip_crop`` (a
    ``RandomFlipCrop``) if given. ``one_hot``: the number of classes to
    one-hot encode the labels into, or 0 for sparse labels."""
    if backend == "tensorflow":
        epoch = EpochCounter(first_epoch)
        data = tf_batches(x, y, batch_size, seed, epoch, one_hot, flip_crop)
        return data, steps_per_epoch(len(x), batch_size), [EpochOrder(epoch, first_epoch)]
    batches = Batches(x, y, batch_size, seed=seed, one_hot=one_hot, flip_crop=flip_crop)
    return batches, None, [EpochOrder(batches, first_epoch)]


def validation_input(x, y, batch_size, backend):
    """``(validation_data, validation_batch_size)`` for ``fit``: a ``tf.data`` dataset under
    TensorFlow (``tf_eval_batches``), the arrays elsewhere."""
    if backend == "tensorflow":
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
    """The input under backends other than TensorFlow. With ``flip_crop`` (a
    ``RandomFlipCrop``) each batch is flipped and cropped here, in NumPy, with the moves
    seeded per ``(seed, epoch, batch)`` like ``tf_batches``' (NumPy's numbers, not TensorFlow's)."""

    def __init__(self, x, y, batch_size, seed=0, shuffle=True, one_hot=0, flip_crop=None):
        super().__init__()
        self.x, self.y = x, y
        self.batch_size, self.seed, self.shuffle, self.one_hot = batch_size, seed, shuffle, one_hot
        self.flip_crop = flip_crop
        if flip_crop is not None:
            flip_crop.build((None, *x.shape[1:]))
            self.pixels = np.asarray(keras.ops.convert_to_numpy(flip_crop.padded(x))).reshape(-1, x.shape[-1])
            self.first_flips = flip_crop.first_flips(len(x))
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
            y = np.eye(self.one_hot, dtype="float32")[y]
        return self.images(idx, i), y

    def images(self, idx, batch):
        if self.flip_crop is None:
            return np.take(self.x, idx, axis=0)
        fc = self.flip_crop
        rng = np.random.default_rng([self.seed, self.epoch, batch])
        if fc.flip == ALTERNATING:
            moves = fc.move(rng.integers(0, fc.shifts, len(idx)), (self.first_flips[idx] + self.epoch) % 2)
        else:
            moves = rng.integers(0, fc.moves, len(idx))
        rows = fc.table[moves] + idx[:, None] * fc.padded_size  # RandomFlipCrop.apply, in NumPy
        return self.pixels[rows.reshape(-1)].reshape(-1, *self.x.shape[1:])


class EpochOrder(keras.callbacks.Callback):
    """Starts the input at the run's first epoch (``initial_epoch`` when resuming) when
    ``fit`` begins, after anything that looked at the data before (under a
    ``tf.distribute`` strategy Keras takes one batch to build the model)."""

    def __init__(self, feeder, initial_epoch):
        super().__init__()
        self.feeder, self.initial_epoch = feeder, initial_epoch

    def on_train_begin(self, logs=None):
        self.feeder.start(self.initial_epoch)


def tf_batches(x, y, batch_size, seed, epoch, one_hot, flip_crop=None):
    """A ``tf.data`` dataset of one epoch of ``(uint8 images, labels)`` batches, in
    ``epoch_order``. Each pass over it (each ``iter``) serves the next epoch that
    ``epoch`` (an ``EpochCounter``) counts; train.py's ``EpochOrder`` callback sets the
    first when ``fit`` begins. Its cardinality is known, so ``fit`` opens one pass per
    epoch, as soon as an epoch's last batch is taken, and a multi-step execution
    (``steps_per_execution``) stops at the epoch's end instead of running on into the
    next one. Only the order is made in Python, once per pass.

    With ``flip_crop`` (a ``RandomFlipCrop`` layer) each batch is flipped and cropped
    here, by one gather from a copy of ``x`` padded once, with each image's move drawn
    from ``(seed, epoch, step)``: a resumed run draws what an uninterrupted one would,
    and the order of tf.data's parallel calls does not matter."""
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    n, steps = len(x), steps_per_epoch(len(x), batch_size)
    labels = tf.constant(y)
    if flip_crop is None:
        images = tf.constant(x)
    else:
        flip_crop.build((None, *x.shape[1:]))
        pixels = tf.reshape(flip_crop.padded(tf.constant(x)), (-1, x.shape[-1]))
        first_flips = tf.constant(flip_crop.first_flips(n))

    def this_epoch():
        number = epoch.take()
        yield number, epoch_order(seed, number, n)

    def batches_of(epoch_number, order):
        return tf.data.Dataset.range(steps).map(
            lambda i: (epoch_number, i, order[i * batch_size:(i + 1) * batch_size]))

    def gather(epoch_number, step, idx):
        if flip_crop is None:
            batch_images = tf.gather(images, idx)
        else:
            key = tf.random.experimental.stateless_fold_in(tf.stack([tf.cast(seed, tf.int64), epoch_number]), step)
            if flip_crop.flip == ALTERNATING:
                shifts = tf.random.stateless_uniform(tf.shape(idx), key, 0, flip_crop.shifts, tf.int32)
                moves = flip_crop.move(shifts, (tf.gather(first_flips, idx) + tf.cast(epoch_number % 2, tf.int32)) % 2)
            else:
                moves = tf.random.stateless_uniform(tf.shape(idx), key, 0, flip_crop.moves, tf.int32)
            batch_images = flip_crop.apply(pixels, idx, moves, take=tf.gather)
        batch_labels = tf.gather(labels, idx)
        return batch_images, tf.one_hot(batch_labels, one_hot) if one_hot else batch_labels

    signature = (tf.TensorSpec([], tf.int64), tf.TensorSpec([n], tf.int64))
    ds = tf.data.Dataset.from_generator(this_epoch, output_signature=signature).flat_map(batches_of)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    return _without_autotune(ds.apply(tf.data.experimental.assert_cardinality(steps)))


def tf_eval_batches(x, y, batch_size):
    """The validation data as ``fit`` would batch it, as a ``tf.data`` dataset without autotune."""
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    return _without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(2))


def _without_autotune(ds):
    """``ds`` with tf.data's autotuning off. ``fit`` opens a new iterator over its data
    every epoch, and deleting an autotuned iterator waits for the autotuning thread,
    which stalled short epochs by up to a second (docs/performance.md);
    without autotune the input was no slower."""
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
