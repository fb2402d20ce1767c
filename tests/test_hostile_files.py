"""No file the suite reads runs code, and none can make it decode without bound: hostile
CIFAR-10 batches (in a folder of small random batches, or a .tar.gz) and hostile images.
The official batches through the same unpickler: tests/test_data.py."""

import collections
import io
import os
import pickle
import shlex
import struct
import tarfile
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import batch_bytes, write_batches
from suite.data import cifar10 as datasets
from suite.core import safe_pickle
from suite.data.cifar10 import SAMPLE_PATH, load_cifar10
from suite.core.errors import UserError
from suite.core.images import MAX_PIXELS, open_image

pytestmark = pytest.mark.fast

REFUSED = f"({safe_pickle.HOLDS})"


class Payload:
    """What an attacker pickles: unpickling it calls os.system, which creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def batches(folder, replace=None):
    """A CIFAR-10 folder of python batches in the official layout, 10 random images each, with
    ``replace``'s files (name -> bytes) in place of those."""
    x = np.random.default_rng(0).integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    write_batches(folder, x[:50], np.arange(50) % 10, x[50:], np.arange(10))
    for name, raw in (replace or {}).items():
        (folder / name).write_bytes(raw)
    return folder


def a_batch():
    """A batch as the official files hold it (plain pickle.load of one: arrays and lists of ints)."""
    images = np.random.default_rng(1).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    return pickle.loads(batch_bytes(images, range(10)))


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


# ---------------------------------------------------------------------------- hostile batches

def test_numpy_1_module_names_are_read_too():
    batch = a_batch()
    raw = pickle.dumps(batch, protocol=3).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # the GLOBAL numpy 1 writes
    np.testing.assert_array_equal(safe_pickle.load(io.BytesIO(raw), "p")[b"data"], batch[b"data"])


@pytest.mark.parametrize("where,name", [("folder", "data_batch_1"), ("folder", "batches.meta"),
                                        ("tar.gz", "data_batch_1")])
def test_a_batch_that_would_run_a_command_is_refused_before_it_runs(tmp_path, where, name):
    marker = tmp_path / "ran"
    evil = pickle.dumps({b"data": Payload(marker), b"labels": [0]})
    if where == "folder":
        path = batches(tmp_path / "c", replace={name: evil})
    else:
        path = tarball(tmp_path / "c.tar.gz", {name: evil})
    assert one_line_error(path) == f"{path}/{name}: refused to load {os.system.__module__}.system {REFUSED}"
    assert not marker.exists()


def test_an_unexpected_global_is_refused_and_named(tmp_path):
    batch = a_batch()
    odd = pickle.dumps(collections.OrderedDict([(b"data", batch[b"data"]), (b"labels", batch[b"labels"])]))
    path = batches(tmp_path / "c", replace={"test_batch": odd})
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
    path = batches(tmp_path / "c", replace={"data_batch_2": raw})
    assert expected in one_line_error(path)


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


def batches_meta():
    return pickle.dumps({b"label_names": [name.encode() for name in datasets.CLASS_NAMES]})


def a_real_image():
    """The first training image of the sample that ships in data/."""
    with np.load(SAMPLE_PATH) as sample:
        return sample["x_train"][0]


def test_a_real_image_round_trips_through_png(tmp_path):
    image = a_real_image()
    (tmp_path / "x.png").write_bytes(png_bytes(image))
    got = open_image(tmp_path / "x.png")
    assert got.dtype == np.uint8 and got.shape == (32, 32, 3)
    np.testing.assert_array_equal(got, image)


@pytest.mark.parametrize("make,expected", [
    (lambda png: declaring(png, 100_000, 100_000), f"declares more than {MAX_PIXELS:,} pixels; refused before decoding"),
    (lambda png: declaring(png, 8192, 8193), f"declares more than {MAX_PIXELS:,} pixels"),  # just over: PIL only warns
    (lambda png: bytes(png[:60]), "not a readable PNG or JPEG image (OSError"),
    (lambda png: batches_meta(), "not a readable PNG or JPEG image (UnidentifiedImageError"),
], ids=["100000x100000", "one row over the limit", "truncated", "not an image"])
def test_bad_images_give_one_line_naming_the_file(tmp_path, make, expected):
    path = tmp_path / "x.png"
    path.write_bytes(make(png_bytes(a_real_image())))
    assert path.stat().st_size < 4000
    with pytest.raises(UserError) as e:
        open_image(path)
    assert str(e.value).startswith(f"{path}: ") and expected in str(e.value) and "\n" not in str(e.value)
