"""ui/features.py: the draw / morph / uncertainty panels, through AppTest on a harness app and
in app.py. The pure functions behind them are tested in test_sketch.py, test_latent.py,
test_images.py, test_posterior.py and test_overlays.py."""

from __future__ import annotations


import base64
import json
import re

import numpy as np
import pytest

from cvae.draw.sketch import preprocess_drawing
from cvae.core.latent import encode_dataset
from cvae.draw.overlays import STAR_NAME
from devkit import DATA_DIR, REPO, SEVEN, data_url, stroke_canvas
from ui.features import K_TAB, TAB_DOWNLOADS, TAB_DRAW, TAB_LOSS, TAB_MORPH, TAB_UNC

HARNESS = str(REPO / "tests" / "apps" / "features_harness.py")


# ---- the panels (AppTest on the harness app) ---------------------------------


@pytest.fixture
def harness():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(HARNESS, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def status(at) -> dict:
    line = next(t.value for t in at.text if t.value.startswith("feat:"))
    z = line.split("z=(")[1].split(")")[0]
    names = json.loads(line.split("traces=")[1].replace("'", '"'))
    return {"z": tuple(float(v) for v in z.split(",")), "traces": names}


def figure(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def overlay_layers(at, component: str = "cvae_overlays") -> list[dict]:
    """The feature layers app.py sends to the explorer's scatter (the overlay component's data)."""
    stack = [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if getattr(node, "type", None) == "bidi_component" and proto.component_name == component:
            return json.loads(proto.json)["layers"]
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    raise AssertionError(f"no {component} component on the page")


def open_tab(at, label: str):
    """The user opens a panel's tab (lazy tabs: only the open one, and Draw, is drawn)."""
    at.session_state[K_TAB] = label
    at.run()
    assert not at.exception, at.exception
    return at


def captions_of(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def _values(v):
    """A Plotly JSON array: a list, or (numpy data) {"bdata": base64, "dtype": ...}."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def trace(at, name) -> dict:
    t = next(t for t in figure(at)["data"] if t.get("name") == name)
    return {k: (_values(v) if k in ("x", "y") else v) for k, v in t.items()}


def sigmas(at) -> list[tuple[float, ...]]:
    """Every "σ = (a, b)" the panels print, in page order."""
    out = []
    for m in at.markdown:
        hit = re.search(r"σ = \(([^)]*)\)", m.value)
        if hit:
            out.append(tuple(float(v) for v in hit.group(1).split(",")))
    return out


def test_panels_start_clean(harness):
    st_ = status(harness)
    assert STAR_NAME not in st_["traces"]
    # No layer the person did not ask for: the morph path and the posterior appear once their
    # panel has been opened, even with a digit selected.
    assert not any(n in st_["traces"] for n in ("morph path", "posterior samples"))
    harness.session_state["selected_index"] = 42
    assert "posterior samples" not in status(harness.run())["traces"]
    assert any("Nothing drawn yet" in i.value for i in harness.info)
    # Only the drawing pad is drawn until another tab is opened.
    assert not harness.get("download_button") and not harness.slider
    labels = [b.label for b in open_tab(harness, TAB_MORPH).get("download_button")]
    assert labels == ["Download strip (PNG)", "Download animation (GIF)"]
    labels = [b.label for b in open_tab(harness, TAB_DOWNLOADS).get("download_button")]
    assert labels == ["Manifold grid (PNG)", "Encodings (CSV)"]
    # The current digit's PNG is in the decoder column, which follows every commit.


def test_hidden_panels_keep_their_settings_and_layers(harness, enc):
    at = open_tab(harness, TAB_MORPH)
    at.number_input(key="feat_morph_a_index").set_value(3)
    at.slider(key="feat_morph_steps").set_value(5).run()
    at = open_tab(at, TAB_UNC)
    assert not at.get("download_button")  # the morph panel is not drawn
    at.slider(key="feat_unc_n").set_value(3).run()
    at.session_state["selected_index"] = 42
    at = open_tab(at, TAB_DRAW)
    path = trace(at, "morph path")  # still test #3 -> #1 in 5 steps
    assert len(path["x"]) == 5
    np.testing.assert_allclose([path["x"][0], path["y"][0]], enc["z_mean"][3], atol=1e-5)
    assert len(trace(at, "posterior samples")["x"]) == 3
    at = open_tab(at, TAB_MORPH)
    assert at.slider(key="feat_morph_steps").value == 5 and at.number_input(key="feat_morph_a_index").value == 3


def test_drawing_appears_as_a_star_and_explore_moves_there(harness, model):
    at = harness
    canvas = stroke_canvas(SEVEN)
    at.session_state["feat_canvas"] = {"image": data_url(canvas)}
    at.run()
    assert not at.exception, at.exception
    want = encode_dataset(model, preprocess_drawing(canvas)[None])[0][0]
    star = trace(at, STAR_NAME)
    np.testing.assert_allclose([star["x"][0], star["y"][0]], want, atol=1e-5)
    captions = captions_of(at)
    assert "as the model sees it (28x28)" in captions and "reconstruction" in captions
    assert sum(c.startswith("#") and "d=" in c for c in captions) == 6  # nearest test digits
    # The drawing's sigma as printed: exp(z_log_var / 2), to the 3 decimals shown.
    lv = encode_dataset(model, preprocess_drawing(canvas)[None])[1][0]
    np.testing.assert_allclose(sigmas(at)[0], np.exp(0.5 * lv), atol=6e-4)
    at.button(key="feat_explore_drawn").click().run()
    np.testing.assert_allclose(status(at)["z"], want, atol=1e-4)
    # Cleared on the pad: the star goes away.
    at.session_state["feat_canvas"] = {"image": None}
    at.run()
    assert STAR_NAME not in status(at)["traces"]


@pytest.mark.parametrize("url,msg", [(None, "empty"), ("data:image/png;base64,!!", "base64")])
def test_empty_or_broken_drawing_gets_a_clear_message(harness, url, msg):
    at = harness
    at.session_state["feat_canvas"] = {"image": url or data_url(np.zeros((280, 280), np.uint8))}
    at.run()
    assert not at.exception
    assert any(msg in w.value for w in at.warning), [w.value for w in at.warning]
    assert STAR_NAME not in status(at)["traces"]


def test_morph_path_strip_animation(harness, enc):
    at = open_tab(harness, TAB_MORPH)
    at.number_input(key="feat_morph_a_index").set_value(3)
    at.number_input(key="feat_morph_b_index").set_value(10)
    at.slider(key="feat_morph_steps").set_value(6).run()
    assert not at.exception
    path = trace(at, "morph path")
    assert len(path["x"]) == 6
    np.testing.assert_allclose([path["x"][0], path["y"][0]], enc["z_mean"][3], atol=1e-5)
    np.testing.assert_allclose([path["x"][-1], path["y"][-1]], enc["z_mean"][10], atol=1e-5)
    captions = captions_of(at)
    assert any("test #3" in c and "test #10" in c and "6 steps" in c for c in captions), captions
    assert not any(c.startswith("morph ") for c in captions)
    at.toggle(key="feat_morph_play").set_value(True).run()
    captions = captions_of(at)
    assert any(c.startswith("morph test #3") for c in captions)
    # Endpoint B = the current point; then the path is hidden on request.
    at.selectbox(key="feat_morph_b_kind").set_value("Current point").run()
    path = trace(at, "morph path")
    np.testing.assert_allclose([path["x"][-1], path["y"][-1]], status(at)["z"], atol=1e-5)
    at.checkbox(key="feat_morph_show_path").uncheck().run()
    assert "morph path" not in status(at)["traces"]


def test_morph_from_a_missing_drawing_says_so(harness):
    at = open_tab(harness, TAB_MORPH)
    at.selectbox(key="feat_morph_a_kind").set_value("Your drawing").run()
    assert any("Cannot morph" in w.value and "draw a digit" in w.value for w in at.warning)
    assert "morph path" not in status(at)["traces"]


def test_uncertainty_for_a_clicked_digit(harness, enc):
    at = open_tab(harness, TAB_UNC)
    at.session_state["selected_index"] = 42
    at.run()
    assert not at.exception
    one = trace(at, "test #42 (%d) 1σ (39%%)" % enc["label"][42])
    sd = np.exp(0.5 * enc["z_log_var"][42])
    assert max(one["x"]) - min(one["x"]) == pytest.approx(2 * sd[0], rel=1e-3)
    assert max(one["y"]) - min(one["y"]) == pytest.approx(2 * sd[1], rel=1e-3)
    # The sigma printed above the samples is the same exp(z_log_var / 2), to 3 decimals.
    np.testing.assert_allclose(sigmas(at)[-1], sd, atol=6e-4)
    samples = trace(at, "posterior samples")
    assert len(samples["x"]) == 8
    captions = captions_of(at)
    assert any("8 decoded samples" in c and "seed 0" in c for c in captions)
    before = samples["x"]
    at.number_input(key="feat_unc_seed").set_value(7).run()
    assert trace(at, "posterior samples")["x"] != before
    at.checkbox(key="feat_unc_show").uncheck().run()
    assert not any("1σ" in n for n in status(at)["traces"])


def test_uncertainty_for_the_drawing(harness, model):
    at = open_tab(harness, TAB_UNC)
    at.radio(key="feat_unc_source").set_value("Your drawing").run()
    assert any("draw a digit first" in i.value for i in at.info)
    canvas = stroke_canvas([(140, 40), (140, 240)], width=24)
    at.session_state["feat_canvas"] = {"image": data_url(canvas)}
    at.run()
    zm, lv = encode_dataset(model, preprocess_drawing(canvas)[None])
    mean = trace(at, "your drawing mean")
    np.testing.assert_allclose([mean["x"][0], mean["y"][0]], zm[0], atol=1e-5)


@pytest.mark.needs_data
@pytest.mark.slow  # the test set's losses (10,000 digits) behind the page
def test_loss_of_a_clicked_digit_and_of_the_drawing(model, mnist_dir, monkeypatch):
    """The panel's numbers are explain.digit_loss's for the digit's own image; its standing is
    measured against the test set's -ELBOs, and the histogram holds every one of them."""
    from streamlit.testing.v1 import AppTest

    from cvae.core import explain
    from cvae.core.data import load_mnist

    monkeypatch.setenv("CVAE_FEAT_DATA", str(mnist_dir))
    monkeypatch.setenv("CVAE_FEAT_TEST_N", "300")
    at = AppTest.from_file(HARNESS, default_timeout=300)
    at.run()
    at = open_tab(at, TAB_LOSS)
    assert any("click a test digit" in i.value for i in at.info)
    at.session_state["selected_index"] = 3
    at.run()
    assert not at.exception, at.exception
    images = load_mnist("test", mnist_dir)[0]
    want = explain.digit_loss(model, images[3, 0])
    text = " ".join(m.value for m in at.markdown)
    for v in (want.recon, want.kl, want.neg_elbo, want.neg_log_px):
        assert f"{v:.1f}" in text
    assert f"{want.slack:.2f}" in text
    elbos = explain.test_set_elbos(model, images[:300])
    harder = explain.harder_than(want.neg_elbo, elbos)
    assert f"Harder than **{harder:.0f}%** of test digits" in text
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    bar = next(c for c in charts if any(t.get("orientation") == "h" for t in c["data"]))
    assert [round(_values(t["x"])[0], 3) for t in bar["data"]] == [
        round(want.recon, 3), round(want.kl, 3), round(want.neg_log_px, 3)]
    hist = next(c for c in charts if c["layout"].get("xaxis", {}).get("title", {}).get("text", "").startswith("−ELBO"))
    assert sum(_values(hist["data"][0]["y"])) == 300
    assert any("Bernoulli" in c.value for c in at.caption)
    # the drawing: its own preprocessed image
    at.radio(key="feat_loss_source").set_value("Your drawing").run()
    assert any("draw a digit first" in i.value for i in at.info)
    canvas = stroke_canvas(SEVEN)
    at.session_state["feat_canvas"] = {"image": data_url(canvas)}
    at.run()
    drawn = explain.digit_loss(model, preprocess_drawing(canvas))
    assert f"−ELBO {drawn.neg_elbo:.1f}" in " ".join(m.value for m in at.markdown)


# ---- in the real app ---------------------------------------------------------


def test_features_in_the_app(model, enc, monkeypatch, tmp_path):
    """app.py shows the panels and sends their layers to the explorer's scatter; the drawn
    digit's "Explore from here" moves the app's latent point; a click's posterior is shown."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CVAE_DATA", str(DATA_DIR))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    canvas = stroke_canvas(SEVEN)
    at.session_state["feat_canvas"] = {"image": data_url(canvas)}
    at.session_state["selected_index"] = 7
    at.run()
    assert not at.exception and not at.error
    names = [layer.get("name") for layer in overlay_layers(at)]
    assert names == [STAR_NAME]  # the drawing, asked for; the morph and the posterior not yet
    at.session_state["feat_morph_asked"] = at.session_state["feat_unc_asked"] = True  # their panels were opened
    at.run()
    names = [layer.get("name") for layer in overlay_layers(at)]
    assert STAR_NAME in names and "morph path" in names
    assert "test #7 (%d) 1σ (39%%)" % enc["label"][7] in names
    want = encode_dataset(model, preprocess_drawing(canvas)[None])[0][0]
    at.button(key="feat_explore_drawn").click().run()
    assert not at.exception
    assert (at.session_state["z1"], at.session_state["z2"]) == pytest.approx(tuple(want), abs=0.01)


def test_morph_to_the_clicked_digit(harness, enc):
    at = open_tab(harness, TAB_MORPH)
    at.selectbox(key="feat_morph_b_kind").set_value("Clicked test digit").run()
    assert any("click a digit on the scatter" in w.value for w in at.warning)
    at.session_state["selected_index"] = 25
    at.run()
    path = trace(at, "morph path")
    np.testing.assert_allclose([path["x"][-1], path["y"][-1]], enc["z_mean"][25], atol=1e-5)
