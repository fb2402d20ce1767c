"""No file the suite reads runs code, and none can make it decode without bound."""

import collections
import io
import os
import pickle
import shlex
import struct
import subprocess
import sys
import tarfile
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from suite import data as datasets, safe_pickle
from suite.data import load_cifar10
from suite.errors import UserError
from suite.images import MAX_PIXELS, open_image
from test_robustness import CIFAR, linked_copy

REFUSED = f"({safe_pickle.HOLDS})"


class Payload:
    """What an attacker pickles: unpickling it calls os.system, which creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def official(name):
    """A real official file as plain pickle.load reads it (trusted: these are the official batches)."""
    with open(CIFAR / name, "rb") as f:
        return pickle.load(f, encoding="bytes")


def tarball(path, members):
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def one_line_error(path):
    with pytest.raises(UserError) as e:
        load_cifar10(path)
    assert "\n" not in str(e.value)
    return str(e.value)


# ---------------------------------------------------------------------------- real batches

@pytest.mark.parametrize("name", ["data_batch_1", "batches.meta"])
def test_official_files_unpickle_exactly_as_plain_pickle_does(name):
    with open(CIFAR / name, "rb") as f:
        ours = safe_pickle.load(f, name)
    theirs = official(name)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert type(ours[key]) is type(value)
        if isinstance(value, np.ndarray):
            assert ours[key].dtype == value.dtype and ours[key].tobytes() == value.tobytes()
        else:
            assert ours[key] == value


def test_numpy_1_module_names_are_read_too():
    batch = official("data_batch_1")
    raw = pickle.dumps(batch, protocol=3).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # the GLOBAL numpy 1 writes
    np.testing.assert_array_equal(safe_pickle.load(io.BytesIO(raw), "p")[b"data"], batch[b"data"])


def as_images(batch):
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(batch[b"labels"])


def test_real_folder_and_tarball_load_bit_for_bit(cifar, tmp_path):
    first, test = as_images(official("data_batch_1")), as_images(official("test_batch"))
    np.testing.assert_array_equal(cifar.x_train[:10000], first[0])
    np.testing.assert_array_equal(cifar.y_train[:10000], first[1])
    np.testing.assert_array_equal(cifar.x_test, test[0])
    np.testing.assert_array_equal(cifar.y_test, test[1])
    # the official data_batch_1 through a .tar.gz; the other members small, to keep the test fast
    few = pickle.dumps({b"data": official("test_batch")[b"data"][:10], b"labels": list(range(10))})
    members = {name: few for name in datasets.TRAIN_BATCHES[1:] + [datasets.TEST_BATCH]}
    from_tar = load_cifar10(tarball(tmp_path / "c.tar.gz", {"data_batch_1": (CIFAR / "data_batch_1").read_bytes(),
                                                           **members, "batches.meta": (CIFAR / "batches.meta").read_bytes()}))
    np.testing.assert_array_equal(from_tar.x_train[:10000], first[0])
    np.testing.assert_array_equal(from_tar.y_train[:10000], first[1])
    np.testing.assert_array_equal(from_tar.x_test, test[0][:10])
    assert from_tar.class_names == datasets.CLASS_NAMES


# ---------------------------------------------------------------------------- hostile batches

@pytest.mark.parametrize("where,name", [("folder", "data_batch_1"), ("folder", "batches.meta"),
                                        ("tar.gz", "data_batch_1")])
def test_a_batch_that_would_run_a_command_is_refused_before_it_runs(tmp_path, where, name):
    marker = tmp_path / "ran"
    evil = pickle.dumps({b"data": Payload(marker), b"labels": [0]})
    if where == "folder":
        path = linked_copy(tmp_path / "c", replace={name: evil})
    else:
        path = tarball(tmp_path / "c.tar.gz", {name: evil})
    assert one_line_error(path) == f"{path}/{name}: refused to load {os.system.__module__}.system {REFUSED}"
    assert not marker.exists()


def test_an_unexpected_global_is_refused_and_named(tmp_path):
    batch = official("test_batch")
    odd = pickle.dumps(collections.OrderedDict([(b"data", batch[b"data"]), (b"labels", batch[b"labels"])]))
    path = linked_copy(tmp_path / "c", replace={"test_batch": odd})
    assert one_line_error(path) == f"{path}/test_batch: refused to load collections.OrderedDict {REFUSED}"


class HugeArray:
    """numpy's _reconstruct asked for 10**12 bytes that the file does not hold."""

    def __reduce__(self):
        return np.ndarray.__reduce__(np.zeros(0))[0], (np.ndarray, (10 ** 12,), b"b")


def shared_lists(depth):
    """A list that pickles in a few bytes a level and expands to 2**(depth + 1) numbers."""
    level = [1, 1]
    for _ in range(depth):
        level = [level, level]
    return level


@pytest.mark.parametrize("batch,expected", [
    ({b"data": HugeArray(), b"labels": []}, "truncated or not a CIFAR-10 batch (UnpicklingError: _reconstruct"),
    ({b"data": shared_lists(24), b"labels": [0, 0]}, "expected a uint8 numpy image array and a list of integer labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": shared_lists(24)}, "a list of integer labels"),
], ids=["array larger than the file", "shared nested lists as data", "shared nested lists as labels"])
def test_a_batch_cannot_ask_for_memory_it_does_not_hold(tmp_path, batch, expected):
    raw = pickle.dumps(batch)
    assert len(raw) < 10_000
    path = linked_copy(tmp_path / "c", replace={"data_batch_2": raw})
    assert expected in one_line_error(path)


def test_batch_files_larger_than_any_official_one_are_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_BATCH_BYTES", 30_000_000)  # below the 30,720,000 bytes of a batch's pixels
    size = (CIFAR / "data_batch_1").stat().st_size
    assert one_line_error(CIFAR) == (f"{CIFAR}/data_batch_1: {size:,} bytes, more than a CIFAR-10 batch file "
                                     "(30,000,000 at most)")
    path = tarball(tmp_path / "c.tar.gz", {"data_batch_1": b"\0" * 30_000_001})
    assert one_line_error(path) == (f"{path}: member data_batch_1: 30,000,001 bytes, more than a CIFAR-10 batch "
                                    "file (30,000,000 at most)")


def test_train_dry_run_on_a_malicious_folder_exits_2_with_one_line(tmp_path):
    marker = tmp_path / "ran"
    path = linked_copy(tmp_path / "c", replace={"data_batch_1": pickle.dumps(Payload(marker))})
    proc = subprocess.run([sys.executable, "train.py", "--config", "configs/quickstart.yaml", "--dry-run",
                           "--set", "data.source=cifar10", "--set", f"data.path={path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {path}/data_batch_1: refused to load "
                                                f"{os.system.__module__}.system {REFUSED}"]
    assert not marker.exists()


# ---------------------------------------------------------------------------- images

def png_bytes(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return bytearray(buf.getvalue())


def declaring(png, width, height):
    """``png`` with its IHDR chunk saying width x height (and a matching CRC)."""
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def test_a_real_image_round_trips_through_png(fixed_batch, tmp_path):
    image = fixed_batch[0][0]
    (tmp_path / "x.png").write_bytes(png_bytes(image))
    got = open_image(tmp_path / "x.png")
    assert got.dtype == np.uint8 and got.shape == (32, 32, 3)
    np.testing.assert_array_equal(got, image)


@pytest.mark.parametrize("make,expected", [
    (lambda png: declaring(png, 100_000, 100_000), f"declares more than {MAX_PIXELS:,} pixels; refused before decoding"),
    (lambda png: declaring(png, 8192, 8193), f"declares more than {MAX_PIXELS:,} pixels"),  # just over: PIL only warns
    (lambda png: bytes(png[:60]), "not a readable PNG or JPEG image (OSError"),
    (lambda png: (CIFAR / "batches.meta").read_bytes(), "not a readable PNG or JPEG image (UnidentifiedImageError"),
], ids=["100000x100000", "one row over the limit", "truncated", "not an image"])
def test_bad_images_give_one_line_naming_the_file(fixed_batch, tmp_path, make, expected):
    path = tmp_path / "x.png"
    path.write_bytes(make(png_bytes(fixed_batch[0][0])))
    assert path.stat().st_size < 4000
    with pytest.raises(UserError) as e:
        open_image(path)
    assert str(e.value).startswith(f"{path}: ") and expected in str(e.value) and "\n" not in str(e.value)
