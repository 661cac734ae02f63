"""cvae.core.latent's maths as the app and the site use it, without MNIST (a random model and
random images): encodings and decodings the same in any batch size and for every image shape
accepted, bad shapes and points refused; the sliders' bounds; where a point falls on the manifold
image and the browser's map of it; pixels as bytes; the evaluation's mean over images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cvae.core.latent import (decode_grid, decode_point, decode_points, encode_dataset, evaluate, grid_pixel,
                              grid_points, latent_bounds, manifold_map, to_uint8)
from devkit import random_model


@pytest.fixture(scope="module")
def net():
    return random_model(seed=5)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_encodings_are_the_same_in_any_batch_size_and_for_every_accepted_shape(net):
    x = images(7)
    mu, lv = encode_dataset(net, x)
    assert mu.shape == lv.shape == (7, 2) and mu.dtype == lv.dtype == np.float32
    with torch.no_grad():
        want_mu, want_lv = net.encode(x)
    np.testing.assert_allclose(mu, want_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(lv, want_lv.numpy(), atol=1e-5)
    for batch in (1, 3):  # 3: a last batch of one image
        got = encode_dataset(net, x, batch_size=batch)
        np.testing.assert_allclose(got[0], mu, atol=1e-5)
        np.testing.assert_allclose(got[1], lv, atol=1e-5)
    # (N, 28, 28) as a NumPy array, and one (28, 28) image, are the same digits.
    np.testing.assert_allclose(encode_dataset(net, x[:, 0].numpy().astype(np.float64))[0], mu, atol=1e-5)
    np.testing.assert_allclose(encode_dataset(net, x[2, 0].numpy())[0], mu[2:3], atol=1e-5)
    empty_mu, empty_lv = encode_dataset(net, np.zeros((0, 28, 28)))
    assert empty_mu.shape == empty_lv.shape == (0, 2) and empty_mu.dtype == np.float32
    for bad in (np.zeros((2, 28, 27)), np.zeros((2, 3, 28, 28)), np.zeros(784), np.zeros((1, 1, 1, 28, 28))):
        with pytest.raises(ValueError, match=r"images must be \(N,1,28,28\), \(N,28,28\) or \(28,28\)"):
            encode_dataset(net, bad)


def test_decodings_are_the_same_in_any_batch_size_and_bad_points_are_refused(net):
    z = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    out = decode_points(net, z)
    assert out.shape == (5, 28, 28) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    with torch.no_grad():
        np.testing.assert_allclose(out, net.decode(torch.from_numpy(z))[:, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(decode_points(net, z, batch_size=2), out, atol=1e-6)
    np.testing.assert_allclose(decode_points(net, z[3]), out[3:4], atol=1e-6)  # one point, 1-D
    np.testing.assert_allclose(decode_point(net, *z[1]), out[1], atol=1e-6)
    assert decode_points(net, np.zeros((0, 2))).shape == (0, 28, 28)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\); got \(1, 3\)"):
        decode_points(net, [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="z must have shape"):
        decode_points(net, np.zeros((1, 1, 2)))
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match="NaN or infinite"):
            decode_points(net, [[0.0, 0.0], [bad, 1.0]])


def test_the_grid_asks_for_a_size_and_ranges_it_can_draw(net):
    gx, gy = grid_points(60, (-1, 1), (0, 2))  # the largest grid
    assert len(gx) == len(gy) == 60 and gx[0] == -1 and gx[-1] == 1 and gy[0] == 2 and gy[-1] == 0
    gx, gy = grid_points(1, (-1, 1), (0, 2))  # one digit, at the low ends
    assert (gx.tolist(), gy.tolist()) == ([-1.0], [0.0])
    for n in (0, 61):
        with pytest.raises(ValueError, match=f"n must be between 1 and 60, got {n}"):
            grid_points(n)
    for name, r1, r2 in (("z1", (1, 1), (0, 2)), ("z1", (2, 1), (0, 2)), ("z1", (0, np.inf), (0, 2)),
                         ("z1", (np.nan, 1), (0, 2)), ("z2", (0, 1), (3, 3)), ("z2", (0, 1), (-np.inf, 0))):
        with pytest.raises(ValueError, match=f"^{name} range must be finite with low < high"):
            grid_points(4, r1, r2)
    with pytest.raises(ValueError, match="^a 2-D grid needs a model with latent_dim 2$"):
        decode_grid(random_model(latent_dim=3), n=2)


def test_the_sliders_cover_every_encoding_with_a_margin_on_half_steps():
    z = np.array([[-1.2, 0.3], [2.0, 4.1], [0.0, -0.7]], np.float32)
    # z1 spans 3.2: a margin of 0.32 each side, out to half steps; z2 spans 4.8: 0.48.
    assert latent_bounds(z) == (-2.0, 2.5, -1.5, 5.0)
    # Digits all in one place still get a slider a step wide, centred on them.
    assert latent_bounds(np.full((4, 2), 1.1)) == (0.5, 1.5, 0.5, 1.5)
    # Without a margin, still half a step beyond the outermost digits, out to whole steps.
    assert latent_bounds(z, margin=0.0, step=1.0) == (-2.0, 3.0, -2.0, 5.0)
    # A third dimension is not a slider's; a NaN there changes nothing.
    z3 = np.column_stack([z, [np.nan, 9.0, -9.0]])
    assert latent_bounds(z3) == (-2.0, 2.5, -1.5, 5.0)
    for bad in (np.zeros((0, 2)), np.zeros(4), np.zeros((3, 1)), np.array([[0.0, 1.0], [np.inf, 0.0]]),
                np.array([[0.0, np.nan]])):
        assert latent_bounds(bad) == (-4.0, 4.0, -4.0, 4.0)


R1, R2 = (-2.0, 2.0), (-1.0, 2.0)  # spans of 4 and 3: a slip of one axis' range for the other shows


def test_a_point_falls_on_the_centre_of_its_digit_in_the_manifold_image():
    n = 4
    gx, gy = grid_points(n, R1, R2)
    for i in range(n):
        for j in range(n):
            assert grid_pixel(gx[j], gy[i], n, R1, R2) == pytest.approx(((j + 0.5) * 28, (i + 0.5) * 28), abs=1e-4)
    assert grid_pixel(0.0, 0.5, n, R1, R2, cell=10) == pytest.approx((20.0, 20.0))  # the middle of 4 cells of 10
    # The ranges' edges are on the image; a hair beyond any of them is not.
    assert grid_pixel(-2.0, -1.0, n, R1, R2) == pytest.approx((14.0, 98.0))
    for z1, z2 in ((-2.01, 0.0), (2.01, 0.0), (0.0, -1.01), (0.0, 2.01)):
        assert grid_pixel(z1, z2, n, R1, R2) is None
    # A one-digit grid: every point inside is on its only digit.
    assert grid_pixel(1.5, -0.5, 1, R1, R2) == (14.0, 14.0)
    assert grid_pixel(1.5, -0.5, 1, R1, R2, cell=10) == (5.0, 5.0)


@pytest.mark.parametrize("n, cell, r1, r2", [(15, 28, (-2.0, 2.0), (-1.0, 3.0)), (4, 10, R1, R2), (1, 28, R1, R2)])
def test_the_browsers_ring_map_puts_a_point_where_the_page_does(n, cell, r1, r2):
    m = manifold_map(n, r1, r2, cell)
    assert m["inside"] == [*r1, *r2] and m["cell"] == cell and m["side"] == n * cell
    rng = np.random.default_rng(1)
    for z1, z2 in np.column_stack([rng.uniform(*r1, 20), rng.uniform(*r2, 20)]):
        x, y = grid_pixel(z1, z2, n, r1, r2, cell)
        assert m["x"][0] * z1 + m["x"][1] == pytest.approx(x, abs=1e-9)
        assert m["y"][0] * z2 + m["y"][1] == pytest.approx(y, abs=1e-9)


def test_pixels_become_bytes_rounded_and_clipped():
    got = to_uint8(np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 100.4 / 255, 1.0, 1.7]))
    assert got.dtype == np.uint8 and got.tolist() == [0, 0, 0, 1, 100, 255, 255]


def test_the_evaluation_is_a_mean_over_images_whatever_the_batches(net):
    x = (images(10, seed=2) > 0.5).float()
    r = evaluate(net, x, seed=3)
    assert r["n"] == 10 and r["loss"] == pytest.approx(r["recon"] + r["kl"], rel=1e-6)
    assert r["kl"] > 0 and r["recon"] > 0
    # The noise is drawn for all images at once: batches of 4, 4 and 2 give the same means.
    for batch in (4, 3, 1):
        assert evaluate(net, x, batch_size=batch, seed=3) == pytest.approx(r, rel=1e-5)
    assert r != pytest.approx(evaluate(net, x, seed=4), rel=1e-6)  # the seed draws the noise
    with pytest.raises(ValueError, match="zero images"):
        evaluate(net, np.zeros((0, 28, 28)))


def test_the_evaluation_leaves_the_model_in_the_mode_it_found(net):
    x = images(2)
    net.train()
    try:
        evaluate(net, x)
        assert net.training
    finally:
        net.eval()
    evaluate(net, x)
    assert not net.training


def test_the_collapse_message_speaks_of_one_dimension_or_several():
    from cvae.core.latent import collapse_message, spread

    one = collapse_message([1.0, 0.01])
    assert one == ("Posterior collapse in z2 (spread 0.010): the encoder sends every digit to about the same value "
                   "there, so that dimension carries nothing and the decoder ignores it (the KL term makes an unused "
                   "dimension cheapest at the prior). Train longer, or use the quick recipe (`--recipe quick`).")
    both = collapse_message([0.01, 0.02, 1.0])
    assert "those dimensions carry nothing" in both and "ignores them " in both and "that dimension" not in both
    assert spread(np.zeros((0, 2))) == []  # no digits: no spread to judge


def test_morphs_take_their_edges_and_one_dimensional_points_and_name_the_bad_end():
    from cvae.core.latent import interpolate

    assert interpolate([0.0], [1.0], 2).tolist() == [[0.0], [1.0]]  # a 1-D latent space, the fewest steps
    assert len(interpolate([0.0, 0.0], [1.0, 1.0], 64)) == 64  # the most
    # an end given as a row (1, d), as an encoder returns one digit's code, is that point
    assert interpolate(np.zeros((1, 2)), [1.0, 1.0], 3).tolist() == [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    with pytest.raises(ValueError, match="^z_start contains NaN"):
        interpolate([np.nan, 0.0], [1.0, 1.0], 5)
    with pytest.raises(ValueError, match="^z_end is empty"):
        interpolate([0.0, 0.0], [], 5)
    with pytest.raises(ValueError, match="^the endpoints differ in dimension: 2 and 3$"):
        interpolate([0.0, 0.0], [1.0, 1.0, 1.0], 5)
    with pytest.raises(ValueError, match="^steps must be between 2 and 64, got 65$"):
        interpolate([0.0, 0.0], [1.0, 1.0], 65)


def test_more_of_the_grid_and_its_ring():
    assert latent_bounds(np.full((4, 2), 0.8)) == (0.5, 1.5, 0.5, 1.5)  # half a step beyond, each side
    assert grid_pixel(2.0, -1.0, 2, R1, R2) == pytest.approx((42.0, 42.0))  # a 2 x 2 grid's bottom right
    assert manifold_map(4, R1, R2)["cell"] == 28  # the decoder's digits
    m, r1, r2 = manifold_map(4, (-3.0, 1.0), (0.5, 2.0), 10), (-3.0, 1.0), (0.5, 2.0)
    for z1, z2 in ((-3.0, 0.5), (0.2, 1.9), (-1.0, 1.0)):
        assert (m["x"][0] * z1 + m["x"][1], m["y"][0] * z2 + m["y"][1]) == \
            pytest.approx(grid_pixel(z1, z2, 4, r1, r2, 10), abs=1e-9)


def test_images_in_double_precision_are_the_same_digits(net):
    x = images(3)
    np.testing.assert_allclose(encode_dataset(net, x.double())[0], encode_dataset(net, x)[0], atol=1e-6)
