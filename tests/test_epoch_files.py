"""The files train.py rewrites every epoch: the best checkpoint and the curves."""

import time

import keras
import numpy as np

from suite import models
from suite.callbacks import training_monitor
from suite.callbacks.checkpoints import BestCheckpoint
from suite.data.preprocessing import standardize, wrap


def test_best_checkpoint_is_keras_own_file_written_atomically(fixed_batch, tmp_path):
    """The best checkpoint is ``save_weights``' file, loads into a fresh network, leaves no
    temporary behind, and is left alone when the epoch is no better."""
    x, y = fixed_batch
    net = models.create("resnet20")
    model = wrap(net, standardize([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    path = tmp_path / "best.weights.h5"
    best = BestCheckpoint(net, path, "val_loss", "min",
                          lambda epoch, value: {"checkpoint": {"kind": "best", "epoch": epoch, "value": value}})
    best.set_model(model)
    best.on_epoch_end(0, {"val_loss": 1.5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "best.weights.h5"]
    fresh = models.create("resnet20")
    fresh.load_weights(str(path))
    images = (x.astype("float32") - 120) / 64
    np.testing.assert_array_equal(fresh.predict_on_batch(images), net.predict_on_batch(images))
    written = path.read_bytes()
    model.fit(x, y, verbose=0)
    best.on_epoch_end(1, {"val_loss": 1.7})  # worse: nothing rewritten
    assert path.read_bytes() == written and (best.best_epoch, best.best) == (1, 1.5)


def run_epochs(monitor, epochs, gap):
    for epoch in range(epochs):
        monitor.on_epoch_begin(epoch)
        time.sleep(gap)
        monitor.on_test_begin()
        monitor.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1)})
    monitor.on_train_end()


def test_monitor_draws_every_epoch_within_its_share_and_always_the_last(tmp_path, monkeypatch):
    drawn = []

    def slow_plot(history, path, title):
        time.sleep(0.05)
        drawn.append(title)
        path.write_bytes(b"png")

    monkeypatch.setattr(training_monitor, "plot_run", slow_plot)
    # a share of 1%: after a 0.05 s draw the next is due 5 s later, so 4 epochs of 0.1 s draw twice
    sparing = training_monitor.TrainingMonitor(tmp_path / "h.json", tmp_path / "c.png", "run", 100, draw_share=0.01)
    run_epochs(sparing, 4, gap=0.1)
    assert drawn == ["run - epoch 1", "run - epoch 4"]
    assert training_monitor.load_history(tmp_path / "h.json")["epoch"] == [1, 2, 3, 4]
    drawn.clear()
    # a share of 100%: the next draw is due as soon as the last ends, which is before the epoch does
    eager = training_monitor.TrainingMonitor(tmp_path / "h2.json", tmp_path / "c2.png", "run", 100, draw_share=1.0)
    run_epochs(eager, 4, gap=0.25)
    assert drawn == [f"run - epoch {e}" for e in (1, 2, 3, 4)]
