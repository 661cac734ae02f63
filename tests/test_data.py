"""cvae.core.data: MNIST through torchvision, as float tensors in [0, 1]."""

import torch

from cvae import load_mnist
from devkit import DATA_DIR, needs_data

pytestmark = needs_data


def test_mnist_loads_as_floats_in_unit_range():
    x, y = load_mnist("test", DATA_DIR, download=False)
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1
    assert y.shape == (10_000,) and set(y.tolist()) == set(range(10))
    # pixel/255, not binarised
    assert len(torch.unique(x[:10])) > 2
