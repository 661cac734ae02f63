"""Digits as pictures: crisp upscaling, PNG (bytes or a data URI), tiled strips and grids,
animated GIFs. All return arrays or ``bytes``; nothing here touches the disk."""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
from PIL import Image

from ..core.latent import to_uint8

MAX_SCALE = 16
MAX_PIXELS = 40_000_000  # an exported image larger than this is refused (memory)


def _as_uint8_image(image) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"an image must be 2-D (H, W) with pixels; got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError("the image contains NaN or infinite values")
    return to_uint8(a)


def _upscale(a: np.ndarray, scale: int) -> np.ndarray:
    scale = int(scale)
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be an integer in [1, {MAX_SCALE}], got {scale}")
    if a.shape[0] * a.shape[1] * scale * scale > MAX_PIXELS:
        raise ValueError("the exported image would be too large; lower the scale")
    return _blocks(a, scale)


def _blocks(a: np.ndarray, scale: int) -> np.ndarray:
    """Nearest neighbour: each model pixel becomes a crisp scale x scale block."""
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1) if scale > 1 else a


def png_bytes(image, scale: int = 1, optimize: bool = False) -> bytes:
    """A greyscale PNG of a 2-D image (floats in [0, 1] or uint8), upscaled crisply.

    ``optimize`` makes a slightly smaller file several times more slowly."""
    a = _upscale(_as_uint8_image(image), scale)
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG", optimize=bool(optimize))
    return buf.getvalue()


def tile(images, ncols: int | None = None, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Images (N, H, W) in [0, 1] as one 2-D image: ``ncols`` per row (default: all in one
    row, a strip), separated by ``pad`` pixels of ``pad_value``."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim != 3 or a.shape[0] < 1:
        raise ValueError(f"images must be (N, H, W) with N >= 1; got shape {a.shape}")
    n, h, w = a.shape
    ncols = n if ncols is None else int(ncols)
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    pad = int(pad)
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    nrows = -(-n // ncols)
    ncols = min(ncols, n)
    out = np.full((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = a[i]
    return out


def gif_bytes(frames, duration_ms: int = 80, scale: int = 4, boomerang: bool = True, loop: int = 0) -> bytes:
    """An animated greyscale GIF of frames (N, H, W) in [0, 1].

    ``boomerang`` plays forward then back (without repeating the end frames), so a
    looping morph has no jump; ``loop=0`` loops for ever.
    """
    a = np.asarray(frames)
    if a.ndim != 3 or a.shape[0] < 1:
        raise ValueError(f"frames must be (N, H, W) with N >= 1; got shape {a.shape}")
    duration_ms = int(duration_ms)
    if not 20 <= duration_ms <= 10_000:
        raise ValueError(f"duration_ms must be in [20, 10000], got {duration_ms}")
    seq = [_upscale(_as_uint8_image(f), scale) for f in a]
    if boomerang and len(seq) > 2:
        seq = seq + seq[-2:0:-1]
    imgs = [Image.fromarray(f, mode="L") for f in seq]
    buf = io.BytesIO()
    if len(imgs) == 1:
        imgs[0].save(buf, format="GIF")
    else:
        # disposal=1 and optimize=False keep every frame whole, so a viewer that
        # starts anywhere shows a complete digit.
        imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=duration_ms,
                     loop=int(loop), optimize=False, disposal=1)
    return buf.getvalue()


def pixelate(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a 2-D image ([0,1] floats or uint8) to uint8.

    Done on the server so the browser never smooths a 28x28 digit into a blur.
    """
    return _blocks(_as_uint8_image(image), max(1, int(scale)))


def png_data_uri(image: np.ndarray) -> str:
    """A 2-D uint8 (or [0,1] float) image as a data:image/png URI (the last few are memoised)."""
    img = _as_uint8_image(image)
    return _png_uri(img.tobytes(), img.shape)


@functools.lru_cache(maxsize=8)
def _png_uri(raw: bytes, shape: tuple) -> str:
    # The same figure's image is asked for again on every full run; encoding it is ~0.1 s,
    # hashing it ~0.1 ms.
    buf = io.BytesIO()
    Image.fromarray(np.frombuffer(raw, np.uint8).reshape(shape)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sheet_png(images, columns: int, levels: int = 16) -> bytes:
    """Digits (N, H, W; uint8 or [0, 1]) as one PNG sheet, ``columns`` per row, each pixel one
    of ``levels`` grey levels (a palette PNG of 4 bits a pixel for 16): MNIST's 10,000 test
    digits in about 1 MB where 256 levels take 1.6 MB. Unused cells are black."""
    a = np.stack([_as_uint8_image(im) for im in images]) if len(images) else np.zeros((0, 28, 28), np.uint8)
    n, h, w = a.shape
    if n == 0 or columns < 1 or not 2 <= levels <= 256:
        raise ValueError(f"need N >= 1 images, columns >= 1 and 2-256 levels; got {n}, {columns}, {levels}")
    rows = -(-n // columns)
    grid = np.zeros((rows * columns, h, w), np.uint8)
    grid[:n] = np.rint(a.astype(np.float32) * (levels - 1) / 255).astype(np.uint8)
    grid = grid.reshape(rows, columns, h, w).transpose(0, 2, 1, 3).reshape(rows * h, columns * w)
    img = Image.fromarray(grid, mode="P")
    grey = np.rint(np.arange(levels) * 255 / (levels - 1)).astype(np.uint8)
    img.putpalette(np.repeat(grey, 3).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, bits=max(1, int(np.ceil(np.log2(levels)))))
    return buf.getvalue()
