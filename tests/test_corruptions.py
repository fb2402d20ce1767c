"""CIFAR-10-C's corruptions made here (``suite.data.corruptions``) and the robustness report
(``suite.analysis.robustness``): deterministic bytes, damage that grows with severity (or,
where the published constants do not make it grow, what they do make), one-line errors for
bad input, the published files read from a folder, the summary's figures.

Fast tier: the images are the 16 first test images of the sample that ships in ``data/``,
never the CIFAR-10 data set.
"""

import io
import re

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from suite.analysis import robustness
from suite.core.errors import UserError
from suite.data import corruptions
from suite.data.corruptions import DIFFERENCES, GROUPS, NAMES, corrupt, load_real, parse_names, parse_severities

pytestmark = pytest.mark.fast

DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}
# where the mean absolute difference from the clean image does not grow step by step (see the tests below)
NOT_MONOTONE = {"glass_blur", "motion_blur", "frost", "elastic_transform"}


@pytest.fixture(scope="module")
def images():
    return np.load(REPO / "data" / "cifar10_sample.npz")["x_test"][:16]


@pytest.fixture(scope="module")
def corrupted(images):
    """{(name, severity): corrupt(images, name, severity, seed=0)}"""
    return {(name, s): corrupt(images, name, s) for name in NAMES for s in range(1, 6)}


def damage(clean, corrupted_):
    return float(np.abs(corrupted_.astype(np.int16) - clean).mean())


def dissimilarity(clean, corrupted_):
    """1 - the correlation of each corrupted image with its clean image, averaged."""
    a = clean.reshape(len(clean), -1).astype(np.float64)
    b = corrupted_.reshape(len(clean), -1).astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    return float(np.mean(1 - (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))))


def test_the_names_and_groups_are_cifar_10_c_s():
    assert NAMES == ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
                     "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
                     "elastic_transform", "pixelate", "jpeg_compression")
    assert [n for g in GROUPS.values() for n in g] == list(NAMES)
    assert list(GROUPS) == ["noise", "blur", "weather", "digital"]
    assert set(DIFFERENCES) <= set(NAMES)
    assert all(isinstance(v, str) and v.endswith(".") and "\n" not in v for v in DIFFERENCES.values())


@pytest.mark.parametrize("name", NAMES)
def test_each_corruption_keeps_the_shape_changes_the_image_and_repeats_its_bytes(name, images, corrupted):
    for s in range(1, 6):
        out = corrupted[name, s]
        assert out.shape == images.shape and out.dtype == np.uint8
        assert np.any(out != images), f"{name} at severity {s} left the images as they were"
    again = corrupt(images, name, 3, seed=0)
    assert again.tobytes() == corrupted[name, 3].tobytes()
    other_seed = corrupt(images, name, 3, seed=1)
    if name in DETERMINISTIC:
        assert np.array_equal(other_seed, again)
    else:
        assert not np.array_equal(other_seed, again), f"{name} ignores its seed"
    assert np.array_equal(images, np.load(REPO / "data" / "cifar10_sample.npz")["x_test"][:16])   # input untouched


def test_a_batch_is_corrupted_the_same_way_whatever_the_memory_layout(images):
    strided = np.asfortranarray(images)
    for name in ("glass_blur", "elastic_transform", "snow"):
        assert np.array_equal(corrupt(strided, name, 2, seed=4), corrupt(images, name, 2, seed=4))


@pytest.mark.parametrize("name", sorted(set(NAMES) - NOT_MONOTONE))
def test_damage_grows_with_severity(name, images, corrupted):
    d = [damage(images, corrupted[name, s]) for s in range(1, 6)]
    assert all(b >= a for a, b in zip(d, d[1:])), f"{name}: mean absolute difference {d}"


def test_glass_blur_two_passes_of_moved_pixels_do_more_than_one(images, corrupted):
    # severities 1-3 move the pixels once (and blur more and more, which smooths the
    # moved pixels back a little), 4 and 5 twice: the second pass is what the damage shows
    d = [damage(images, corrupted["glass_blur", s]) for s in range(1, 6)]
    assert min(d[3:]) > max(d[:3])


def test_glass_blur_does_what_the_generators_swap_loop_does(images):
    # the generator's `x[h, w], x[h2, w2] = x[h2, w2], x[h, w]` on NumPy views copies the
    # neighbour into place; run literally, with the offsets the vectorised version drew
    y = images.copy()
    rng = np.random.default_rng(7)
    d = rng.integers(-1, 1, size=(len(y), 30 * 30, 2))
    looped = y.copy()
    for i in range(len(y)):
        k = 0
        for h in range(31, 1, -1):
            for w in range(31, 1, -1):
                dx, dy = d[i, k]
                k += 1
                looped[i, h, w], looped[i, h + dy, w + dx] = looped[i, h + dy, w + dx], looped[i, h, w]
    rgba = np.zeros((len(y), 32, 32, 4), np.uint8)
    rgba[..., :3] = y
    pixels = rgba.view(np.uint32).reshape(-1)
    inner = np.arange(31, 1, -1)
    positions = (inner[:, None] * 32 + inner[None, :]).ravel()
    base = np.arange(len(y))[:, None] * 1024
    pixels[base + positions] = pixels[base + positions + d[..., 1] * 32 + d[..., 0]]
    assert np.array_equal(rgba[..., :3], looped)


def test_motion_blur_grows_but_severities_3_and_4_are_the_same_blur(images, corrupted):
    # both have sigma 2; the larger radius of 4 only adds taps of weight below 1e-9
    d = [damage(images, corrupted["motion_blur", s]) for s in range(1, 6)]
    assert d[0] < d[1] < d[2] < d[4] and d[1] < d[3] < d[4]
    angles = np.linspace(-45, 45, len(images))
    x = images.astype(np.float32)
    assert np.abs(corruptions._motion_blur(x, 6, 2, angles) - corruptions._motion_blur(x, 8, 2, angles)).max() < 1e-3


def test_frost_covers_more_of_the_image_at_higher_severities(images, corrupted):
    # the image's weight falls (1, 1, .9, .85, .75) as the frost's rises (.2, .3, .4, .4, .45):
    # the mean absolute difference, which the image's darkening partly cancels, is not
    # monotone, nor step by step its dissimilarity, as each severity draws new frost
    d = [dissimilarity(images, corrupted["frost", s]) for s in range(1, 6)]
    assert d[0] < d[2] < d[4]
    a = [damage(images, corrupted["frost", s]) for s in range(1, 6)]
    assert a[0] < min(a[1:])


def test_elastic_transform_moves_the_image_less_at_higher_severities(images, corrupted):
    # the published constants shrink the random affine part (2.56 px at severity 1 down to
    # 0.96 px) faster than the elastic field grows, so the images differ less from the
    # clean ones as the severity rises, by either measure
    for measure in (damage, dissimilarity):
        d = [measure(images, corrupted["elastic_transform", s]) for s in range(1, 6)]
        assert all(b < a for a, b in zip(d, d[1:])), d


def test_pixelate_is_pillows_box_resize_to_the_byte(images, corrupted):
    for s, c in enumerate([0.95, 0.9, 0.85, 0.75, 0.65], start=1):
        small = int(32 * c)
        want = np.stack([np.asarray(Image.fromarray(a).resize((small, small), Image.BOX).resize((32, 32), Image.BOX))
                         for a in images])
        assert np.array_equal(corrupted["pixelate", s], want)


def test_jpeg_is_pillows_at_the_published_quality(images, corrupted):
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, "JPEG", quality=58)
    assert np.array_equal(corrupted["jpeg_compression", 3][0], np.asarray(Image.open(buffer)))


def test_bad_names_severities_seeds_and_images_are_one_line_errors(images):
    with pytest.raises(UserError, match=r"unknown corruption 'gausian_noise' \(did you mean 'gaussian_noise'\?\)"):
        corrupt(images, "gausian_noise", 1)
    for severity in (0, 6, 2.5, True, "3"):
        with pytest.raises(UserError, match="severity must be a whole number from 1 to 5"):
            corrupt(images, "fog", severity)
    with pytest.raises(UserError, match="seed must be a whole number >= 0"):
        corrupt(images, "fog", 1, seed=-1)
    with pytest.raises(UserError, match=r"uint8 images of shape \(N, 32, 32, 3\), not float32"):
        corrupt(images.astype(np.float32), "fog", 1)
    with pytest.raises(UserError, match=r"not uint8 \(16, 32, 32\)"):
        corrupt(images[..., 0], "fog", 1)
    assert corrupt(images[:0], "snow", 5).shape == (0, 32, 32, 3)


def test_names_and_severities_from_the_command_line():
    assert parse_names("all") == list(NAMES)
    assert parse_names(" fog, gaussian_noise ,fog") == ["gaussian_noise", "fog"]      # CIFAR-10-C's order
    assert parse_names("blur") == list(GROUPS["blur"])
    for text, hint in (("fgo", "did you mean 'fog'?"), ("gaussian", "did you mean 'gaussian_noise'?")):
        with pytest.raises(UserError, match=re.escape(f"unknown corruption '{text}' ({hint})")):
            parse_names(text)
    with pytest.raises(UserError, match="no corruption named"):
        parse_names(" , ")
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("3") == [3]
    assert parse_severities("5,1,3") == [1, 3, 5]
    assert parse_severities("1-2, 5") == [1, 2, 5]
    for text in ("0", "6", "1-6", "3-1", "x", "", "1-", "2.5", "1,,2"):
        with pytest.raises(UserError, match="bad corruption severities"):
            parse_severities(text)


def fake_cifar_10_c(folder, names, per_severity=3):
    """A CIFAR-10-C folder with ``per_severity`` images per severity: image i all of value i."""
    folder.mkdir(exist_ok=True)
    n = 5 * per_severity
    np.save(folder / "labels.npy", (np.arange(n) % 10).astype(np.uint8))
    for k, name in enumerate(names):
        np.save(folder / f"{name}.npy", np.broadcast_to((np.arange(n) + k).astype(np.uint8)[:, None, None, None],
                                                        (n, 32, 32, 3)))
    return folder


def test_the_published_files_are_read_severity_by_severity(tmp_path):
    folder = fake_cifar_10_c(tmp_path / "CIFAR-10-C", ["fog", "snow"])
    got = list(load_real(folder, ["snow", "fog"], [2, 5]))
    assert [(name, s) for name, s, _, _ in got] == [("snow", 2), ("snow", 5), ("fog", 2), ("fog", 5)]
    name, s, x, y = got[1]
    assert x.shape == (3, 32, 32, 3) and x.dtype == np.uint8 and list(x[:, 0, 0, 0]) == [13, 14, 15]
    assert list(y) == [2, 3, 4]
    _, _, x, y = next(load_real(folder, ["fog"], [1], limit=2))
    assert list(x[:, 0, 0, 0]) == [0, 1] and list(y) == [0, 1]


def test_a_bad_cifar_10_c_folder_is_a_one_line_error_naming_the_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_real(tmp_path / "nowhere", ["fog"], [1])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is not a CIFAR-10-C folder: it has no labels.npy"):
        load_real(tmp_path / "empty", ["fog"], [1])
    folder = fake_cifar_10_c(tmp_path / "c", ["fog"])
    with pytest.raises(UserError, match=r"CIFAR-10-C file .*snow\.npy is missing"):
        load_real(folder, ["fog", "snow"], [1])
    np.save(folder / "snow.npy", np.zeros((15, 32, 32), np.uint8))
    with pytest.raises(UserError, match=r"snow\.npy holds uint8 \(15, 32, 32\), not uint8 \(15, 32, 32, 3\)"):
        load_real(folder, ["snow"], [1])
    np.save(folder / "snow.npy", np.zeros((15, 32, 32, 3), np.float32))
    with pytest.raises(UserError, match=r"snow\.npy holds float32"):
        load_real(folder, ["snow"], [1])
    np.save(folder / "snow.npy", np.array([{"a": 1}] * 15, dtype=object))
    with pytest.raises(UserError, match=r"cannot read .*snow\.npy"):
        load_real(folder, ["snow"], [1])
    np.save(folder / "labels.npy", np.zeros(14, np.uint8))
    with pytest.raises(UserError, match=r"labels\.npy holds uint8 \(14,\), not CIFAR-10-C's labels"):
        load_real(folder, ["fog"], [1])
    with pytest.raises(UserError, match="unknown corruption 'smog'"):
        load_real(folder, ["smog"], [1])


def test_summary_of_a_hand_made_table():
    table = {"gaussian_noise": {1: 0.8, 2: 0.6}, "fog": {1: 0.9, 2: 0.7}, "pixelate": {1: 0.5, 2: 0.5}}
    s = robustness.summary(table, clean_accuracy=0.9)
    assert s["mean_corruption_accuracy"] == pytest.approx(4.0 / 6)
    assert s["mean_corruption_error"] == pytest.approx(2.0 / 6)
    assert s["relative_to_clean"] == pytest.approx((2.0 / 6) / 0.1)
    assert s["by_corruption"] == pytest.approx({"gaussian_noise": 0.7, "fog": 0.8, "pixelate": 0.5})
    assert s["by_severity"] == pytest.approx({"1": 0.7333333, "2": 0.6})
    assert s["by_group"] == pytest.approx({"noise": 0.7, "weather": 0.8, "digital": 0.5})
    assert s["accuracy"]["fog"] == {"1": 0.9, "2": 0.7}
    assert robustness.summary(table, clean_accuracy=1.0)["relative_to_clean"] is None


def test_evaluate_scores_generated_and_published_images(images, tmp_path):
    labels = np.arange(len(images)) % 10

    def predict(x):                                   # always class 0, half sure of it
        p = np.full((len(x), 10), 0.5 / 9)
        p[:, 0] = 0.5
        return p

    lines = []
    r = robustness.evaluate(predict, images, labels, ["fog", "pixelate"], [1, 3], progress=lines.append)
    assert r["accuracy"] == {"fog": {1: 2 / 16, 3: 2 / 16}, "pixelate": {1: 2 / 16, 3: 2 / 16}}
    assert r["nll"]["fog"][3] == pytest.approx(np.mean([np.log(2)] * 2 + [np.log(18)] * 14))
    assert r["images"] == 64 and r["source"] == "generated"
    assert len(lines) == 2 and lines[0].startswith("fog") and "images/s" in lines[0]
    s = robustness.summary(r, clean_accuracy=0.5)
    assert s["mean_corruption_accuracy"] == pytest.approx(0.125) and s["images"] == 64
    assert "mean_nll" in s

    folder = fake_cifar_10_c(tmp_path / "C", ["fog"], per_severity=4)
    r = robustness.evaluate(predict, images, labels, ["fog"], [2], real_dir=folder, progress=None)
    assert r["accuracy"] == {"fog": {2: 0.0}}                 # labels 4..7 of the file, never class 0
    assert r["images"] == 4 and r["source"] == str(folder)
    with pytest.raises(UserError, match="did you mean 'fog'"):
        robustness.evaluate(predict, images, labels, ["fgo"], [1], progress=None)


def test_heatmap_and_grid_are_written(images, tmp_path):
    robustness.heatmap({"fog": {1: 0.9, 2: 0.5}, "snow": {1: 0.7, 2: 0.1}}, tmp_path / "heat.png", "title")
    robustness.grid(images[0], tmp_path / "grid.png", names=["snow", "frost"], severities=[1, 5])
    for name in ("heat.png", "grid.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.size[0] > 300
