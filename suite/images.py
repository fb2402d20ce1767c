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
from PIL import Image

from suite.errors import UserError

MAX_PIXELS = 8192 * 8192  # 192 MiB as RGB; far beyond any photo worth shrinking to 32x32
FORMATS = ("PNG", "JPEG")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's guard is process-wide; this only tightens its default


def open_image(path):
    """The image at ``path`` as a (height, width, 3) uint8 RGB array.

    An unreadable, truncated, non-PNG/JPEG or too large file raises UserError with one
    line that names it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as im:
                return np.array(im.convert("RGB"), dtype=np.uint8)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UserError(f"{path}: declares more than {MAX_PIXELS:,} pixels; refused before decoding") from None
    except FileNotFoundError:
        raise UserError(f"{path}: no such image file") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise UserError(f"{path}: not a readable {' or '.join(FORMATS)} image ({type(e).__name__}: {e})") from None
