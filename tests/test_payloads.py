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


def test_the_decoder_payloads_header_is_the_documented_one():
    """What decoder.js and the static site read: the keys and values the docstring names."""
    model = random_model(latent_dim=3)
    p = decoder_payload(model)
    assert set(p) == {"format", "latent_dim", "image_size", "layers", "tensors", "dtype", "n_floats", "b64", "hash"}
    assert (p["format"], p["latent_dim"], p["image_size"], p["dtype"]) == ("cvae-decoder/2", 3, 28, "float32-le")
    assert len(p["hash"]) == 16 and int(p["hash"], 16) >= 0  # 16 hex digits


def test_a_payload_read_back_with_its_keys_in_another_order_is_the_same_payload():
    """JSON written with sorted keys (or by another program) and read back keeps its hash."""
    p = decoder_payload(random_model())
    again = json.loads(json.dumps(p, sort_keys=True))
    assert list(again) != list(p)
    assert again["hash"] == p["hash"]
    for name, value in payload_tensors(again).items():
        np.testing.assert_array_equal(value, payload_tensors(p)[name])


def test_a_model_in_bfloat16_exports_its_weights_as_float32():
    model = random_model()
    want = payload_tensors(decoder_payload(model.to(torch.bfloat16).float()))
    got = payload_tensors(decoder_payload(model.to(torch.bfloat16)))
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_a_decoder_without_one_of_its_tensors_is_refused_by_name():
    model = random_model()
    model.decoder.deconv3.bias = None  # a layer built without its bias
    with pytest.raises(ValueError) as e:
        decoder_payload(model)
    assert str(e.value) == "decoder has no tensors ['deconv3.bias']; cannot export it for the browser"


def test_the_refusals_of_a_payload_say_why():
    p = decoder_payload(random_model())
    with pytest.raises(ValueError) as e:
        payload_tensors({**p, "format": "cvae-decoder/1"})
    assert str(e.value) == "not a cvae-decoder/2 payload (format='cvae-decoder/1')"
    with pytest.raises(ValueError) as e:
        payload_tensors({**p, "hash": "0" * 16})
    assert str(e.value) == "payload hash does not match its contents"
    # Characters outside base64 are refused, not skipped.
    with pytest.raises(ValueError):
        payload_tensors({**p, "b64": p["b64"][:40] + "!" + p["b64"][40:]})


def test_the_points_payloads_header_and_its_hash():
    p = points_payload(np.zeros((1, 2)), [7], (-1, 1), (-1, 1))
    assert set(p) == {"format", "n", "z1_range", "z2_range", "b64", "hash"}
    assert (p["format"], p["n"], p["z1_range"], p["z2_range"]) == ("cvae-points/1", 1, [-1.0, 1.0], [-1.0, 1.0])
    # The same bytes over other ranges mean other places: another hash (the browser keys its cache on it).
    q = points_payload(np.zeros((1, 2)), [7], (-2, 2), (-2, 2))
    assert q["b64"] == p["b64"] and q["hash"] != p["hash"]


def test_points_on_the_edges_of_the_ranges_are_kept_and_each_goes_to_its_nearest_step():
    corners = np.array([[-4, -3], [4, -3], [-4, 2], [4, 2], [4.001, 0], [0, -3.001]])
    p = points_payload(corners, [0, 1, 2, 3, 4, 5], (-4, 4), (-3, 2))
    raw = base64.b64decode(p["b64"])
    assert p["n"] == 4 and np.frombuffer(raw, "<u2", 8).tolist() == [0, 65535, 65535, 65535, 0, 0, 65535, 0]
    # float32 encodings, as the app holds them: each to its nearest step, as their exact values are.
    z = np.random.default_rng(1).uniform((-3.6, -2.8), (4.1, 3.2), size=(4000, 2)).astype(np.float32)
    p = points_payload(z, None, (-3.7, 4.2), (-2.9, 3.3))
    q = np.frombuffer(base64.b64decode(p["b64"]), "<u2", 2 * p["n"]).reshape(-1, 2).astype(np.float64)
    step1, step2 = 7.9 / 65535, 6.2 / 65535
    assert np.abs(-3.7 + q[:, 0] * step1 - z[:, 0]).max() <= step1 / 2 * (1 + 1e-9)
    assert np.abs(3.3 - q[:, 1] * step2 - z[:, 1]).max() <= step2 / 2 * (1 + 1e-9)


def test_labels_outside_0_to_254_mean_no_label():
    p = points_payload(np.zeros((5, 2)), np.array([0, 9, -2, 255, 300]), (-1, 1), (-1, 1))
    assert list(base64.b64decode(p["b64"])[20:]) == [0, 9, 255, 255, 255]


def test_the_points_refusals_say_what_was_given():
    for z, labels, r1, r2, msg in [
            (np.zeros((3, 3)), None, (-1, 1), (-1, 1), "z must have shape (N, 2); got (3, 3)"),
            (np.zeros(4), None, (-1, 1), (-1, 1), "z must have shape (N, 2); got (4,)"),
            (np.zeros((3, 2)), [1, 2], (-1, 1), (-1, 1), "labels must have shape (3,); got (2,)"),
            (np.zeros((3, 2)), None, (-1, 1), (2, 2), "ranges must be finite with low < high; got (-1, 1), (2, 2)"),
            (np.zeros((3, 2)), None, (1, -1), (0, 1), "ranges must be finite with low < high; got (1, -1), (0, 1)")]:
        with pytest.raises(ValueError) as e:
            points_payload(z, labels, r1, r2)
        assert str(e.value) == msg
