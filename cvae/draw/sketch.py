"""Turn a drawn digit into an MNIST-style 28x28 image.

MNIST's digits were size-normalised to fit a 20x20 box keeping their aspect ratio
(anti-aliasing gives grey levels), then placed in a 28x28 field so that the centre
of mass of the pixels lies at the field's centre. :func:`preprocess_drawing` does
the same to a canvas drawn in the browser: any grey, RGB or RGBA array, light ink
on a dark ground or dark ink on a light one.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image

from ..core.model import IMAGE_SIZE

BOX = 20  # MNIST's size-normalisation box
INK_THRESHOLD = 0.05  # grey level (0..1) below which a pixel counts as background
MAX_CANVAS_SIDE = 4096  # a drawing larger than this is refused (memory)
MAX_DATA_URL_CHARS = 8_000_000


class DrawingError(ValueError):
    """The drawing cannot be turned into a digit (empty, wrong shape, unreadable)."""


def canvas_to_ink(canvas) -> np.ndarray:
    """Ink intensity in [0, 1], shape (H, W), from a grey, RGB or RGBA canvas.

    - RGBA with any transparency: ink is the alpha channel (strokes on a transparent
      ground, whatever their colour).
    - Opaque: ink is the luminance; if the border is mostly light (dark ink on paper)
      it is inverted so that ink is bright, as in MNIST.
    Integer arrays are read as 0..255, float arrays as 0..1.
    """
    a = np.asarray(canvas)
    if a.dtype == bool:
        a = a.astype(np.float32)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DrawingError(f"the drawing must be a numeric image array, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise DrawingError(f"the drawing must be (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise DrawingError("the drawing has no pixels")
    if max(a.shape[:2]) > MAX_CANVAS_SIDE:
        raise DrawingError(f"the drawing is larger than {MAX_CANVAS_SIDE} px on a side")
    x = a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        x /= 255.0
    if not np.isfinite(x).all():
        raise DrawingError("the drawing contains NaN or infinite values")
    x = np.clip(x, 0.0, 1.0)
    if x.ndim == 3 and x.shape[2] == 4 and (x[:, :, 3] < 1.0).any():
        return np.ascontiguousarray(x[:, :, 3])
    if x.ndim == 3:
        x = x[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    if np.median(border) > 0.5:
        x = 1.0 - x
    return np.ascontiguousarray(x, dtype=np.float32)


def _fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is ``box`` px, keeping the aspect ratio (anti-aliased)."""
    h, w = crop.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    img = Image.fromarray(crop.astype(np.float32), mode="F")
    # LANCZOS (with its area-averaging prefilter when shrinking) gives the smooth grey
    # edges of MNIST's anti-aliased digits; it can ring slightly past [0, 1].
    out = np.asarray(img.resize((nw, nh), Image.Resampling.LANCZOS), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def center_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of mass of a non-negative image, in pixel-centre coordinates."""
    total = float(img.sum())
    if total <= 0:
        raise DrawingError("the drawing is empty")
    rows, cols = np.indices(img.shape)
    return float((rows * img).sum() / total), float((cols * img).sum() / total)


def preprocess_drawing(canvas, *, threshold: float = INK_THRESHOLD, box: int = BOX,
                       size: int = IMAGE_SIZE) -> np.ndarray:
    """An MNIST-style (size, size) float32 image in [0, 1] from a drawn canvas.

    Crops to the ink's bounding box, scales it to fit ``box`` x ``box`` keeping the
    aspect ratio, stretches the grey levels so the darkest ink is 1, and places it so
    that its centre of mass is at the centre of the field (moved as little as needed
    to keep every pixel inside). Raises :class:`DrawingError` on an empty drawing.
    """
    if not 1 <= box <= size:
        raise ValueError(f"box must be in [1, {size}], got {box}")
    ink = canvas_to_ink(canvas)
    mask = ink > threshold
    if not mask.any():
        raise DrawingError("The drawing is empty: draw a digit first.")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    crop = np.where(mask, ink, 0.0)[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    small = _fit_box(crop, box)
    peak = float(small.max())
    if peak <= 0:
        raise DrawingError("The drawing is empty: draw a digit first.")
    small = small / peak
    cy, cx = center_of_mass(small)
    h, w = small.shape
    # MNIST's digits have their centre of mass at (14, 14) in pixel-index coordinates
    # (size / 2, not the geometric centre 13.5): measured on the test set.
    centre = size / 2.0
    top = int(np.clip(np.rint(centre - cy), 0, size - h))
    left = int(np.clip(np.rint(centre - cx), 0, size - w))
    out = np.zeros((size, size), np.float32)
    out[top:top + h, left:left + w] = small
    return out


def decode_data_url(url: str) -> np.ndarray:
    """An image array (H, W, 4) uint8 from a ``data:image/png;base64,...`` URL.

    The browser canvas sends its drawing this way. Anything else (another scheme,
    broken base64, not an image, too large) raises :class:`DrawingError`.
    """
    if not isinstance(url, str):
        raise DrawingError("the drawing must be a data URL string")
    if len(url) > MAX_DATA_URL_CHARS:
        raise DrawingError("the drawing is too large")
    head, sep, body = url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise DrawingError("the drawing must be a base64 data:image/... URL")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as e:
        raise DrawingError(f"the drawing's base64 data is broken ({e})") from None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if max(img.size) > MAX_CANVAS_SIDE:
                raise DrawingError(f"the drawing is larger than {MAX_CANVAS_SIDE} px on a side")
            return np.asarray(img.convert("RGBA"))
    except DrawingError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DrawingError(f"the drawing is not a readable image ({type(e).__name__})") from None
