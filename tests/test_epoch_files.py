"""The files train.py rewrites every epoch, written cheaply: the best checkpoint, the
training state and the curves."""

import time

import h5py
import keras
import numpy as np

import models
from callbacks import training_monitor
from callbacks.checkpoints import WeightsWriter, dataset_names, numpy_values
from suite.preprocessing import wrap


def datasets(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in dataset_names(f)}


def same_datasets(a, b):
    a, b = datasets(a), datasets(b)
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_weights_writer_writes_the_file_keras_writes(fixed_batch, tmp_path):
    x, y = fixed_batch
    net = models.create("resnet20")
    model = wrap(net, [125.3, 123.0, 113.9], [63.0, 62.1, 66.7])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    writer = WeightsWriter(net)
    for step in range(2):  # the first save learns the layout, the second only copies bytes
        before = numpy_values(net.variables)
        writer.save(tmp_path / "fast.weights.h5")
        assert all(np.array_equal(a, b) for a, b in zip(before, numpy_values(net.variables)))
        net.save_weights(str(tmp_path / "keras.weights.h5"))
        assert same_datasets(tmp_path / "fast.weights.h5", tmp_path / "keras.weights.h5")
        fresh = models.create("resnet20")
        fresh.load_weights(str(tmp_path / "fast.weights.h5"))
        images = (x.astype("float32") - 120) / 64
        np.testing.assert_array_equal(fresh.predict_on_batch(images), net.predict_on_batch(images))
        model.fit(x, y, verbose=0)
    assert len(writer.layout) == len(net.variables)  # the fast path was taken


class Empty(keras.layers.Layer):
    """A layer with a weight of no elements, which cannot carry a probe number."""

    def build(self, shape):
        self.nothing = self.add_weight(shape=(0,), initializer="zeros")

    def call(self, x):
        return x


def test_weights_writer_falls_back_to_keras_when_a_variable_cannot_be_told_apart(tmp_path):
    inputs = keras.Input((4,))
    net = keras.Model(inputs, keras.layers.Dense(2)(Empty()(inputs)))
    writer = WeightsWriter(net)
    writer.save(tmp_path / "a.weights.h5")
    net.save_weights(str(tmp_path / "b.weights.h5"))
    assert writer.layout == [] and same_datasets(tmp_path / "a.weights.h5", tmp_path / "b.weights.h5")


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
