"""The explorer through streamlit.testing.v1.AppTest (logic level, no browser).

Each test runs app.py for real: the shipped model in assets/, MNIST from $CVAE_DATA
(or ../shared/mnist beside the repo), models trained here into a temporary runs folder.
"""

from __future__ import annotations

import json

import pytest

from cvae import assets

from helpers import REPO
from conftest import data_dir

from streamlit.testing.v1 import AppTest

APP = str(REPO / "app.py")
TIMEOUT = 300  # torch is slow to import on a busy 2-core machine

pytestmark = pytest.mark.skipif(not assets.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(data_dir()))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    return tmp_path


def run_app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def walk(node):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for c in children.values():
            yield from walk(c)


def images(at) -> list:
    """Every st.image's proto (url, caption), in page order."""
    out = []
    for n in walk(at._tree):
        if getattr(n, "type", None) == "image":
            out.extend(n.proto.imgs)
    return out


def plotly_spec(at, key: str) -> dict:
    for n in walk(at._tree):
        if getattr(n, "type", None) == "plotly_chart" and n.proto.id.endswith(key):
            return json.loads(n.proto.spec)
    raise AssertionError(f"no plotly chart with key {key!r}")


def marker_xy(at) -> tuple[float, float]:
    ring = [t for t in plotly_spec(at, "scatter")["data"] if t.get("name") == "current point"]
    assert len(ring) == 1, "the scatter must show exactly one current-point marker"
    return float(ring[0]["x"][0]), float(ring[0]["y"][0])


def digit_image(at):
    imgs = [i for i in images(at) if i.caption.startswith("decoded at z")]
    assert len(imgs) == 1, [i.caption for i in images(at)]
    return imgs[0]


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_runs_on_the_shipped_model(env):
    at = run_app()
    no_errors(at)
    assert at.sidebar.selectbox(key="model_path").value == str(assets.SHIPPED_CHECKPOINT)
    z1, z2 = at.slider(key="z1"), at.slider(key="z2")
    enc = assets.read_encodings()
    # The slider range covers every encoding, with a margin.
    assert z1.min < enc["z_mean"][:, 0].min() and z1.max > enc["z_mean"][:, 0].max()
    assert z2.min < enc["z_mean"][:, 1].min() and z2.max > enc["z_mean"][:, 1].max()
    spec = plotly_spec(at, "scatter")
    digit_traces = [t for t in spec["data"] if t.get("type") == "scattergl"]
    assert sorted(t["name"] for t in digit_traces) == [str(d) for d in range(10)]
    assert spec["layout"]["yaxis"]["scaleanchor"] == "x"
    assert marker_xy(at) == pytest.approx((z1.value, z2.value))
    assert "z = (0.000, 0.000)" in digit_image(at).caption
    # The manifold, the summary and the how-it-works code (read from cvae) are there.
    assert plotly_spec(at, "manifold")["data"][0]["type"] == "image"
    tables = [c.value for c in at.sidebar.code]
    assert len(tables) == 2
    assert 'Model: "encoder"' in tables[0] and "Total params: 69,076" in tables[0]
    assert 'Model: "decoder"' in tables[1] and "Total params: 65,089" in tables[1]
    assert "deconv3 (ConvTranspose2d)  (None, 1, 28, 28)" in tables[1], tables[1]
    assert any("def reparameterize" in c.value for c in at.code)
    assert any("def kl_divergence" in c.value for c in at.code)
    assert len(at.latex) == 3


def test_slider_changes_digit_and_marker(env):
    at = run_app()
    no_errors(at)
    before_url, before_xy = digit_image(at).url, marker_xy(at)
    at.slider(key="z1").set_value(1.5)
    at.slider(key="z2").set_value(-0.75)
    at.run()
    no_errors(at)
    after = digit_image(at)
    assert after.url != before_url, "the decoded digit did not change"
    assert "z = (1.500, -0.750)" in after.caption
    assert marker_xy(at) == pytest.approx((1.5, -0.75))
    assert marker_xy(at) != before_xy
    # The manifold marks the current point (it lies inside the default ranges).
    man = plotly_spec(at, "manifold")["data"]
    assert any(t.get("name") == "current point" for t in man)


def _set_latent_script():
    import streamlit as st

    import app

    st.session_state["_latent_bounds"] = (-1.0, 1.0, -2.0, 3.0)
    st.session_state["result"] = app.set_latent(5.0, -9.0)
    st.slider("z1", -1.0, 1.0, key="z1")
    st.slider("z2", -2.0, 3.0, key="z2")


def test_set_latent_clamps_to_the_slider_range():
    at = AppTest.from_function(_set_latent_script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["result"] == (1.0, -2.0)
    assert (at.slider(key="z1").value, at.slider(key="z2").value) == (1.0, -2.0)


def test_selection_moves_the_point_and_shows_original_and_reconstruction(env):
    enc = assets.read_encodings()
    idx = 1234
    at = run_app()
    at.session_state["selected_index"] = idx  # what a click on the scatter sets
    at.run()
    no_errors(at)
    z = enc["z_mean"][idx]
    assert (at.slider(key="z1").value, at.slider(key="z2").value) == pytest.approx((z[0], z[1]), abs=1e-5)
    assert marker_xy(at) == pytest.approx((z[0], z[1]), abs=1e-5)
    caps = [i.caption for i in images(at)]
    assert any(c.startswith(f"original #{idx} (label {enc['label'][idx]})") for c in caps), caps
    assert any(c.startswith("reconstruction at z_mean") for c in caps), caps
    assert any(f"test digit #{idx}, a {enc['label'][idx]}" in h.value for h in at.subheader)
    # A slider move after a click keeps the new point (the selection is applied once).
    at.slider(key="z1").set_value(0.5).run()
    assert at.slider(key="z1").value == pytest.approx(0.5)


def test_offline_uses_shipped_encodings(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "no-mnist-here"))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    at = run_app()
    no_errors(at)
    spec = plotly_spec(at, "scatter")
    n = sum(len(t["customdata"]["bdata"]) > 0 for t in spec["data"] if t.get("type") == "scattergl")
    assert n == 10
    at.session_state["selected_index"] = 7
    at.run()
    no_errors(at)
    caps = [i.caption for i in images(at)]
    assert any(c.startswith("reconstruction at z_mean") for c in caps)
    assert not any(c.startswith("original #") for c in caps)
    assert any("MNIST test set" in i.value and "CVAE_DATA" in i.value for i in at.info)
    # Training says what it needs instead of failing somewhere deep.
    at.sidebar.number_input(key="train_limit").set_value(256)
    at.sidebar.button[0].click().run()
    assert any("Training needs MNIST" in e.value for e in at.error)
    assert not at.exception


def test_a_bad_checkpoint_is_one_message(env):
    runs = env / "runs"
    runs.mkdir()
    (runs / "broken.pt").write_bytes(b"not a checkpoint at all")
    at = run_app(model_path=str(runs / "broken.pt"))
    assert not at.exception
    assert any("broken.pt" in e.value for e in at.error), [e.value for e in at.error]
