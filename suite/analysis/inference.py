"""Softmax outputs for a whole test set, batch by batch, with a progress bar and an
honest images/s (the first, compiling batch left out)."""

import contextlib
import sys
import time

import keras
import numpy as np

from suite.analysis.tta import combine, views


def predict(model, x, batch_size, jit_compile=False, progress=True, tta=0):
    """Softmax outputs for uint8 images ``x``; ``(probs, images/s, seconds)``. With ``tta``
    (a ``suite.analysis.tta`` level) every view of ``x`` is predicted and the views combined;
    images/s then counts the images of ``x``, each with all its views.

    Under TensorFlow a ``tf.function`` with a fixed signature (uint8, any batch) is traced
    once and fed slices of ``x`` (no float copy of the set). The first batch, which
    traces the function and builds the oneDNN kernels, is left out of the timing. A
    ``keras.utils.Progbar`` shows the progress as Keras' own ``predict`` does, but on
    stderr, so that stdout stays the report (``Progress``; none with ``progress=False``).
    """
    step = _step_function(model, x, jit_compile)
    weighted = views(x, tta)
    progress = Progress(len(x) * len(weighted) if progress else None)
    outputs, seconds, timed = [], 0.0, 0
    for v, (weight, images) in enumerate(weighted):
        out, view_seconds, view_timed = _predict_view(step, np.ascontiguousarray(images), batch_size,
                                                      model.output_shape[-1], progress, v * len(x))
        outputs.append((weight, out))
        seconds, timed = seconds + view_seconds, timed + view_timed
    probs = outputs[0][1] if len(outputs) == 1 else combine(outputs)
    return probs, timed / len(weighted) / seconds, seconds


def _predict_view(step, x, batch_size, classes, progress, done_before):
    """``(probs, seconds, images timed)`` of one view: every batch but the first, which compiles."""
    out = np.empty((len(x), classes), np.float32)
    out[:batch_size] = step(x[:batch_size])
    progress.update(done_before + min(batch_size, len(x)))
    start = time.perf_counter()
    for i in range(batch_size, len(x), batch_size):
        out[i:i + batch_size] = step(x[i:i + batch_size])
        progress.update(done_before + min(i + batch_size, len(x)))
    seconds, timed = time.perf_counter() - start, len(x) - batch_size
    if timed <= 0:  # a single batch: time it once more, now that it is compiled
        start = time.perf_counter()
        step(x[:batch_size])
        seconds, timed = time.perf_counter() - start, len(x)
    return out, seconds, timed


_STEPS = {}  # (id(model), jit_compile, image shape) -> (model, step): traced once for many calls


def _step_function(model, x, jit_compile):
    """The traced forward pass, the same one for every call on ``model`` (evaluate.py's
    corruptions predict 75 sets with it)."""
    key = (id(model), jit_compile, x.shape[1:])
    if key in _STEPS and _STEPS[key][0] is model:
        return _STEPS[key][1]
    if keras.backend.backend() != "tensorflow":
        step = lambda batch: np.asarray(model.predict_on_batch(batch))  # noqa: E731
    else:
        import tensorflow as tf  # lazy: TensorFlow only under its backend
        fn = tf.function(lambda b: model(b, training=False), jit_compile=jit_compile,
                         input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.uint8)])
        step = lambda batch: fn(batch).numpy()  # noqa: E731
    _STEPS[key] = (model, step)
    return step


class Progress:
    """Images done, on stderr: a ``keras.utils.Progbar`` on a terminal; in a log (stderr
    not a terminal, where the bar's redrawing would pile up on one line) a line at each
    tenth of the total; nothing for a total of None."""

    def __init__(self, total):
        self.total, self.tenths, self.start = total, 0, time.perf_counter()
        self.bar = None
        if total is not None and sys.stderr.isatty():
            with contextlib.redirect_stdout(sys.stderr):  # Progbar draws on sys.stdout and asks it if it is a terminal
                self.bar = keras.utils.Progbar(total, verbose=1, unit_name="image")

    def update(self, done):
        if self.bar is not None:
            with contextlib.redirect_stdout(sys.stderr):
                self.bar.update(done)
        elif self.total and done * 10 // self.total > self.tenths:
            self.tenths = done * 10 // self.total
            print(f"predicted {done:,}/{self.total:,} images ({time.perf_counter() - self.start:.0f} s)",
                  file=sys.stderr, flush=True)
