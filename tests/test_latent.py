"""cvae.latent: encoding a dataset, decoding points and the manifold grid."""

import numpy as np
import pytest

from cvae import CVAE, decode_grid, decode_points, encode_dataset, load_mnist
from cvae.core.latent import grid_points
from devkit import DATA_DIR, needs_data


@needs_data
def test_latent_helpers():
    test_x, _ = load_mnist("test", DATA_DIR, download=False, limit=300)
    m = CVAE().eval()
    mu, lv = encode_dataset(m, test_x[:300], batch_size=128)
    assert mu.shape == lv.shape == (300, 2) and mu.dtype == np.float32
    imgs = decode_points(m, mu[:5])
    assert imgs.shape == (5, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1
    grid = decode_grid(m, n=4, z1_range=(-2, 2), z2_range=(-1, 3))
    assert grid.shape == (112, 112)
    gx, gy = grid_points(4, (-2, 2), (-1, 3))
    # Row 0 is the highest z2, column 0 the lowest z1, as in the tutorial's figure.
    assert np.allclose(grid[:28, :28], decode_points(m, [[gx[0], gy[0]]])[0])
    assert gy[0] == 3 and gx[0] == -2
    assert np.allclose(grid[-28:, 28:56], decode_points(m, [[gx[1], gy[-1]]])[0])
    with pytest.raises(ValueError):
        decode_grid(m, n=0)
    with pytest.raises(ValueError):
        decode_points(m, [[float("nan"), 0.0]])
