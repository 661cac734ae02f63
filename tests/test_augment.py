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
