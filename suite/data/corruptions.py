"""The 15 corruptions of CIFAR-10-C (Hendrycks and Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019, arXiv:1903.12261), made
here from the test images, and the published CIFAR-10-C files read where the user has them.

Re-implemented, not copied, from the paper and the public generator
``ImageNet-C/create_c/make_cifar_c.py`` of github.com/hendrycks/robustness (commit
8190fe329f5f072a06e3a2aea02bb5dda69aed9f; the file dates from commit ca36008, January 2019):
every severity constant below is that file's CIFAR constant. The generator works one PIL
image at a time through scikit-image, SciPy, OpenCV and ImageMagick; here every corruption
is NumPy over the whole batch (PIL only for JPEG), with the same arithmetic where it can
be had without those libraries. ``DIFFERENCES`` says, for each corruption where the result
is not the generator's up to rounding, what differs.

What holds for all of them:

- ``corrupt(images, name, severity, seed)`` takes and gives ``uint8`` (N, 32, 32, 3).
  Values become bytes as the generator's ``np.uint8(...)`` makes them: clipped to
  [0, 255] and truncated (PIL's and ImageMagick's steps round, as theirs do).
- The random draws come from ``numpy.random.default_rng([seed, index, severity])``
  (``index`` the corruption's place in ``NAMES``), drawn batch by batch in chunks of fixed
  size, so the same images, name, severity and seed always give the same bytes. They are
  not the draws of the generator's global ``np.random`` state, so a generated set matches
  the published one in distribution, not image for image.
- The arithmetic is float32 where the generator's was float64 (or OpenCV's), which
  moves a few values by one grey level where a result falls on a whole number.
- Glass blur's "swap" loop is reproduced as the generator actually runs it: its tuple
  assignment of two NumPy views copies the neighbour's pixel into place instead of
  swapping (both sides are views of the same array), and as the loop runs from the
  bottom-right corner every pixel copies a neighbour not yet visited; so one pass is one
  gather from a random up/left neighbour, which is what is done here.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from suite.core.errors import UserError
from suite.core.registry import did_you_mean

GROUPS = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
NAMES = tuple(name for names in GROUPS.values() for name in names)  # CIFAR-10-C's order
SEVERITIES = (1, 2, 3, 4, 5)
SIZE = 32                   # CIFAR images are SIZE x SIZE x 3; the constants are for this size
CHUNK = 250                 # images corrupted at a time: a chunk's floats stay in the CPU's cache

# How each corruption differs from make_cifar_c.py, beyond what holds for all (the module
# docstring: NumPy's default_rng instead of the global np.random state, float32 arithmetic).
DIFFERENCES = {
    "defocus_blur": "OpenCV's kernel (an aliased disk blurred by a 3x3 Gaussian) and mirrored edges "
                    "are kept, but the filter is NumPy sums of shifted copies (the kernels have "
                    "rank 1 or 2) instead of cv2.filter2D.",
    "glass_blur": "The generator's pixel loop is one gather per pass, which is what its "
                  "'swap' of NumPy views does, and scikit-image's Gaussian is NumPy's own "
                  "(same taps, edge pixels repeated).",
    "motion_blur": "ImageMagick's motion blur (a one-sided Gaussian line of 2*ceil(radius)+1 taps "
                   "at a random angle in [-45, 45] degrees, edge pixels repeated) is re-implemented "
                   "in NumPy, leaving out the taps whose weight is below 1e-6.",
    "zoom_blur": "SciPy's first-order zoom (corners aligned, then cropped to the centre) is "
                 "re-implemented, all the zooms summed into one linear map applied by matrix products.",
    "snow": "The flakes' streaks use motion_blur's NumPy re-implementation of ImageMagick's motion "
            "blur (angle in [-135, -45] degrees), and SciPy's zoom is zoom_blur's re-implementation.",
    "frost": "The generator's frost photographs are replaced by a procedural ice texture (a "
             "diamond-square fractal, ridged crystal lines and grain) coloured with one of five "
             "tints measured on crops of those photographs as the generator prepares them.",
    "elastic_transform": "OpenCV's affine warp and SciPy's map_coordinates are re-implemented as "
                         "bilinear sampling in float32 with their mirrored edges (OpenCV rounds "
                         "positions to 1/32 pixel; this does not).",
}


# ---------------------------------------------------------------------------- checks

def _check_name(name):
    if name not in NAMES:
        raise UserError(f"unknown corruption {name!r}{did_you_mean(name, NAMES)}; "
                        f"the corruptions are {', '.join(NAMES)}")
    return NAMES.index(name)


def _check_severity(severity):
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= severity <= 5:
        raise UserError(f"corruption severity must be a whole number from 1 to 5, not {severity!r}")
    return int(severity)


def _check_images(images):
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (SIZE, SIZE, 3):
        raise UserError(f"corruptions take uint8 images of shape (N, {SIZE}, {SIZE}, 3), "
                        f"not {x.dtype} {x.shape}")
    return x


def _check_seed(seed):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"the corruption seed must be a whole number >= 0, not {seed!r}")
    return int(seed)


# ---------------------------------------------------------------------------- the one entry point

def corrupt(images, name, severity, seed=0):
    """``images`` (uint8, (N, 32, 32, 3)) under corruption ``name`` at ``severity`` 1..5.

    The same images, name, severity and seed always give the same bytes; the random draws
    come from ``numpy.random.default_rng([seed, index of name, severity])``.
    """
    index = _check_name(name)
    severity = _check_severity(severity)
    seed = _check_seed(seed)
    x = _check_images(images)
    fn, chunk = _CORRUPTIONS[name]
    rng = np.random.default_rng([seed, index, severity])
    out = np.empty_like(x)
    for start in range(0, len(x), chunk):
        out[start:start + chunk] = fn(np.ascontiguousarray(x[start:start + chunk]), severity, rng)
    return out


# ---------------------------------------------------------------------------- shared pieces

def _floats(x):
    """uint8 images as float32 in [0, 1]."""
    return x.astype(np.float32) * np.float32(1 / 255)


def _bytes(y, scale=255.0):
    """[0, 1] floats (or [0, 255] with ``scale=1``) as bytes the way ``np.uint8(...)`` of the
    generator's clipped floats makes them: truncated. The 1e-3 keeps a value that float32
    arithmetic left a hair under a whole number (127.99998) on that number."""
    return np.floor(np.clip(y * np.float32(scale), 0, 255) + np.float32(1e-3)).astype(np.uint8)


def _rounded(y):
    """[0, 255] floats to bytes by rounding, as PIL and ImageMagick store their results."""
    return np.floor(np.clip(y, 0, 255) + np.float32(0.5)).astype(np.uint8)


def _fold(index, n, mode):
    """Indices outside 0..n-1 mapped back in: ``nearest`` repeats the edge pixel, ``reflect``
    mirrors about the edge (d c b a | a b c d, SciPy's and scikit-image's "reflect"),
    ``mirror`` mirrors about the edge pixel (d c b | a b c d, OpenCV's default)."""
    index = np.asarray(index)
    if mode == "nearest":
        return np.clip(index, 0, n - 1)
    if mode == "reflect":
        j = np.mod(index, 2 * n)
        return np.where(j >= n, 2 * n - 1 - j, j)
    if mode == "mirror":
        j = np.mod(index, 2 * n - 2)
        return np.where(j >= n, 2 * n - 2 - j, j)
    raise ValueError(mode)


def _correlation_matrix(weights, offsets, mode, n=SIZE):
    """The (n, n) matrix of a 1-D filter: ``out[i] = sum_k weights[k] * in[fold(i + offsets[k])]``."""
    m = np.zeros((n, n))
    rows = np.arange(n)
    for w, o in zip(weights, offsets):
        np.add.at(m, (rows, _fold(rows + o, n, mode)), w)
    return m


def _gaussian_matrix(sigma, mode, truncate=4.0, n=SIZE):
    """SciPy's ``gaussian_filter1d`` (which scikit-image's ``gaussian`` calls) as a matrix:
    ``int(truncate * sigma + 0.5)`` taps either side; a sigma of 0 leaves the axis as it is."""
    if sigma <= 1e-15:
        return np.eye(n)
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * offsets ** 2 / sigma ** 2)
    return _correlation_matrix(weights / weights.sum(), offsets, mode, n)


def _zoom_matrix(factor, n=SIZE):
    """The generator's ``clipped_zoom`` on one axis as a matrix: the centre ``ceil(n / factor)``
    pixels zoomed by SciPy's first-order ``zoom`` (whose output pixel j samples input
    coordinate ``j * (in - 1) / (out - 1)``) to ``round(in * factor)`` pixels, of which the
    centre n are kept."""
    crop = int(np.ceil(n / factor))
    top = (n - crop) // 2
    zoomed = int(round(crop * factor))
    trim = (zoomed - n) // 2
    coord = np.arange(trim, trim + n) * ((crop - 1) / (zoomed - 1))
    i0 = np.minimum(np.floor(coord).astype(int), crop - 1)
    frac = coord - i0
    i1 = np.minimum(i0 + 1, crop - 1)
    m = np.zeros((n, n))
    rows = np.arange(n)
    np.add.at(m, (rows, top + i0), 1 - frac)
    np.add.at(m, (rows, top + i1), frac)
    return m


def _batch_last(x):
    """(N, H, W, C) -> (H, W, N*C) float32: the layout in which a linear map of the images
    is a few large matrix products."""
    n, h, w, c = x.shape
    return np.ascontiguousarray(x.transpose(1, 2, 0, 3), dtype=np.float32).reshape(h, w, n * c)


def _batch_first(y, n):
    h, w = y.shape[:2]
    return y.reshape(h, w, n, -1).transpose(2, 0, 1, 3)


def _along(x, m, axis, taps=8):
    """``m @`` every 1-D slice of x along ``axis`` (float32 out). A narrow filter (at most
    ``taps`` non-zero weights in each row of ``m``) is a few weighted gathers, elementwise;
    a wide one one matrix product over the whole batch."""
    m = np.asarray(m)
    nonzero = m != 0
    width = int(nonzero.sum(axis=1).max())
    if width > taps:
        y = np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype=np.float32), axis, -1))
        return np.moveaxis(y @ m.T.astype(np.float32), -1, axis)
    order = np.argsort(~nonzero, axis=1, kind="stable")[:, :width]      # each row's non-zero columns first
    weights = np.take_along_axis(m, order, axis=1).astype(np.float32)
    shape = [1] * np.ndim(x)
    shape[axis] = len(m)
    out = None
    for k in range(width):
        term = np.take(x, order[:, k], axis=axis)
        term *= weights[:, k].reshape(shape)
        out = term if out is None else np.add(out, term, out=out)
    return out


def _filter_separable(x, rows, cols):
    """``rows @ image @ cols.T`` for every channel of every image of x (N, H, W, C), float32."""
    return _along(_along(np.asarray(x, dtype=np.float32), cols, 2), rows, 1)


class _SpatialOperator:
    """A linear map of H x W images (an (H*W, H*W) matrix ``m``), applied in the batch-last
    layout ``group`` output rows at a time: those rows depend only on the band of input rows
    where ``m`` is non-zero, so each group is one matrix product of (group*W, band*W) by
    (band*W, batch). Few large products: OpenBLAS's threads stall on many small ones when
    the cores are busy with other work."""

    def __init__(self, m, n=SIZE, group=8):
        m4 = np.asarray(m).reshape(n, n, n, n)   # [out row, out col, in row, in col]
        self.blocks = []
        for i0 in range(0, n, group):
            i1 = min(i0 + group, n)
            used = np.flatnonzero(np.abs(m4[i0:i1]).sum(axis=(0, 1, 3)) > 0)
            k0, k1 = (used[0], used[-1] + 1) if len(used) else (0, 1)
            block = m4[i0:i1, :, k0:k1, :].reshape((i1 - i0) * n, (k1 - k0) * n)
            self.blocks.append((i0, i1, k0, k1, np.ascontiguousarray(block, dtype=np.float32)))

    def __call__(self, x):
        """(N, H, W, C) images -> float32 (N, H, W, C)."""
        y = _batch_last(x)
        h, w, b = y.shape
        flat = y.reshape(h * w, b)
        out = np.empty_like(flat)
        for i0, i1, k0, k1, block in self.blocks:
            np.matmul(block, flat[k0 * w:k1 * w], out=out[i0 * w:i1 * w])
        return _batch_first(out.reshape(h, w, b), len(x))


_CACHE = {}


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _motion_blur(x, radius, sigma, angles):
    """ImageMagick's ``MotionBlurImage`` on float images (N, H, W, C), one angle per image
    (degrees): a one-sided Gaussian of ``2*ceil(radius)+1`` taps, tap i sampling the pixel
    ``(ceil(i sin(a) - 0.5), ceil(i cos(a) - 0.5))`` rows and columns away, edge pixels
    repeated beyond the border.

    The images are sorted by angle, so that for each tap the images that share its offset
    form runs, and each run is one slice of the padded batch.
    """
    n, h, w, c = x.shape
    width = int(2 * np.ceil(radius) + 1)
    taps = np.arange(width)
    kernel = np.exp(-taps ** 2 / (2 * sigma * sigma))
    kernel /= kernel.sum()
    order = np.argsort(angles, kind="stable")
    theta = np.deg2rad(np.asarray(angles, dtype=np.float64)[order])
    dy = np.ceil(taps[None, :] * np.sin(theta)[:, None] - 0.5).astype(int)   # (n, width)
    dx = np.ceil(taps[None, :] * np.cos(theta)[:, None] - 0.5).astype(int)
    pad = width - 1
    padded = np.pad(x[order], ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros((n, h, w, c), dtype=np.float32)
    scratch = np.empty_like(out)
    for t in taps:
        if kernel[t] < 1e-6:
            continue
        change = np.flatnonzero((np.diff(dy[:, t]) != 0) | (np.diff(dx[:, t]) != 0)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, n]):
            r, s = pad + dy[a, t], pad + dx[a, t]
            np.multiply(padded[a:b, r:r + h, s:s + w], np.float32(kernel[t]), out=scratch[a:b])
            out[a:b] += scratch[a:b]
    result = np.empty_like(out)
    result[order] = out
    return result


def _plasma(n, decay, rng, size=SIZE):
    """The generator's ``plasma_fractal`` (diamond-square on a torus, as in FLHerne/mapgen),
    for n maps at once: (n, size, size) in [0, 1]. Its quirk is kept: the random term of
    each step is ``wibble * uniform(-wibble, wibble)``."""
    m = np.empty((n, size, size))
    m[:, 0, 0] = 0
    step, wibble = size, 100.0

    def wibbled(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = m[:, 0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        m[:, half:size:step, half:size:step] = wibbled(square)
        centres = m[:, half:size:step, half:size:step]
        corners = m[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        m[:, 0:size:step, half:size:step] = wibbled(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        m[:, half:size:step, 0:size:step] = wibbled(top)
        step = half
        wibble /= decay
    m -= m.min(axis=(1, 2), keepdims=True)
    return m / m.max(axis=(1, 2), keepdims=True)


_PAD_MODES = {"nearest": "edge", "reflect": "symmetric", "mirror": "reflect"}   # _fold's names -> np.pad's


def _bilinear(x, rows, cols, mode):
    """Sample images x (N, H, W, C) at float positions ``rows``, ``cols`` (N, H, W) with
    bilinear weights; the image is extended beyond its border by ``mode`` (see ``_fold``),
    as far as the positions reach. float32 (N, H, W, C) out."""
    n, h, w, c = x.shape
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    reach = max(-min(r0.min(), c0.min()), max(r0.max() - (h - 2), c0.max() - (w - 2)), 0)
    pad = int(reach) + 1
    planes = np.pad(np.moveaxis(np.asarray(x, dtype=np.float32), 3, 0),
                    ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=_PAD_MODES[mode])
    hp, wp = h + 2 * pad, w + 2 * pad
    planes = planes.reshape(c, n * hp * wp)
    fr = (rows - r0).astype(np.float32)
    fc = (cols - c0).astype(np.float32)
    index = ((r0.astype(np.int64) + pad) * wp + (c0.astype(np.int64) + pad)
             + (np.arange(n, dtype=np.int64) * (hp * wp))[:, None, None])
    right, below = index + 1, index + wp
    below_right = below + 1
    out = np.empty((n, h, w, c), dtype=np.float32)
    for k in range(c):
        plane = planes[k]
        top = plane.take(index)
        top += fc * (plane.take(right) - top)
        bottom = plane.take(below)
        bottom += fc * (plane.take(below_right) - bottom)
        out[..., k] = top + fr * (bottom - top)
    return out


# ---------------------------------------------------------------------------- noise

def gaussian_noise(x, severity, rng):
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    return _bytes(_floats(x) + noise * np.float32(c))


def shot_noise(x, severity, rng):
    c = [500, 250, 100, 75, 50][severity - 1]
    counts = rng.poisson(x * (c / 255.0))
    return _bytes(counts.astype(np.float32) * np.float32(1 / c))


def impulse_noise(x, severity, rng):
    # scikit-image's random_noise(mode="s&p", amount=c): each value (each channel of each
    # pixel) flips with probability c, to 1 or 0 with even odds
    c = [.01, .02, .03, .05, .07][severity - 1]
    u = rng.random(x.shape, dtype=np.float32)
    out = x.copy()
    out[u < c / 2] = 255
    out[(u >= c / 2) & (u < c)] = 0
    return out


# ---------------------------------------------------------------------------- blur

def _disk(radius, alias_blur):
    """The generator's defocus kernel: an aliased disk on a 17 x 17 grid (for radius <= 8),
    normalised, then cv2.GaussianBlur with a 3 x 3 kernel (mirrored edges)."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    offsets = np.arange(ksize) - (ksize - 1) // 2
    g = np.exp(-offsets ** 2 / (2 * alias_blur ** 2))
    blur = _correlation_matrix(g / g.sum(), offsets, "mirror", len(grid))
    return blur @ disk @ blur.T


def _kernel_terms(kernel, mode, n=SIZE):
    """A centred 2-D correlation kernel as a sum of separable filters (its singular value
    decomposition, exact: the defocus disks have rank 1 or 2), each a pair of (n, n)
    matrices for rows and columns with the border handled by ``mode``."""
    k = np.asarray(kernel, dtype=np.float64)
    half = k.shape[0] // 2
    reach = int(np.abs(np.argwhere(np.abs(k) > 1e-12) - half).max())      # the disks fill 3 x 3 or 5 x 5
    k = k[half - reach:half + reach + 1, half - reach:half + reach + 1]
    offsets = np.arange(-reach, reach + 1)
    u, sv, vt = np.linalg.svd(k)
    return [(_correlation_matrix(u[:, r] * sv[r], offsets, mode, n), _correlation_matrix(vt[r], offsets, mode, n))
            for r in range(len(sv)) if sv[r] > 1e-9 * sv[0]]


def defocus_blur(x, severity, rng):
    c = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    terms = _cached(("defocus", severity), lambda: _kernel_terms(_disk(*c), "mirror"))
    y = _floats(x)
    return _bytes(sum(_filter_separable(y, rows, cols) for rows, cols in terms))


def glass_blur(x, severity, rng):
    # sigma, max_delta, iterations
    c = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    sigma, delta, iterations = c
    g = _gaussian_matrix(sigma, "nearest")
    y = _bytes(_filter_separable(_floats(x), g, g))
    n = len(y)
    # the generator's loop (h and w from 32 - delta down to delta + 1, offsets from
    # randint(-delta, delta), so -delta..delta-1) as it runs: pixel (h, w) takes the value
    # of (h + dy, w + dx), a pixel the loop has not written yet (see the module docstring)
    inner = np.arange(SIZE - delta, delta, -1)
    flat_pos = (inner[:, None] * SIZE + inner[None, :]).ravel()           # loop order
    images = np.arange(n)[:, None] * (SIZE * SIZE)
    rgba = np.zeros((n, SIZE, SIZE, 4), dtype=np.uint8)
    rgba[..., :3] = y
    pixels = rgba.view(np.uint32).reshape(n * SIZE * SIZE)                # one pixel, one element
    for _ in range(iterations):
        d = rng.integers(-delta, delta, size=(n, len(flat_pos), 2))       # (dx, dy) per step
        source = images + flat_pos[None, :] + d[..., 1] * SIZE + d[..., 0]
        pixels[images + flat_pos[None, :]] = np.take(pixels, source)
    return _bytes(_filter_separable(_floats(rgba[..., :3]), g, g))


def motion_blur(x, severity, rng):
    c = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    angles = rng.uniform(-45, 45, size=len(x))
    return _rounded(_motion_blur(x.astype(np.float32), c[0], c[1], angles))


def zoom_blur(x, severity, rng):
    c = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
         np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]

    def make():
        # (x + sum of the zoomed copies) / (len(c) + 1), one linear map
        m = np.eye(SIZE * SIZE)
        for factor in c:
            z = _zoom_matrix(factor)
            m += np.kron(z, z)
        return _SpatialOperator(m / (len(c) + 1))

    return _bytes(_cached(("zoom", severity), make)(_floats(x)))


# ---------------------------------------------------------------------------- weather

def snow(x, severity, rng):
    c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95),
         (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
         (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
         (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    n = len(x)
    layer = rng.normal(loc=c[0], scale=c[1], size=(n, SIZE, SIZE, 1)).astype(np.float32)
    z = _zoom_matrix(c[2])
    layer = _filter_separable(layer, z, z)
    layer[layer < c[3]] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8)                # the PNG ImageMagick reads
    angles = rng.uniform(-135, -45, size=n)
    flakes = _rounded(_motion_blur(layer.astype(np.float32), c[4], c[5], angles))
    flakes = flakes.astype(np.float32) * np.float32(1 / 255)
    y = _floats(x)
    gray = y @ np.array([0.299, 0.587, 0.114], dtype=np.float32)            # cv2.COLOR_RGB2GRAY
    y = c[6] * y + (1 - c[6]) * np.maximum(y, gray[..., None] * 1.5 + 0.5)
    return _bytes(y + flakes + flakes[:, ::-1, ::-1])


# five tints (mean RGB, contrast) measured on 32 x 32 crops of the generator's frost
# photographs as it prepares them (scaled by 0.2; frost2 and frost3 are the same picture,
# and randint(5) never picks frost6)
FROST_TINTS = np.array([
    (0.32, 0.59, 0.66, 0.055),
    (0.77, 0.78, 0.82, 0.075),
    (0.77, 0.78, 0.82, 0.075),
    (0.56, 0.61, 0.66, 0.100),
    (0.46, 0.50, 0.55, 0.135),
])


def _standardised(a):
    a = a - a.mean(axis=(1, 2), keepdims=True)
    return a / (a.std(axis=(1, 2), keepdims=True) + 1e-6)


def frost_texture(n, rng):
    """n procedural frost patches (n, 32, 32, 3), float in [0, 255]: a rough diamond-square
    fractal for the cloudy ice, the thin ridges along the mid-level lines of a second one
    for crystal edges, and per-pixel grain, mixed to one texture and coloured with a tint
    of ``FROST_TINTS`` (brightness varied a little); the bright parts come out whitest."""
    cloud = _standardised(_plasma(n, 1.8, rng))
    ridges = _standardised((1 - np.abs(2 * _plasma(n, 1.6, rng) - 1)) ** 8)
    grain = _standardised(rng.standard_normal((n, SIZE, SIZE)))
    texture = _standardised(0.6 * cloud + 0.55 * ridges + 0.6 * grain)
    tint = FROST_TINTS[rng.integers(0, len(FROST_TINTS), size=n)]
    level = rng.normal(0, 0.04, size=(n, 1))
    mean = (tint[:, :3] + level)[:, None, None, :]
    contrast = tint[:, 3][:, None, None, None]
    return (np.clip(mean + contrast * texture[..., None], 0, 1) * 255).astype(np.float32)


def frost(x, severity, rng):
    c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    ice = frost_texture(len(x), rng)
    return _bytes(np.float32(c[0]) * x.astype(np.float32) + np.float32(c[1]) * ice, scale=1)


def fog(x, severity, rng):
    c = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    y = _floats(x)
    max_val = y.max(axis=(1, 2, 3), keepdims=True)
    y = y + np.float32(c[0]) * _plasma(len(x), c[1], rng).astype(np.float32)[..., None]
    return _bytes(y * max_val / (max_val + np.float32(c[0])))


def _brightness_table(c):
    """HSV's V + c (clipped) with H and S kept scales a pixel's RGB by V'/V, V its largest
    channel (a black pixel, saturation 0, becomes grey V'): so a value's result depends only
    on it and its pixel's largest value, a (256, 256) table indexed [V, value]."""
    v = np.arange(256)[:, None] / 255.0
    value = np.arange(256)[None, :] / 255.0
    v_new = np.minimum(v + c, 1)
    scaled = np.divide(value * v_new, v, out=np.broadcast_to(v_new, (256, 256)).copy(), where=v > 0)
    return _bytes(scaled)


def brightness(x, severity, rng):
    c = [.05, .1, .15, .2, .3][severity - 1]
    table = _cached(("brightness", severity), lambda: _brightness_table(c))
    return table[x.max(axis=3, keepdims=True), x]


# ---------------------------------------------------------------------------- digital

def contrast(x, severity, rng):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    y = _floats(x)
    means = y.mean(axis=(1, 2), keepdims=True)          # per image and channel
    return _bytes((y - means) * np.float32(c) + means)


def elastic_transform(x, severity, rng):
    s = SIZE
    c = [(s * 0, s * 0, s * 0.08),
         (s * 0.05, s * 0.2, s * 0.07),
         (s * 0.08, s * 0.06, s * 0.06),
         (s * 0.1, s * 0.04, s * 0.05),
         (s * 0.1, s * 0.03, s * 0.03)][severity - 1]
    alpha, sigma, shift = c
    n = len(x)
    y = _floats(x)
    # random affine: three points (x, y) moved by up to ``shift``; cv2.warpAffine samples the
    # source at the inverse map of each destination pixel, mirrored edges
    centre, half = s // 2, s // 3
    src_pts = np.array([[centre + half, centre + half], [centre + half, centre - half],
                        [centre - half, centre - half]], dtype=np.float64)
    dst_pts = src_pts + rng.uniform(-shift, shift, size=(n, 3, 2)).astype(np.float32)
    ones = np.c_[src_pts, np.ones(3)]
    affine = np.linalg.solve(ones[None], dst_pts)               # (n, 3, 2): [x y 1] @ affine
    linear = affine[:, :2, :].transpose(0, 2, 1)                # (n, 2, 2)
    offset = affine[:, 2, :]                                    # (n, 2)
    inverse = np.linalg.inv(linear)
    cols, rows = np.meshgrid(np.arange(s), np.arange(s))
    u = cols[None] - offset[:, 0, None, None]
    v = rows[None] - offset[:, 1, None, None]
    src_x = inverse[:, 0, 0, None, None] * u + inverse[:, 0, 1, None, None] * v
    src_y = inverse[:, 1, 0, None, None] * u + inverse[:, 1, 1, None, None] * v
    y = _bilinear(y, src_y, src_x, "mirror")
    # elastic displacement: uniform noise smoothed by a Gaussian (sigma, 3 sigma of taps,
    # mirrored about the edge) times alpha, the same for the three channels
    noise = rng.uniform(-1, 1, size=(n, s, s, 2)).astype(np.float32)   # dx, dy
    if alpha:                                                           # severity 1: the affine alone
        g = _gaussian_matrix(sigma, "reflect", truncate=3.0)
        field = _filter_separable(noise, g, g) * np.float32(alpha)
        y = _bilinear(y, rows[None] + field[..., 1], cols[None] + field[..., 0], "reflect")
    return _bytes(y)


def _pil_box_matrix(size_in, size_out):
    """Pillow's BOX resampling on one axis: the input pixels whose centre falls inside an
    output pixel's box, equal weights, in Pillow's fixed point (22 bits; for CIFAR's sizes
    the weights are 1 and 1/2, exact in float32)."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = np.zeros((size_out, size_in))
    for xx in range(size_out):
        centre = (xx + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), size_in)
        taps = np.arange(lo, hi)
        u = (taps - centre + 0.5) / filterscale
        w = ((u > -0.5) & (u <= 0.5)).astype(np.float64)
        m[xx, taps] = w / w.sum()
    return (np.floor(0.5 + m * (1 << 22)) / (1 << 22)).astype(np.float32)


def _pil_resize(y, matrix_h, matrix_w):
    """Pillow's resize of 8-bit images (N, H, W, C): the horizontal pass, rounded to bytes,
    then the vertical pass, rounded."""
    y = np.floor(_along(y, matrix_w, 2) + np.float32(0.5))
    return np.floor(_along(y, matrix_h, 1) + np.float32(0.5))


def pixelate(x, severity, rng):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    small = int(SIZE * c)
    down = _pil_box_matrix(SIZE, small)
    up = _pil_box_matrix(small, SIZE)
    return _pil_resize(_pil_resize(x.astype(np.float32), down, down), up, up).astype(np.uint8)


def jpeg_compression(x, severity, rng):
    c = [80, 65, 58, 50, 40][severity - 1]
    out = np.empty_like(x)
    for i, image in enumerate(x):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=c)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[i] = np.asarray(decoded)
    return out


# name -> (function, images per chunk)
_CORRUPTIONS = {
    "gaussian_noise": (gaussian_noise, CHUNK), "shot_noise": (shot_noise, CHUNK),
    "impulse_noise": (impulse_noise, CHUNK), "defocus_blur": (defocus_blur, CHUNK),
    "glass_blur": (glass_blur, CHUNK), "motion_blur": (motion_blur, CHUNK),
    "zoom_blur": (zoom_blur, 10 * CHUNK), "snow": (snow, CHUNK), "frost": (frost, CHUNK),
    "fog": (fog, CHUNK), "brightness": (brightness, CHUNK), "contrast": (contrast, CHUNK),
    "elastic_transform": (elastic_transform, CHUNK), "pixelate": (pixelate, CHUNK),
    "jpeg_compression": (jpeg_compression, CHUNK),
}
assert tuple(_CORRUPTIONS) == NAMES


# ---------------------------------------------------------------------------- choosing

def parse_names(text):
    """``"all"``, a group (``noise``, ``blur``, ``weather``, ``digital``), or names and groups
    separated by commas -> the list of corruption names, in CIFAR-10-C's order."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise UserError("no corruption named: give 'all', a group "
                        f"({', '.join(GROUPS)}) or names separated by commas")
    chosen = set()
    for part in parts:
        if part == "all":
            chosen.update(NAMES)
        elif part in GROUPS:
            chosen.update(GROUPS[part])
        elif part in NAMES:
            chosen.add(part)
        else:
            raise UserError(f"unknown corruption {part!r}{did_you_mean(part, [*NAMES, *GROUPS, 'all'])}; "
                            f"give 'all', a group ({', '.join(GROUPS)}) or names from: {', '.join(NAMES)}")
    return [name for name in NAMES if name in chosen]


def parse_severities(text):
    """``"1-5"``, ``"3"``, ``"1,3,5"`` (or a mix, ``"1-2,5"``) -> sorted list of severities."""
    chosen = set()
    parts = [p.strip() for p in str(text).split(",")]
    for part in parts:
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            a = b = None
        if a is None or not (1 <= a <= b <= 5) or (sep and not hi.strip()):
            raise UserError(f"bad corruption severities {text!r}: give severities from 1 to 5 as "
                            "'1-5', '3' or '1,3,5'")
        chosen.update(range(a, b + 1))
    return sorted(chosen)


# ---------------------------------------------------------------------------- the published files

def _open_npy(path):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} as a NumPy array: {e}") from None


def load_real(folder, names, severities, limit=None):
    """The user's CIFAR-10-C: ``<folder>/labels.npy`` and one ``<folder>/<name>.npy`` per
    corruption, uint8 (5 * K, 32, 32, 3): the K = 10,000 test images at severity 1, then
    at 2, ... 5 (K is taken from ``labels.npy``, which every file must match).

    Every file named is opened (memory-mapped, no pickles) and checked before anything is
    returned, so a bad folder fails at once with one line naming the file. Returns an
    iterator of ``(name, severity, images, labels)``: the first ``limit`` images of each
    severity (all K if None), read into memory one severity at a time.
    """
    folder = Path(folder)
    names = list(names)
    for name in names:
        _check_name(name)
    severities = [_check_severity(s) for s in severities]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise UserError(f"the number of CIFAR-10-C images per severity must be a whole number >= 1, not {limit!r}")
    if not folder.is_dir():
        raise UserError(f"CIFAR-10-C folder {folder} does not exist")
    labels_path = folder / "labels.npy"
    if not labels_path.is_file():
        raise UserError(f"{folder} is not a CIFAR-10-C folder: it has no labels.npy")
    labels = _open_npy(labels_path)
    levels = len(SEVERITIES)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) == 0 or len(labels) % levels:
        raise UserError(f"{labels_path} holds {labels.dtype} {labels.shape}, not CIFAR-10-C's labels "
                        f"(integers, the same number for each of the {levels} severities: 50,000)")
    per_severity = len(labels) // levels
    count = per_severity if limit is None else min(int(limit), per_severity)
    arrays = {}
    for name in names:
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise UserError(f"CIFAR-10-C file {path} is missing")
        a = _open_npy(path)
        if a.shape != (len(labels), SIZE, SIZE, 3) or a.dtype != np.uint8:
            raise UserError(f"{path} holds {a.dtype} {a.shape}, not uint8 ({len(labels)}, {SIZE}, {SIZE}, 3) "
                            "(one image per label in labels.npy)")
        arrays[name] = a

    def batches():
        for name in names:
            for s in severities:
                start = (s - 1) * per_severity
                yield (name, s, np.array(arrays[name][start:start + count]),
                       np.array(labels[start:start + count], dtype=np.int64))

    return batches()
