"""The CIFAR-10 loader's three layouts, the official batches through the safe unpickler,
stratified subsets and splits, statistics, augmentation."""

import io
import pickle
import tarfile

import keras
import numpy as np
import pytest

from conftest import batch_bytes
from suite.data import cifar10 as datasets
from suite.core import safe_pickle
from suite.data.cifar10 import TRAIN_BATCHES, channel_stats, load_cifar10, prepare, stratified_indices, stratified_split
from suite.config import DEFAULTS
from suite.data.preprocessing import RandomFlipCrop, Standardize
from test_hostile_files import one_line_error, tarball


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


def official(folder, name):
    """An official file as plain pickle.load reads it (trusted: these are the official batches)."""
    with open(folder / name, "rb") as f:
        return pickle.load(f, encoding="bytes")


@pytest.mark.parametrize("name", ["data_batch_1", "batches.meta"])
def test_official_files_unpickle_exactly_as_plain_pickle_does(cifar_dir, name):
    with open(cifar_dir / name, "rb") as f:
        ours = safe_pickle.load(f, name)
    theirs = official(cifar_dir, name)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert type(ours[key]) is type(value)
        if isinstance(value, np.ndarray):
            assert ours[key].dtype == value.dtype and ours[key].tobytes() == value.tobytes()
        else:
            assert ours[key] == value


def as_images(batch):
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(batch[b"labels"])


def test_real_folder_and_tarball_load_bit_for_bit(cifar, cifar_dir, tmp_path):
    first, test = as_images(official(cifar_dir, "data_batch_1")), as_images(official(cifar_dir, "test_batch"))
    np.testing.assert_array_equal(cifar.x_train[:10000], first[0])
    np.testing.assert_array_equal(cifar.y_train[:10000], first[1])
    np.testing.assert_array_equal(cifar.x_test, test[0])
    np.testing.assert_array_equal(cifar.y_test, test[1])
    # the official data_batch_1 through a .tar.gz; the other members small, to keep the test fast
    few = pickle.dumps({b"data": official(cifar_dir, "test_batch")[b"data"][:10], b"labels": list(range(10))})
    members = {name: few for name in datasets.TRAIN_BATCHES[1:] + [datasets.TEST_BATCH]}
    from_tar = load_cifar10(tarball(tmp_path / "c.tar.gz", {"data_batch_1": (cifar_dir / "data_batch_1").read_bytes(),
                                                           **members, "batches.meta": (cifar_dir / "batches.meta").read_bytes()}))
    np.testing.assert_array_equal(from_tar.x_train[:10000], first[0])
    np.testing.assert_array_equal(from_tar.y_train[:10000], first[1])
    np.testing.assert_array_equal(from_tar.x_test, test[0][:10])
    assert from_tar.class_names == datasets.CLASS_NAMES


def test_batch_files_larger_than_any_official_one_are_refused_unread(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_BATCH_BYTES", 30_000_000)  # below the 30,720,000 bytes of a batch's pixels
    size = (cifar_dir / "data_batch_1").stat().st_size
    assert one_line_error(cifar_dir) == (f"{cifar_dir}/data_batch_1: {size:,} bytes, more than a CIFAR-10 batch "
                                         "file (30,000,000 at most)")
    path = tarball(tmp_path / "c.tar.gz", {"data_batch_1": b"\0" * 30_000_001})
    assert one_line_error(path) == (f"{path}: member data_batch_1: 30,000,001 bytes, more than a CIFAR-10 batch "
                                    "file (30,000,000 at most)")


def test_stratified_subset_and_held_out_split(cifar):
    idx = stratified_indices(cifar.y_train, 7, seed=3)
    assert np.bincount(cifar.y_train[idx]).tolist() == [7] * 10
    assert np.array_equal(idx, stratified_indices(cifar.y_train, 7, seed=3))
    keep, held = stratified_split(cifar.y_train, 0.1, seed=3)
    assert len(held) == 5000 and np.bincount(cifar.y_train[held]).tolist() == [500] * 10
    assert not set(keep) & set(held) and len(keep) + len(held) == 50000


def test_prepare_holds_out_validation_and_standardises_on_the_training_part(cifar_dir):
    cfg = dict(DEFAULTS["data"], subset=50, validation=0.2, normalize="standardize")
    splits = prepare(cfg, seed=0)
    assert len(splits.x_train) == 400 and len(splits.x_val) == 100 and len(splits.x_test) == 10000
    assert splits.mean == pytest.approx(channel_stats(splits.x_train)[0])
    assert "20%" in splits.validation


@pytest.mark.parametrize("flip", [False, True])
def test_pad_and_crop_gives_shifted_copies_with_zero_fill(cifar, flip):
    src = cifar.x_test[:64].astype("float32")
    layer = RandomFlipCrop(3, flip=flip, seed=1)
    out = keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(src), training=True))
    shifted = mirrored = 0
    for image, result in zip(src, out):
        padded = np.pad(image, ((3, 3), (3, 3), (0, 0)))
        matches = [(dy, dx, m) for m in (False, True) for dy in range(7) for dx in range(7)
                   if np.array_equal((padded[:, ::-1] if m else padded)[dy:dy + 32, dx:dx + 32], result)]
        assert matches, "not a shifted (or mirrored) copy"
        shifted += matches[0][:2] != (3, 3)
        mirrored += all(m for _, _, m in matches)
    assert shifted > 32  # most images moved
    assert (16 < mirrored < 48) if flip else mirrored == 0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(src), training=False)), src)


def test_flip_alone_mirrors_about_half_the_images(cifar):
    src = cifar.x_test[:64].astype("float32")
    out = keras.ops.convert_to_numpy(RandomFlipCrop(0, flip=True, seed=2)(keras.ops.convert_to_tensor(src), training=True))
    same = [np.array_equal(o, s) for o, s in zip(out, src)]
    flipped = [np.array_equal(o, s[:, ::-1]) for o, s in zip(out, src)]
    assert all(a or b for a, b in zip(same, flipped)) and 16 < sum(flipped) < 48


@pytest.mark.parametrize("mean, std", [([10, 20, 30], [2, 4, 5]),      # per channel: full-shape terms
                                       ([0, 0, 0], [255, 255, 255]),    # `scale`: one product, no offset
                                       ([7, 7, 7], [3, 3, 3])])         # shared: scalar terms
def test_standardize_layer(cifar, mean, std):
    x = cifar.x_test[:4]
    out = keras.ops.convert_to_numpy(Standardize(mean, std)(keras.ops.convert_to_tensor(x)))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, (x.astype("float32") - mean) / std, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("backend", ["tensorflow", "other"])
def test_training_input_serves_each_epoch_in_its_seeded_order(cifar, backend):
    """Both feeders (tf.data under TensorFlow, the PyDataset elsewhere) give epoch e the
    order ``epoch_order(seed, e)``, from the first epoch they are started at, across epochs,
    called as ``fit`` calls them."""
    from suite.data.pipeline import epoch_order, training_input

    x, y = cifar.x_test[:50], cifar.y_test[:50]
    data, steps, callbacks = training_input(x, y, 16, seed=3, first_epoch=5, one_hot=False, backend=backend)
    callbacks[0].on_train_begin()
    if backend == "tensorflow":
        assert steps == 4 and int(data.cardinality()) == 4  # one epoch
        served = []
        for _ in range(2):  # fit opens one pass per epoch
            served += list(data)
    else:
        assert steps is None and len(data) == 4
        served = [data[i] for _ in range(2) for i in range(len(data))]
    images = np.concatenate([np.asarray(b[0]) for b in served])
    labels = np.concatenate([np.asarray(b[1]) for b in served])
    assert [len(b[0]) for b in served] == [16, 16, 16, 2] * 2
    expected = np.concatenate([epoch_order(3, 5, 50), epoch_order(3, 6, 50)])
    np.testing.assert_array_equal(images, x[expected])
    np.testing.assert_array_equal(labels, y[expected])
    assert not np.array_equal(epoch_order(3, 5, 50), epoch_order(3, 6, 50))


def _moves_of(images, results, pad, fill):
    """For each result, the (down, right, mirrored) moves of its image that give it."""
    moves = []
    for image, result in zip(images, results):
        padded = np.empty((32 + 2 * pad, 32 + 2 * pad, 3), image.dtype)
        padded[:] = fill
        padded[pad:pad + 32, pad:pad + 32] = image
        moves.append([(dy, dx, m) for m in (False, True) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                      if np.array_equal((padded[:, ::-1] if m else padded)[dy:dy + 32, dx:dx + 32], result)])
    return moves


def test_flip_crop_in_the_tf_data_input_is_seeded_per_epoch_and_step(cifar):
    """Under TensorFlow the input pipeline flips and crops uint8 batches, padding with the
    fill colour; the draws depend only on (seed, epoch, step), so a pipeline started at
    epoch 5 (a resumed run) serves exactly the batches an earlier-started one does."""
    from suite.data.pipeline import EpochCounter, tf_batches

    x, y = cifar.x_train[:48], np.arange(48).astype("int32")  # labels name the source image
    layer = RandomFlipCrop(4, flip=True, fill=(125, 123, 114), seed=0)
    first = tf_batches(x, y, 16, seed=3, epoch=EpochCounter(4), one_hot=False, flip_crop=layer)
    epoch4 = list(first)
    epoch5 = list(first)
    resumed = tf_batches(x, y, 16, seed=3, epoch=EpochCounter(5), one_hot=False, flip_crop=layer)
    assert len(epoch4) == len(epoch5) == 3
    for (a, la), (b, lb) in zip(epoch5, list(resumed), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
    served = np.concatenate([b.numpy() for b, _ in epoch4 + epoch5])
    sources = np.concatenate([lab.numpy() for _, lab in epoch4 + epoch5])
    assert served.dtype == np.uint8
    moves = _moves_of(x[sources], served, 4, (125, 123, 114))
    assert all(moves), "a served image is not a shifted (or mirrored) copy of its source"
    assert sum(m[0][:2] != (4, 4) for m in moves) > 60                  # most images moved
    assert 24 < sum(all(mv[2] for mv in m) for m in moves) < 72          # about half mirrored
    border = served[[i for i, m in enumerate(moves) if m[0][0] == 0], :4]  # shifted down by 4: top rows are fill
    assert border.size and (border == np.array([125, 123, 114], np.uint8)).all()


def test_flip_crop_in_the_model_pads_uint8_images_with_the_fill_colour(cifar):
    x = cifar.x_test[:64]
    out = keras.ops.convert_to_numpy(RandomFlipCrop(2, flip=False, fill=(9, 8, 7), seed=4)(
        keras.ops.convert_to_tensor(x), training=True))
    assert out.dtype == np.uint8
    moves = _moves_of(x, out, 2, (9, 8, 7))
    assert all(moves) and not any(mv[2] for m in moves for mv in m if len(m) == 1)
