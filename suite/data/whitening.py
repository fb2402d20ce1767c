"""Global contrast normalisation and ZCA whitening (``data.normalize: zca``), the
preprocessing of Springenberg et al. (2015, "Striving for Simplicity: The All
Convolutional Net", section 3.1), who follow Goodfellow et al. (2013, maxout networks)
and pylearn2's ``make_cifar10_gcn_whitened.py``:

* GCN: each image's 3,072 values minus their mean, scaled to the norm ``scale`` (55).
* ZCA: ``x -> (x - mu) W`` with ``W = V diag(1 / sqrt(lambda + bias)) V^T``, from the
  mean ``mu`` and the covariance ``V diag(lambda) V^T`` of the GCN'd *training* images;
  ``bias`` (pylearn2's ``filter_bias``, 0.1) keeps the near-zero eigenvalues of the
  finest detail from being blown up into noise.

``fit`` computes ``mu`` and ``W`` once per run, which ``train.py`` writes to the run
folder (``whitening.npz``); every sidecar names that file and its SHA-256, so that
evaluation, visualisation and export apply exactly the whitening the network was trained
with, or stop with one line. ``layers`` is the whitening as built-in Keras layers
(GCN is a ``LayerNormalization`` without centre and scale whose factor folds into the
whitening ``Dense``), so it runs under every backend and exports.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.core.atomic import atomic_path
from suite.core.errors import UserError

FILE = "whitening.npz"
GCN_SCALE = 55.0
BIAS = 0.1
EPSILON = 1e-6       # added to each image's pixel variance (pixel units): a flat image stays 0
CHUNK = 4096         # images per float64 block while the covariance is summed


@dataclass
class Whitening:
    """``mu`` and ``W`` of GCN + ZCA for images of ``shape``, fitted on ``images`` images."""
    mean: np.ndarray     # (D,) float32, D = height * width * channels
    matrix: np.ndarray   # (D, D) float32, symmetric
    shape: tuple
    images: int
    scale: float = GCN_SCALE
    bias: float = BIAS

    @property
    def sha256(self):
        digest = hashlib.sha256()
        for array in (self.mean, self.matrix):
            digest.update(np.ascontiguousarray(array, "<f4").tobytes())
        return digest.hexdigest()

    def describe(self, file=FILE):
        """What a sidecar records: the file, its digest, and how it was computed."""
        return {"file": file, "sha256": self.sha256, "gcn_scale": self.scale, "bias": self.bias,
                "epsilon": EPSILON, "fit_images": self.images, "shape": list(self.shape),
                "note": "x = GCN(uint8 pixels, row-major HWC); x_float = (x - mean) @ matrix (whitening.npz)"}

    def save(self, path):
        with atomic_path(Path(path), suffix=".npz") as tmp:
            np.savez(tmp, mean=self.mean, matrix=self.matrix, shape=np.array(self.shape), images=self.images,
                     scale=self.scale, bias=self.bias)

    def apply(self, images):
        """GCN + ZCA of uint8 ``images`` (N, H, W, C) in numpy: float32 of the same shape."""
        x = gcn(images.reshape(len(images), -1).astype(np.float64), self.scale)
        return ((x - self.mean) @ self.matrix).astype(np.float32).reshape(images.shape)

    def layers(self, name="whiten"):
        """uint8 images -> GCN -> ZCA, as a ``keras.Sequential`` of built-in layers (float32)."""
        import keras  # lazy: keeps Keras unloaded for fitting and reading whitening files

        d = int(np.prod(self.shape))
        kernel = self.matrix * (self.scale / np.sqrt(d))  # LayerNormalization gives (x - m) / std; GCN scales it
        dense = keras.layers.Dense(d, trainable=False, dtype="float32", name="zca")
        model = keras.Sequential([
            keras.Input(self.shape, dtype="uint8"),
            keras.layers.Rescaling(1.0, dtype="float32", name="to_float"),
            keras.layers.Reshape((d,), dtype="float32"),
            keras.layers.LayerNormalization(center=False, scale=False, epsilon=EPSILON, dtype="float32", name="gcn"),
            dense,
            keras.layers.Reshape(self.shape, dtype="float32"),
        ], name=name)
        dense.set_weights([kernel.astype("float32"), (-self.mean @ self.matrix).astype("float32")])
        return model


def gcn(x, scale=GCN_SCALE):
    """Rows of ``x`` (float) minus their mean, scaled to norm ``scale`` (``EPSILON`` is added
    to each row's variance, as in the Keras layers)."""
    x = x - x.mean(axis=1, keepdims=True)
    return x * (scale / np.sqrt(x.shape[1])) / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + EPSILON)


def fit(images, bias=BIAS, scale=GCN_SCALE):
    """The ``Whitening`` of uint8 training ``images`` (N, H, W, C), in float64.

    With fewer images than dimensions the covariance has rank below N, and the
    eigenvectors of the N x N Gram matrix give its nonzero part; every other direction
    gets the factor ``1 / sqrt(bias)``. Both ways give the same ``W``; the small one is
    what keeps a quick run on a subset quick."""
    n, d = len(images), int(np.prod(images.shape[1:]))
    if n < 2:
        raise UserError(f"data.normalize: zca needs at least 2 training images, got {n}")
    mean = np.zeros(d)
    for start in range(0, n, CHUNK):
        mean += gcn(images[start:start + CHUNK].reshape(-1, d).astype(np.float64), scale).sum(0)
    mean /= n
    if n < d:
        centred = gcn(images.reshape(n, d).astype(np.float64), scale) - mean
        lam, u = np.linalg.eigh(centred @ centred.T / n)
        keep = lam > lam.max() * 1e-12
        vectors = centred.T @ u[:, keep] / np.sqrt(lam[keep] * n)  # unit eigenvectors of the covariance
        factors = 1 / np.sqrt(lam[keep] + bias) - 1 / np.sqrt(bias)
        matrix = np.eye(d) / np.sqrt(bias) + (vectors * factors) @ vectors.T
    else:
        cov = np.zeros((d, d))
        for start in range(0, n, CHUNK):
            block = gcn(images[start:start + CHUNK].reshape(-1, d).astype(np.float64), scale) - mean
            cov += block.T @ block
        lam, vectors = np.linalg.eigh(cov / n)
        matrix = (vectors / np.sqrt(np.maximum(lam, 0) + bias)) @ vectors.T
    return Whitening(mean.astype(np.float32), matrix.astype(np.float32), tuple(images.shape[1:]), n, scale, bias)


def of_preprocessing(preprocessing, folder):
    """The ``Whitening`` a sidecar's ``preprocessing`` record names (``load``, from ``folder``),
    or None when the weights were not trained on whitened images."""
    if preprocessing.get("normalize") != "zca":
        return None
    return load(folder, preprocessing.get("zca"))


def load(folder, record):
    """The ``Whitening`` that a sidecar's ``preprocessing["zca"]`` ``record`` names, from
    ``folder`` (the sidecar's); UserError when the file is missing, unreadable or not the
    one the weights were trained with."""
    if not isinstance(record, dict) or not isinstance(record.get("file"), str) or "sha256" not in record:
        raise UserError("the sidecar's preprocessing.zca does not name a whitening file and its sha256")
    path = Path(folder) / record["file"]
    if not path.is_file():
        raise UserError(f"{path}: missing; the weights were trained on ZCA-whitened images and need this file "
                        f"(data.normalize: zca); copy it beside the sidecar")
    whitening = read(path)
    if whitening.sha256 != record["sha256"]:
        raise UserError(f"{path}: not the whitening these weights were trained with (sha256 "
                        f"{whitening.sha256[:12]}..., the sidecar records {str(record['sha256'])[:12]}...)")
    return whitening


def read(path):
    """The ``Whitening`` in the file ``path``; UserError if it is not a readable one."""
    try:
        with np.load(path, allow_pickle=False) as f:
            whitening = Whitening(f["mean"], f["matrix"], tuple(int(v) for v in f["shape"]), int(f["images"]),
                                  float(f["scale"]), float(f["bias"]))
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(f"{path}: not a readable whitening file ({type(e).__name__}: {e})") from None
    d = int(np.prod(whitening.shape))
    if whitening.mean.shape != (d,) or whitening.matrix.shape != (d, d):
        raise UserError(f"{path}: not a readable whitening file (mean {whitening.mean.shape}, "
                        f"matrix {whitening.matrix.shape} for images {whitening.shape})")
    return whitening
