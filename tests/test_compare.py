"""Two models under one cursor, through AppTest (no browser): off by default (the page sends what
it sent before); a second model picked from the list sends its decoder's weights and its
encodings to the browser as the first model's go (by hash; the browser asks for what it lacks),
with the selector of its scatter, which plots its own encodings; the URL names it and a link
opens with it; a picked model that leaves the list turns the comparison off without an error."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from cvae import encode_dataset, load_checkpoint, save_checkpoint
from cvae.core import shipped
from cvae.core.data import load_mnist
from cvae.core.latent import latent_bounds
from cvae.core.payloads import decoder_payload, points_payload
from cvae.training.recorder import FilmRecorder
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
    assert box.value is None and box.options[:2] == ["off", "Trained here: other.pt"]
    film = shipped.shipped_film_for(str(shipped.SHIPPED_CHECKPOINT))  # and its film's frames, a separate run
    assert box.options[2:] == [f"Its training film (a separate run), frame {i + 1} of {len(film)}: epoch "
                               f"{film.epoch[i]:.2f}, step {int(film.step[i]):,}" for i in range(len(film))]
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



@pytest.mark.slow  # encodes the test set three times (the model, its frame, the check)
def test_a_frame_of_the_models_training_film_goes_beside_it(runs):
    """The frames of the explored model's film that kept their weights are in the picker; one
    picked goes to the browser as a model: its decoder's weights (the film's, in float16) and the
    test digits where that frame's model encodes them. The URL names it; a link opens it; a frame
    whose weights the film did not keep is not offered."""
    images, labels = load_mnist("test", data_dir(), download=False)
    early, late = random_model(seed=1), random_model(seed=2)
    rec = FilmRecorder(images, labels, steps_per_epoch=10, epochs=2)
    rec.record(early, 0, 0.0)
    rec.record(late, 5, 0.5, keep_weights=False)
    rec.record(late, 10, 1.0)
    save_checkpoint(late, runs / "filmed.pt", film=rec.film())

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["model"] = "filmed"
    at.run()
    no_errors(at)
    box = at.selectbox(key=COMPARE_KEY)
    assert box.options == ["off", "Shipped model", "Trained here: other.pt",
                           "Its training film, frame 1 of 3: epoch 0.00, step 0",
                           "Its training film, frame 3 of 3: epoch 1.00, step 10"]
    box.set_value("film:0")
    at.run()
    no_errors(at)
    data = explorer_data(at)
    assert data["compare"]["name"] == "Its training film, frame 1 of 3: epoch 0.00, step 0"
    assert data["model_name"] == "Trained here: filmed.pt"
    assert at.query_params[COMPARE_PARAM] == "film:0"
    frame = load_checkpoint(runs / "filmed.pt").meta["film"].frame_model(0, late)
    for a, b in zip(early.state_dict().values(), frame.state_dict().values()):
        assert torch.equal(b, a.half().float())  # the early model, in float16
    assert data["assets"]["weights2"]["hash"] == decoder_payload(frame)["hash"]
    assert data["assets"]["weights2"]["hash"] not in (decoder_payload(late)["hash"], decoder_payload(early)["hash"])
    z, _ = encode_dataset(frame, images)
    b = latent_bounds(z)
    assert data["assets"]["points2"]["hash"] == points_payload(np.asarray(z, np.float32), labels.numpy(),
                                                                b[:2], b[2:])["hash"]
    for name, want in (("film:0", "film:0"), ("film:2", "film:2"), ("film:1", None), ("film:9", None)):
        link = AppTest.from_file(APP, default_timeout=TIMEOUT)
        link.query_params["model"] = "filmed"
        link.query_params[COMPARE_PARAM] = name
        link.run()
        no_errors(link)
        assert link.selectbox(key=COMPARE_KEY).value == want, name
