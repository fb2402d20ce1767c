"""TrainingMonitor: the history and the learning curves of a run, rewritten every epoch.

After the study project's callback (PyImageSearch, *Deep Learning for Computer Vision
with Python*): after every epoch it appends the epoch's logs to a JSON history and
redraws one PNG of the curves. Here both files are replaced atomically, values are
plain JSON numbers, and on resume the stored history is cut back to the last epoch the
training state holds, so the curves continue without duplicates.

Each row also records the epoch's timing, which Keras' logs lack: ``epoch_time``
(seconds, validation included), ``validation_time`` (seconds of it),
``train_images_per_sec`` (training batches only) and ``wall_clock`` (Unix time at the
epoch's end; the gap between two epochs counts everything, checkpoints and plots included).

The PNG is drawn on a background thread, started when the next epoch begins: a few
hundred ms of matplotlib would otherwise stall training, and would slow the checkpoint
callbacks that run right after this one (they share the GIL). It still takes CPU from
training (``python bench/checkpoints.py`` measures it), so the drawing gets at most
``draw_share`` of the wall clock: after a draw of d seconds the next one waits until
d / draw_share seconds have passed since that one began. Short epochs (a subset, a fast
GPU) are drawn every few epochs, always the newest history. ``on_train_end`` (and
``wait``) draw the last epoch and wait for it. A drawing that fails (a full disk:
``suite.core.errors.WriteError``) is raised in the training thread, when the next epoch
begins or by ``wait``.
"""

import json
import math
import threading
import time
from pathlib import Path

import keras

from suite.analysis.plots import plot_run
from suite.core.atomic import write_json


def load_history(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


class TrainingMonitor(keras.callbacks.Callback):
    def __init__(self, history_path, plot_path, title, num_train, start_epoch=0, draw_share=0.02):
        super().__init__()
        self.history_path, self.plot_path, self.title = Path(history_path), Path(plot_path), title
        self.num_train = num_train
        history = load_history(self.history_path)
        keep = sum(1 for e in history.get("epoch", []) if e <= start_epoch)  # epochs are 1-based
        self.history = {k: v[:keep] for k, v in history.items()}
        self._pending = None
        self._failure = None  # of the drawing thread, raised in the training thread
        self._wake = threading.Condition()
        self._drawer = None
        self.draw_share, self._next_draw, self._flushing = draw_share, 0.0, False

    def on_test_begin(self, logs=None):  # validation starts when the training batches are done
        self.train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        timing = {"epoch_time": now - self.start, "validation_time": now - (self.train_end or now),
                  "wall_clock": time.time(),
                  "train_images_per_sec": self.num_train / max((self.train_end or now) - self.start, 1e-9)}
        row = {"epoch": epoch + 1, **{k: _number(v) for k, v in (logs or {}).items()}, **timing}
        length = len(self.history.get("epoch", []))
        for key in set(self.history) | set(row):
            column = self.history.setdefault(key, [None] * length)
            column.append(row.get(key))
        write_json(self.history_path, self.history)
        with self._wake:
            self._pending = ({k: list(v) for k, v in self.history.items()}, f"{self.title} - epoch {epoch + 1}")

    def on_epoch_begin(self, epoch, logs=None):
        self._raise_failure()
        self.start, self.train_end = time.perf_counter(), None
        self._draw()

    def on_train_end(self, logs=None):
        self.wait()

    def wait(self):
        """Draw the newest history, if not drawn yet, and wait until the PNG is written."""
        with self._wake:
            self._flushing = True
        self._draw()
        with self._wake:
            while self._drawer is not None or (self._pending is not None and self._failure is None):
                self._wake.wait()
            self._flushing = False
        self._raise_failure()

    def abandon(self):
        """After an error: draw nothing more, and wait until a drawing under way ends; its
        own failure is dropped (the same full disk, most likely: the first error is the one
        to report)."""
        with self._wake:
            self._pending = None
            while self._drawer is not None:
                self._wake.wait()
            self._failure = None

    def _raise_failure(self):
        with self._wake:
            failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _draw(self):
        with self._wake:
            due = self._flushing or time.perf_counter() >= self._next_draw
            if self._pending is not None and self._drawer is None and due:
                self._drawer = threading.Thread(target=self._draw_loop, daemon=True, name="curves")
                self._drawer.start()

    def _draw_loop(self):
        while True:
            with self._wake:
                job, self._pending = self._pending, None
                if job is None:
                    self._drawer = None
                    self._wake.notify_all()
                    return
            history, title = job
            start = time.perf_counter()
            try:
                plot_run(history, self.plot_path, title)
                failure = None
            except Exception as e:
                failure = e
            with self._wake:
                self._next_draw = start + (time.perf_counter() - start) / self.draw_share
                self._failure = self._failure or failure
                if failure or not self._flushing:  # else a newer history waits for the next epoch that is due
                    self._drawer = None
                    self._wake.notify_all()
                    return


def _number(value):
    value = float(value)
    return value if math.isfinite(value) else None
