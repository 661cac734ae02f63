"""The PyTorch port against the tutorial's real Keras model (tests/golden/keras_cvae.npz).

The golden file was made by tools/keras_golden.py with TensorFlow/Keras (a dev-only tool):
seeded weights in Keras' layouts (converted by cvae.core.importer), the Keras encoder's z_mean/z_log_var for 8 MNIST test
images (stored by index) and 8 synthetic ones, and the Keras decoder's images for 8 latent
points. Here the same weights are regenerated from the seed, mapped into the PyTorch model,
and the outputs must agree within 1e-5 (measured: about 5e-7). A port whose "same" padding, crop,
flatten order or activations differ from Keras misses by far more.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from cvae import CVAE, load_mnist
from cvae.core.importer import keras_to_state_dict
from devkit import DATA_DIR, REPO, needs_data

GOLDEN = REPO / "tests" / "golden" / "keras_cvae.npz"
TOL = 1e-5  # the bound; measured here: decoded 5.1e-7, z_mean 3.9e-7, z_log_var 4.9e-7


def _tool():
    spec = importlib.util.spec_from_file_location("keras_golden", REPO / "tools" / "keras_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # numpy only at import time
    return mod


@pytest.fixture(scope="module")
def golden() -> dict:
    with np.load(GOLDEN, allow_pickle=False) as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def model(golden) -> CVAE:
    names = [str(n) for n in golden["names"]]
    shapes = [tuple(int(s) for s in str(sh).split(",")) for sh in golden["shapes"]]
    keras = _tool().seeded_weights(int(golden["seed"]), names, shapes)
    m = CVAE().eval()
    m.load_state_dict(keras_to_state_dict(m.config, keras))  # strict: every tensor, every shape
    return m


def test_the_golden_file_is_small_and_not_trivial(golden):
    assert GOLDEN.stat().st_size < 40_000
    assert golden["decoded"].shape == (8, 28, 28) and golden["z_mean"].shape == (8, 2)
    # Outputs that vary (a constant image would not show a shifted one).
    assert golden["decoded"].std(axis=(1, 2)).max() > 0.1
    assert np.ptp(golden["z_mean"]) > 0.5


@pytest.mark.parametrize("channels_last", [False, True])
def test_decoder_matches_keras(model, golden, channels_last):
    model.decoder.channels_last = channels_last
    try:
        with torch.no_grad():
            got = model.decode(torch.from_numpy(golden["z_points"]))[:, 0].numpy()
    finally:
        model.decoder.channels_last = False
    err = np.abs(got - golden["decoded"]).max()
    assert err < TOL, f"decoded images differ from Keras by up to {err:.2e}"


def _check_encoder(model, x, want_mean, want_log_var):
    with torch.no_grad():
        z_mean, z_log_var = model.encode(x)
    for name, got, want in (("z_mean", z_mean, want_mean), ("z_log_var", z_log_var, want_log_var)):
        err = np.abs(got.numpy() - want).max()
        assert err < TOL, f"{name} differs from Keras by up to {err:.2e}"


@needs_data
def test_encoder_matches_keras_on_mnist(model, golden):
    x, _ = load_mnist("test", DATA_DIR, download=False)
    _check_encoder(model, x[torch.from_numpy(golden["test_indices"])], golden["z_mean"], golden["z_log_var"])


def test_encoder_matches_keras_on_synthetic_images(model, golden):
    x = torch.from_numpy(_tool().synthetic_images(int(golden["synthetic_seed"]))).unsqueeze(1)
    _check_encoder(model, x, golden["synthetic_z_mean"], golden["synthetic_z_log_var"])

