"""The CIFAR-10 loader's three layouts, stratified subsets and splits, statistics, augmentation."""

import io
import pickle
import tarfile

import keras
import numpy as np
import pytest

from suite.data import TRAIN_BATCHES, channel_stats, load_cifar10, prepare, stratified_indices, stratified_split
from suite.config import DEFAULTS
from suite.preprocessing import RandomPadCrop, Standardize


def batch_bytes(images, labels):
    """One batch in the official layout: rows of 3072 bytes, the R plane, then G, then B."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"data": data, b"labels": list(map(int, labels)), b"batch_label": b"x"})


@pytest.fixture(scope="module")
def small(cifar):
    """20 real images per official file, as (name -> (images, labels))."""
    files = {name: (cifar.x_train[i * 10000:i * 10000 + 20], cifar.y_train[i * 10000:i * 10000 + 20])
             for i, name in enumerate(TRAIN_BATCHES)}
    files["test_batch"] = (cifar.x_test[:20], cifar.y_test[:20])
    return files


def test_folder_tarball_and_npz_give_the_same_images(small, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    tar_path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, (x, y) in small.items():
            raw = batch_bytes(x, y)
            (folder / name).write_bytes(raw)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    from_folder = load_cifar10(folder)
    from_parent = load_cifar10(tmp_path)  # the folder that holds cifar-10-batches-py
    from_tar = load_cifar10(tar_path)
    np.savez(tmp_path / "c.npz", x_train=from_folder.x_train, y_train=from_folder.y_train,
             x_test=from_folder.x_test, y_test=from_folder.y_test)
    from_npz = load_cifar10(tmp_path / "c.npz")
    expected_x = np.concatenate([small[n][0] for n in TRAIN_BATCHES])
    for data in (from_folder, from_parent, from_tar, from_npz):
        np.testing.assert_array_equal(data.x_train, expected_x)
        np.testing.assert_array_equal(data.x_test, small["test_batch"][0])
        assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int32


def test_real_data_layout_and_statistics(cifar):
    assert cifar.x_train.shape == (50000, 32, 32, 3) and cifar.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(cifar.y_train).tolist() == [5000] * 10
    mean, std = channel_stats(cifar.x_train)
    # the published per-channel training mean of CIFAR-10 (shared/data/README.md)
    assert np.array(mean) / 255 == pytest.approx([0.49139968, 0.48215841, 0.44653091], abs=1e-6)
    assert std == pytest.approx(cifar.x_train.reshape(-1, 3).std(axis=0), rel=1e-6)


def test_stratified_subset_and_held_out_split(cifar):
    idx = stratified_indices(cifar.y_train, 7, seed=3)
    assert np.bincount(cifar.y_train[idx]).tolist() == [7] * 10
    assert np.array_equal(idx, stratified_indices(cifar.y_train, 7, seed=3))
    keep, held = stratified_split(cifar.y_train, 0.1, seed=3)
    assert len(held) == 5000 and np.bincount(cifar.y_train[held]).tolist() == [500] * 10
    assert not set(keep) & set(held) and len(keep) + len(held) == 50000


def test_prepare_holds_out_validation_and_standardises_on_the_training_part():
    cfg = dict(DEFAULTS["data"], subset=50, validation=0.2, normalize="standardize")
    splits = prepare(cfg, seed=0)
    assert len(splits.x_train) == 400 and len(splits.x_val) == 100 and len(splits.x_test) == 10000
    assert splits.mean == pytest.approx(channel_stats(splits.x_train)[0])
    assert "20%" in splits.validation


def test_pad_and_crop_gives_shifted_copies_with_zero_fill(cifar):
    x = keras.ops.convert_to_tensor(cifar.x_test[:32].astype("float32"))
    out = keras.ops.convert_to_numpy(RandomPadCrop(3, seed=1)(x, training=True))
    src = cifar.x_test[:32].astype("float32")
    shifted = 0
    for image, result in zip(src, out):
        padded = np.pad(image, ((3, 3), (3, 3), (0, 0)))
        matches = [(dy, dx) for dy in range(7) for dx in range(7)
                   if np.array_equal(padded[dy:dy + 32, dx:dx + 32], result)]
        assert matches, "not a shifted copy"
        shifted += matches[0] != (3, 3)
    assert shifted > 16  # most images moved
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(RandomPadCrop(3, seed=1)(x, training=False)), src)


def test_standardize_layer(cifar):
    x = cifar.x_test[:4]
    out = keras.ops.convert_to_numpy(Standardize([10, 20, 30], [2, 4, 5])(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(out, (x.astype("float32") - [10, 20, 30]) / [2, 4, 5], rtol=1e-6)
