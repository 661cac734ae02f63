"""cvae.core.payloads: the decoder payload (the layer list and the weights) and the encodings payload."""

import base64
import json

import numpy as np
import pytest
import torch

from cvae import decode_points, load_checkpoint
from cvae.core.model import decoder_spec
from cvae.core.payloads import decoder_payload, payload_tensors, points_payload, tensor_names
from cvae.core.shipped import SHIPPED_CHECKPOINT
from devkit import random_model
from webdecode import numpy_decode

Z_POINTS = np.array([[0, 0], [1.5, -2], [-3, 2.5], [0.25, 0.75], [4, 4], [-4, -4]], np.float32)


def test_payload_is_compact_json_and_round_trips_exactly():
    model = random_model()
    p = decoder_payload(model)
    json.dumps(p)  # JSON-serialisable as it is sent
    n = sum(t.numel() for t in model.decoder.parameters())
    assert n == 65_089 and p["n_floats"] == n
    assert len(base64.b64decode(p["b64"])) == 4 * n  # float32: ~260 KB
    back = payload_tensors(p)
    state = model.decoder.state_dict()
    assert p["layers"] == decoder_spec(model.config)  # the one declaration travels with the weights
    assert list(back) == tensor_names(p["layers"]) == list(state)
    for name in back:
        assert back[name].dtype == np.float32
        assert list(back[name].shape) == p["tensors"][name]["shape"] == list(state[name].shape)
        np.testing.assert_array_equal(back[name], state[name].numpy())


def test_bytes_are_little_endian_float32():
    model = random_model()
    p = decoder_payload(model)
    raw = base64.b64decode(p["b64"])
    first = model.decoder.dense.weight.detach().numpy().ravel()[:4]
    np.testing.assert_array_equal(np.frombuffer(raw[:16], "<f4"), first)


def test_hash_is_stable_and_tracks_weights():
    model = random_model()
    h = decoder_payload(model)["hash"]
    assert decoder_payload(model)["hash"] == h
    assert decoder_payload(random_model(seed=0))["hash"] == h
    with torch.no_grad():
        model.decoder.deconv3.bias.add_(1e-6)
    assert decoder_payload(model)["hash"] != h
    assert decoder_payload(random_model(seed=1))["hash"] != h


def test_tampered_payload_is_rejected():
    p = decoder_payload(random_model())
    raw = bytearray(base64.b64decode(p["b64"]))
    raw[100] ^= 1
    with pytest.raises(ValueError, match="hash"):
        payload_tensors({**p, "b64": base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(ValueError, match="floats"):
        payload_tensors({**p, "b64": base64.b64encode(bytes(raw[:-4])).decode()})
    with pytest.raises(ValueError, match="format"):
        payload_tensors({**p, "format": "something-else"})


@pytest.mark.parametrize("cfg", [{}, {"filters": (8, 16)}], ids=["tutorial", "small-filters"])
def test_payload_alone_decodes_like_pytorch(cfg):
    """numpy_decode runs the JavaScript's forward pass from the payload only."""
    model = random_model(**cfg)
    want = decode_points(model, Z_POINTS)
    got = numpy_decode(decoder_payload(model), Z_POINTS)
    assert got.shape == want.shape == (len(Z_POINTS), 28, 28)
    assert np.abs(got - want).max() < 1e-5
    assert want.std() > 0.01  # the points give different, non-constant images


@pytest.mark.skipif(not SHIPPED_CHECKPOINT.is_file(), reason="no shipped checkpoint yet")
def test_shipped_model_payload_decodes_like_pytorch():
    model = load_checkpoint(SHIPPED_CHECKPOINT)
    assert np.abs(numpy_decode(decoder_payload(model), Z_POINTS) - decode_points(model, Z_POINTS)).max() < 1e-5


def test_points_payload_quantises_and_filters():
    rng = np.random.default_rng(0)
    z = rng.uniform(-5, 5, size=(500, 2)).astype(np.float32)
    z[0] = [np.nan, 0]
    labels = rng.integers(0, 10, 500)
    p = points_payload(z, labels, (-4, 4), (-3, 2))
    json.dumps(p)
    keep = np.isfinite(z).all(1) & (np.abs(z[:, 0]) <= 4) & (z[:, 1] >= -3) & (z[:, 1] <= 2)
    assert p["n"] == keep.sum() > 0
    raw = base64.b64decode(p["b64"])
    q = np.frombuffer(raw[:4 * p["n"]], "<u2").reshape(-1, 2) / 65535
    np.testing.assert_allclose(-4 + q[:, 0] * 8, z[keep, 0], atol=8 / 65535)
    np.testing.assert_allclose(2 - q[:, 1] * 5, z[keep, 1], atol=5 / 65535)  # y = 0 is the top (z2 high)
    np.testing.assert_array_equal(np.frombuffer(raw[4 * p["n"]:], np.uint8), labels[keep])
    assert points_payload(z, None, (-4, 4), (-3, 2))["hash"] != p["hash"]


@pytest.mark.parametrize("bad", [dict(z1_range=(1, 1)), dict(z2_range=(0, np.inf)), dict(labels=np.zeros(3))])
def test_points_payload_rejects_bad_input(bad):
    args = dict(z=np.zeros((5, 2)), labels=np.zeros(5), z1_range=(-1, 1), z2_range=(-1, 1)) | bad
    with pytest.raises(ValueError):
        points_payload(**args)
