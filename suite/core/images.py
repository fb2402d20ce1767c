"""Image files (PNG, JPEG) as uint8 RGB arrays, bounded before they are decoded.

A PNG of a few hundred bytes can declare 100000 x 100000 pixels: 30 GB once decoded,
an out-of-memory kill instead of an error. PIL reads the declared size from the header
first and has a guard for this (``Image.MAX_IMAGE_PIXELS``, "decompression bomb
protection" in the Pillow docs), which by default only warns below twice its limit.
Here the limit is ``MAX_PIXELS`` and the warning is an error, and only the PNG and JPEG
decoders are tried, so an odd file never reaches PIL's other parsers.
"""

import warnings

import numpy as np
from PIL import Image, ImageOps

from suite.core.errors import UserError

MAX_PIXELS = 8192 * 8192  # 192 MiB as RGB; far beyond any photo worth shrinking to 32x32
FORMATS = ("PNG", "JPEG")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's guard is process-wide; this only tightens its default


def open_image(path, size=None):
    """The image at ``path``, turned upright as its EXIF orientation says (phone photos),
    as a (height, width, 3) uint8 RGB array; with ``size``, as a ``(size, size, 3)`` one
    (``to_square``).

    An unreadable, truncated, non-PNG/JPEG or too large file raises UserError with one
    line that names it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as im:
                rgb = ImageOps.exif_transpose(im).convert("RGB")  # upright, as its EXIF orientation says
                return np.array(rgb if size is None else to_square(rgb, size), dtype=np.uint8)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UserError(f"{path}: declares more than {MAX_PIXELS:,} pixels; refused before decoding") from None
    except FileNotFoundError:
        raise UserError(f"{path}: no such image file") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise UserError(f"{path}: not a readable {' or '.join(FORMATS)} image ({type(e).__name__}: {e})") from None


def to_square(rgb, size):
    """How a photo becomes a CIFAR-sized input: the largest centred square is cut out
    (CIFAR-10 images are square, the object filling the frame), then shrunk to ``size`` x
    ``size`` with antialiasing (PIL's Lanczos filter), so fine detail averages out instead
    of aliasing."""
    return ImageOps.fit(rgb, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
