"""cvae.draw.images (and cvae.core.encodings' CSV): PNG, GIF, tiled strips and the encodings as CSV."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from cvae.core.encodings import encodings_csv

from cvae.draw.images import gif_bytes, png_bytes, tile


def test_png_is_valid_and_crisp():
    img = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    data = png_bytes(img, scale=3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert back.shape == (84, 84)
    np.testing.assert_array_equal(back[::3, ::3], np.clip(np.rint(img * 255), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(back[1::3, 2::3], back[::3, ::3])
    for bad in (np.zeros((2, 2, 2)), np.full((2, 2), np.nan)):
        with pytest.raises(ValueError):
            png_bytes(bad)
    with pytest.raises(ValueError):
        png_bytes(img, scale=0)


def test_tile_lays_out_a_strip_and_a_grid():
    imgs = np.stack([np.full((4, 5), i / 10, np.float32) for i in range(7)])
    strip = tile(imgs, pad=1)
    assert strip.shape == (4, 7 * 5 + 6)
    assert strip[0, 6] == pytest.approx(0.1) and strip[0, 5] == 1.0
    grid = tile(imgs, ncols=3, pad=2)
    assert grid.shape == (3 * 4 + 4, 3 * 5 + 4)
    assert grid[12, 0] == pytest.approx(0.6)
    assert grid[-1, -1] == 1.0  # the empty cells are padding


def test_gif_is_animated_and_loops_forward_and_back():
    frames = np.stack([np.full((28, 28), i / 5, np.float32) for i in range(6)])
    data = gif_bytes(frames, duration_ms=50, scale=2)
    assert data[:6] == b"GIF89a"
    with Image.open(io.BytesIO(data)) as im:
        assert im.is_animated and im.n_frames == 6 + 4
        assert im.size == (56, 56)
        assert im.info.get("loop") == 0
        means = []
        for k in range(im.n_frames):
            im.seek(k)
            means.append(np.asarray(im.convert("L"), dtype=np.float32).mean())
            assert im.info["duration"] == 50
    np.testing.assert_allclose(means, [round(v * 255) for v in [0, .2, .4, .6, .8, 1, .8, .6, .4, .2]], atol=1)
    once = gif_bytes(frames, boomerang=False)
    with Image.open(io.BytesIO(once)) as im:
        assert im.n_frames == 6


def test_encodings_csv_round_trips(enc):
    n = 50
    data = encodings_csv(enc["z_mean"][:n], enc["z_log_var"][:n], enc["label"][:n])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == ["index", "label", "z1", "z2", "z1_log_var", "z2_log_var", "z1_std", "z2_std"]
    assert len(rows) == n
    got = np.array([[float(r["z1"]), float(r["z2"]), float(r["z1_log_var"]), float(r["z2_std"])] for r in rows])
    want = np.column_stack([enc["z_mean"][:n], enc["z_log_var"][:n, 0], np.exp(0.5 * enc["z_log_var"][:n, 1])])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [int(r["label"]) for r in rows] == enc["label"][:n].tolist()
    assert [int(r["index"]) for r in rows] == list(range(n))
    with pytest.raises(ValueError):
        encodings_csv(enc["z_mean"][:3], enc["z_log_var"][:2])
