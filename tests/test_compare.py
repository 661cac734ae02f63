"""Two models under one cursor, through AppTest (no browser): off by default (the page sends what
it sent before); a second model picked from the list sends its decoder's weights and its
encodings to the browser as the first model's go (by hash; the browser asks for what it lacks),
with the selector of its scatter, which plots its own encodings; the URL names it and a link
opens with it; a picked model that leaves the list turns the comparison off without an error."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from cvae import encode_dataset, load_checkpoint, save_checkpoint
from cvae.core import shipped
from cvae.core.data import load_mnist
from cvae.core.latent import latent_bounds
from cvae.core.payloads import decoder_payload, points_payload
from devkit import data_dir, needs_data, random_model
from streamlit.testing.v1 import AppTest
from test_app import APP, TIMEOUT, explorer_data, no_errors, plotly_array, plotly_spec, run_app, walk
from ui.compare import COMPARE_KEY, COMPARE_PARAM, SCATTER2_KEY

pytestmark = [needs_data, pytest.mark.skipif(not shipped.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model")]


@pytest.fixture
def runs(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(data_dir()))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    save_checkpoint(random_model(seed=5), tmp_path / "runs" / "other.pt")
    return tmp_path / "runs"


def points_z(p: dict) -> np.ndarray:
    """The encodings a points payload holds (cvae/web/payload.js reads it the same way)."""
    raw = base64.b64decode(p["b64"])
    xy = np.frombuffer(raw[: 4 * p["n"]], "<u2").reshape(-1, 2) / 65535
    (a, b), (c, d) = p["z1_range"], p["z2_range"]
    return np.stack([a + xy[:, 0] * (b - a), d - xy[:, 1] * (d - c)], axis=1)


def test_off_by_default_and_a_picked_model_goes_to_the_browser_beside_the_first(runs):
    at = run_app()
    no_errors(at)
    box = at.selectbox(key=COMPARE_KEY)
    assert box.value is None and box.options == ["off", "Trained here: other.pt"]
    data = explorer_data(at)
    assert data["compare"] is None and set(data["assets"]) == {"code", "style", "weights", "points"}
    assert COMPARE_PARAM not in at.query_params
    assert not any(getattr(n, "type", None) == "plotly_chart" and n.proto.id.endswith(SCATTER2_KEY)
                   for n in walk(at._tree))

    other_path = str(runs / "other.pt")
    box.set_value(other_path)
    at.run()
    no_errors(at)
    data = explorer_data(at)
    assert data["compare"] == {"name": "Trained here: other.pt", "scatter_selector": f".st-key-{SCATTER2_KEY} .js-plotly-plot"}
    assert data["model_name"] == "Shipped model"
    assert at.query_params[COMPARE_PARAM] == "other"  # a link shows the same two models
    other = load_checkpoint(other_path)
    assert data["assets"]["weights2"]["hash"] == decoder_payload(other)["hash"]
    assert data["assets"]["weights2"]["hash"] != data["assets"]["weights"]["hash"]
    # Its encodings, computed here: in the points payload and on the second scatter.
    images, labels = load_mnist("test", data_dir(), download=False)
    z, _ = encode_dataset(other, images)
    # (The browser asks for the payloads it lacks by their hashes: this run sends the hashes.)
    b = latent_bounds(z)
    mine = points_payload(np.asarray(z, np.float32), labels.numpy(), b[:2], b[2:])
    assert data["assets"]["points2"]["hash"] == mine["hash"]
    span = max(np.ptp(z[:, 0]), np.ptp(z[:, 1]))
    assert np.abs(points_z(mine) - z).max() < 2 * span / 65535 + 1e-5
    spec = plotly_spec(at, SCATTER2_KEY)
    for t in spec["data"]:
        if t.get("name", "").isdigit():
            m = labels.numpy() == int(t["name"])
            assert np.allclose(plotly_array(t["x"]), z[m, 0], atol=1e-6)
            assert np.allclose(plotly_array(t["y"]), z[m, 1], atol=1e-6)
    # A commit's run (the browser holds them now) sends only the hashes.
    at.run()
    assert all(set(ref) == {"hash"} for ref in explorer_data(at)["assets"].values())

    # A link: a new session opens with the model it names (a name not here: off).
    for name, want in (("other", other_path), ("gone", None)):
        link = AppTest.from_file(APP, default_timeout=TIMEOUT)
        link.query_params[COMPARE_PARAM] = name
        link.run()
        no_errors(link)
        assert link.selectbox(key=COMPARE_KEY).value == want, name
        assert (explorer_data(link)["compare"] is None) == (want is None)

    # The second model's file goes away: the comparison is off, nothing fails, the URL says so.
    (runs / "other.pt").unlink()
    at.run()
    no_errors(at)
    assert at.selectbox(key=COMPARE_KEY).value is None and explorer_data(at)["compare"] is None
    assert COMPARE_PARAM not in at.query_params

