"""Stopping cleanly: on Ctrl-C (SIGINT) or SIGTERM, and when the loss turns NaN.

Both stop in the middle of an epoch by raising out of ``fit``; the epoch that was
running is discarded, so the run folder keeps the state, checkpoint and history of the
last complete epoch, which is where ``--resume`` picks up.
"""

import math
import signal

import keras


class TrainingInterrupted(Exception):
    """Training was stopped by a signal; the last complete epoch is saved."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class StopOnSignal(keras.callbacks.Callback):
    """First SIGINT/SIGTERM: stop at the end of the current batch or the next one (the batch
    check runs on Keras' callback thread and is raised at the next batch; with
    ``steps_per_execution`` > 1, a batch here is an execution of that many steps).
    Second: stop at once (as soon as Python runs again)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    async_safe = True  # see StopOnNaN

    def __init__(self):
        super().__init__()
        self.received = None
        self.previous = {}

    def on_train_begin(self, logs=None):
        for sig in self.SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self):
        """Put back the handlers that were there before (also when training raised)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def _check(self, *args, **kwargs):
        if self.received:
            raise TrainingInterrupted(self.received)  # train.py restores the handlers (in the main thread)

    on_train_batch_end = on_test_batch_end = on_epoch_begin = _check


class StopAfterEpoch(keras.callbacks.Callback):
    """``--stop-after N``: end training after epoch N as a signal would, ready for ``--resume``.

    It must be the last callback, so that epoch N's checkpoints are written first.
    """

    def __init__(self, last_epoch):
        super().__init__()
        self.last_epoch = last_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.last_epoch:
            raise TrainingInterrupted(f"--stop-after {self.last_epoch}")


class StopOnNaN(keras.callbacks.Callback):
    """Raise TrainingDiverged when the loss is not finite (checked every ``every`` batches
    and at every epoch's end, before any checkpoint is written)."""

    # Keras runs the batch hooks of async-safe callbacks on a worker thread and raises
    # what they raise at the next batch (or at the epoch's end, before any epoch-end
    # callback). A callback with a synchronous batch hook makes Keras wait for every
    # step's logs instead, which cost ShallowNet about a tenth of its speed on the CPU
    # (docs/performance.md).
    async_safe = True

    def __init__(self, every):
        super().__init__()
        self.every = every
        self.epoch, self.next_check = 0, every

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.next_check = epoch, self.every

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1 Keras calls this once per execution, with its last batch.
        if batch + 1 >= self.next_check:
            self.next_check = batch + 1 + self.every
            self._check(logs, "loss", f"epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            self._check(logs, key, f"the end of epoch {epoch + 1}")

    @staticmethod
    def _check(logs, key, where):
        if logs and key in logs and not math.isfinite(float(logs[key])):
            raise TrainingDiverged(f"{key} became {float(logs[key])} at {where}")
