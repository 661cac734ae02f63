"""cvae.training.augment: random turns and zooms of a share of the images."""

import pytest
import torch


def _centre_distance(img: torch.Tensor) -> torch.Tensor:
    """Intensity-weighted distance of each image's pixels from the image centre."""
    h, w = img.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    r = (yy.square() + xx.square()).sqrt()
    return (img[:, 0] * r).sum((1, 2)) / img[:, 0].sum((1, 2))


def test_random_affine_turns_and_zooms_the_chosen_share():
    from cvae.training.augment import random_affine

    gen = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731
    # A blob 6 px right of the centre: turning keeps its distance from the centre, zooming scales it.
    x = torch.zeros(400, 1, 28, 28)
    x[:, 0, 13:15, 19:21] = 1.0
    d0 = _centre_distance(x)
    turned = random_affine(x, gen(), p=1.0, degrees=90, zoom=0.0)
    assert not torch.equal(turned, x)
    torch.testing.assert_close(_centre_distance(turned), d0, atol=0.15, rtol=0)
    dy = turned[:, 0].sum(2).argmax(1).float()  # the row the blob went to: spread by the turn
    assert dy.std() > 2
    zoomed = random_affine(x, gen(), p=1.0, degrees=0.0, zoom=0.2)
    ratio = _centre_distance(zoomed) / d0
    assert 0.78 < ratio.min() < 0.9 and 1.1 < ratio.max() < 1.22, (ratio.min(), ratio.max())
    # Nothing to do: the same images back.
    assert random_affine(x, gen(), p=0.0, degrees=10, zoom=0.1) is x
    torch.testing.assert_close(random_affine(x, gen(), p=1.0, degrees=0, zoom=0), x, atol=1e-5, rtol=0)
    # The share p of images is changed; the rest are left exactly as they were.
    out = random_affine(x, gen(1), p=0.3, degrees=10, zoom=0.05)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.25 < changed < 0.35
    # Seeded: repeatable; another seed, other draws.
    assert torch.equal(out, random_affine(x, gen(1), p=0.3, degrees=10, zoom=0.05))
    assert not torch.equal(out, random_affine(x, gen(2), p=0.3, degrees=10, zoom=0.05))
    with pytest.raises(ValueError):
        random_affine(x, gen(), p=1.5, degrees=10, zoom=0.05)


def _blob(n: int, dtype=torch.float32) -> torch.Tensor:
    """n images of a 2 x 2 blob 6 px right of the centre."""
    x = torch.zeros(n, 1, 28, 28, dtype=dtype)
    x[:, 0, 13:15, 19:21] = 1.0
    return x


def _where(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each blob's angle (degrees, anticlockwise on screen from the right) and distance from the centre."""
    yy, xx = torch.meshgrid(torch.arange(28.0) - 13.5, torch.arange(28.0) - 13.5, indexing="ij")
    w = img[:, 0].double()
    cx, cy = (w * xx).sum((1, 2)) / w.sum((1, 2)), (w * yy).sum((1, 2)) / w.sum((1, 2))
    return torch.rad2deg(torch.atan2(-cy, cx)), torch.hypot(cx, cy)


def test_turns_go_either_way_up_to_the_largest():
    from cvae.training.augment import random_affine

    x = _blob(400)
    angle, _ = _where(random_affine(x, torch.Generator().manual_seed(0), p=1.0, degrees=60, zoom=0.0))
    assert angle.abs().max() <= 61 and angle.abs().max() > 55  # up to 60 degrees, no further
    assert 0.4 < (angle > 0).float().mean() < 0.6  # as often one way as the other
    assert angle.abs().mean() == pytest.approx(30, abs=3)  # uniform in [-60, 60]


def test_a_turned_digit_is_zoomed_by_the_same_factors_as_an_unturned_one():
    from cvae.training.augment import random_affine

    x = _blob(400)
    _, d0 = _where(x)
    angle, d = _where(random_affine(x, torch.Generator().manual_seed(0), p=1.0, degrees=90, zoom=0.5))
    ratio = d / d0
    assert ratio.min() > 0.45 and ratio.max() < 1.55, (ratio.min(), ratio.max())
    # The scale does not depend on the turn: the digits turned most are zoomed over the whole range.
    most = ratio[angle.abs() > 60]
    assert most.min() < 0.7 and most.max() > 1.3


def test_any_batch_size_and_precision():
    """One image (a shard of a small last batch) is augmented like any other; an empty batch comes
    back empty; float64 and bfloat16 images come back in their precision."""
    from cvae.training.augment import random_affine

    one = random_affine(_blob(1), torch.Generator().manual_seed(0), p=1.0, degrees=30, zoom=0.1)
    assert one.shape == (1, 1, 28, 28) and not torch.equal(one, _blob(1))
    assert random_affine(_blob(0), torch.Generator(), p=1.0, degrees=30, zoom=0.1).shape == (0, 1, 28, 28)
    for dtype in (torch.float64, torch.bfloat16):
        out = random_affine(_blob(8, dtype), torch.Generator().manual_seed(0), p=1.0, degrees=30, zoom=0.1)
        assert out.dtype == dtype and not torch.equal(out, _blob(8, dtype))
        _, d = _where(out.float())
        assert ((d > 6 * 0.85) & (d < 6 * 1.15)).all()


@pytest.mark.parametrize("p, degrees, zoom", [(1.0, 180.0, 0.0), (1.0, 0.0, 0.999), (0.0, 0.0, 0.0)])
def test_the_largest_settings_are_taken(p, degrees, zoom):
    from cvae.training.augment import random_affine

    assert random_affine(_blob(4), torch.Generator(), p, degrees, zoom).shape == (4, 1, 28, 28)


@pytest.mark.parametrize("p, degrees, zoom", [(1.01, 8, 0.06), (-0.1, 8, 0.06), (1, 180.5, 0.06), (1, -1, 0.06),
                                              (1, float("nan"), 0.06), (1, 8, 1.0), (1, 8, 1.5), (1, 8, -0.01)])
def test_settings_out_of_range_are_refused_with_the_values(p, degrees, zoom):
    from cvae.training.augment import random_affine

    with pytest.raises(ValueError) as e:
        random_affine(_blob(2), torch.Generator(), p, degrees, zoom)
    assert str(e.value) == f"bad augmentation: p={p}, degrees={degrees}, zoom={zoom}"


def test_the_draws_are_made_where_the_images_are_whatever_the_default_device():
    """A caller may have set another default device (torch.set_default_device, or ``with
    torch.device(...)``); the images and their generator say where the work is done."""
    from cvae.training.augment import random_affine

    x, gen = _blob(6), torch.Generator().manual_seed(4)
    want = random_affine(x, torch.Generator().manual_seed(4), p=0.5, degrees=30, zoom=0.1)
    with torch.device("meta"):
        got = random_affine(x, gen, p=0.5, degrees=30, zoom=0.1)
    assert got.device.type == "cpu"
    torch.testing.assert_close(got, want, atol=0, rtol=0)
