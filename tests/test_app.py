"""The explorer through streamlit.testing.v1.AppTest (logic level, no browser).

Each test runs app.py for real: the shipped model in assets/, MNIST from $CVAE_DATA
(or ../shared/mnist beside the repo), models trained here into a temporary runs folder.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from cvae.core import shipped

from cvae.draw.palette import DIGIT_COLORS

from devkit import REPO
from ui.explore import FILM_KEY, MANIFOLD_TAB, SCATTER_TAB, VIEW_KEY
from ui.how import HOW_KEY
from ui.models import CURVES_KEY, SUMMARY_KEY
from ui.training import TRAIN_FORM_KEY
from devkit import data_dir

from streamlit.testing.v1 import AppTest

APP = str(REPO / "app.py")
TIMEOUT = 300  # torch is slow to import on a busy 2-core machine

pytestmark = pytest.mark.skipif(not shipped.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")


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


def plotly_array(a) -> np.ndarray:
    """A trace's array as Plotly's JSON holds it: a list, or a typed array ({"dtype", "bdata"})."""
    if isinstance(a, dict):
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]))
    return np.asarray(a)


def explorer_data(at) -> dict:
    """What Python sends the browser's explorer in this run (the component's JSON data)."""
    found = [json.loads(n.proto.json) for n in walk(at._tree)
             if getattr(getattr(n, "proto", None), "component_name", "") == "cvae_explorer"]
    assert len(found) == 1, f"{len(found)} explorer components on the page"
    return found[0]


def committed(at) -> tuple[float, float]:
    return tuple(explorer_data(at)["z"])


def digit_image(at):
    """The server-rendered fallback digit (the browser hides it while it decodes itself)."""
    imgs = [i for i in images(at) if i.caption.startswith("decoded at z")]
    assert len(imgs) == 1, [i.caption for i in images(at)]
    return imgs[0]


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_runs_on_the_shipped_model(env):
    at = run_app()
    no_errors(at)
    assert at.sidebar.selectbox(key="model_path").value == str(shipped.SHIPPED_CHECKPOINT)
    data = explorer_data(at)
    enc = shipped.shipped_encodings()
    # The sliders' range covers every encoding, with a margin.
    lo1, hi1, lo2, hi2 = data["bounds"]
    assert lo1 < enc["z_mean"][:, 0].min() and hi1 > enc["z_mean"][:, 0].max()
    assert lo2 < enc["z_mean"][:, 1].min() and hi2 > enc["z_mean"][:, 1].max()
    assert data["z"] == [0.0, 0.0] and data["selected"] is None
    assert data["palette"] == list(DIGIT_COLORS)
    # Assets go by hash. A browser that holds none (no cookie) gets them with its first page,
    # and later runs send only the hashes.
    assert set(data["assets"]) == {"code", "style", "weights", "points"}
    assert all(set(ref) == {"hash", "payload"} for ref in data["assets"].values())
    at.run()
    assert all(set(ref) == {"hash"} for ref in explorer_data(at)["assets"].values())
    spec = plotly_spec(at, "scatter")
    digit_traces = [t for t in spec["data"] if t.get("type") == "scattergl"]
    assert sorted(t["name"] for t in digit_traces) == [str(d) for d in range(10)]
    assert len(spec["data"]) == 10, "the scatter holds the digits only; the browser draws the point"
    # Each digit's points are that digit's z_mean: x is z1, y is z2, in test-set order.
    for t in digit_traces:
        want = enc["z_mean"][enc["label"] == int(t["name"])]
        np.testing.assert_array_equal(plotly_array(t["x"]), want[:, 0])
        np.testing.assert_array_equal(plotly_array(t["y"]), want[:, 1])
    assert spec["layout"]["yaxis"]["scaleanchor"] == "x"
    assert spec["layout"]["dragmode"] is False  # a drag moves the point, not the view
    assert "z = (0.000, 0.000)" in digit_image(at).caption
    # The manifold, the model summary, the training curves and how it works are drawn only once
    # opened (each costs every browser that opens the page its drawing).
    assert not at.sidebar.code and not at.code and not at.latex and data["manifold"] is None
    assert not at.sidebar.number_input  # the training form, in its collapsed expander
    with pytest.raises(AssertionError, match="no plotly chart"):
        plotly_spec(at, "manifold")
    with pytest.raises(AssertionError, match="no plotly chart"):
        plotly_spec(at, "history_chart")
    assert not any("separate run of the default recipe" in c.value for c in at.caption)  # the film, closed
    for key, value in ((VIEW_KEY, MANIFOLD_TAB), (HOW_KEY, True), (SUMMARY_KEY, True), (CURVES_KEY, True),
                       (TRAIN_FORM_KEY, True), (FILM_KEY, True)):
        at.session_state[key] = value
    at.run()
    no_errors(at)
    data = explorer_data(at)
    # Opened, they are there: the manifold (and the ring's map), the layer tables, the curves,
    # and the how-it-works code (read from cvae).
    assert plotly_spec(at, "manifold")["data"][0]["type"] == "image"
    assert data["manifold"]["inside"] == [-2.0, 2.0, -1.0, 3.0]
    assert [t["name"] for t in plotly_spec(at, "history_chart")["data"]][:2] == ["loss", "val_loss"]
    assert any("separate run of the default recipe" in c.value for c in at.caption)  # the shipped film
    # The training form opens on the quick run (one minute: seed and images only).
    assert at.sidebar.radio(key="train_length").value == "Quick: a time budget"
    assert {n.key for n in at.sidebar.number_input} == {"train_seconds", "train_seed", "train_limit"}
    tables = [c.value for c in at.sidebar.code]
    assert len(tables) == 2
    assert 'Model: "encoder"' in tables[0] and "Total params: 69,076" in tables[0]
    assert 'Model: "decoder"' in tables[1] and "Total params: 65,089" in tables[1]
    assert "deconv3 (ConvTranspose2d)  (None, 1, 28, 28)" in tables[1], tables[1]
    assert any("def reparameterize" in c.value for c in at.code)
    assert any("def kl_divergence" in c.value for c in at.code)
    assert len(at.latex) == 3


def test_the_manifold_keeps_its_settings_while_its_tab_is_closed(env):
    at = run_app(**{VIEW_KEY: MANIFOLD_TAB})
    at.slider(key="grid_n").set_value(7)
    at.slider(key="grid_z1").set_value((-1.5, 1.0))
    at.run()
    assert explorer_data(at)["manifold"]["inside"] == [-1.5, 1.0, -1.0, 3.0]
    at.session_state[VIEW_KEY] = SCATTER_TAB
    at.run()
    no_errors(at)
    assert explorer_data(at)["manifold"] is None
    with pytest.raises(KeyError):
        at.slider(key="grid_n")  # not drawn
    at.session_state[VIEW_KEY] = MANIFOLD_TAB
    at.run()
    no_errors(at)
    assert at.slider(key="grid_n").value == 7 and at.slider(key="grid_z1").value == (-1.5, 1.0)
    assert len(plotly_spec(at, "manifold")["layout"]["xaxis"]["tickvals"]) == 7


def test_a_commit_moves_the_point_and_the_fallback_digit(env):
    at = run_app()
    no_errors(at)
    before_url = digit_image(at).url
    at.session_state["z1"], at.session_state["z2"] = 1.5, -0.75  # what a commit's callback sets
    at.run()
    no_errors(at)
    after = digit_image(at)
    assert after.url != before_url, "the decoded digit did not change"
    assert "z = (1.500, -0.750)" in after.caption
    assert committed(at) == pytest.approx((1.5, -0.75))
    at.session_state["z2"] = 0.25  # the other coordinate alone moves it too
    at.run()
    assert digit_image(at).url not in (after.url, before_url)
    # The current digit's download sits in the decoder column (which every commit reruns).
    assert "Current digit (PNG)" in [b.label for b in at.get("download_button")]


def test_a_link_opens_at_its_point_and_junk_in_it_is_ignored(env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["z1"], at.query_params["z2"] = "-1.25", "0.5"
    at.run()
    no_errors(at)
    assert committed(at) == pytest.approx((-1.25, 0.5))
    lo1, hi1, lo2, hi2 = explorer_data(at)["bounds"]
    for z1, z2, want in [("banana", "1e9", (0.0, hi2)), ("nan", "-inf", (0.0, 0.0)), ("-1e9", "", (lo1, 0.0))]:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.query_params["z1"], at.query_params["z2"] = z1, z2
        at.run()
        no_errors(at)
        assert committed(at) == pytest.approx(want), (z1, z2)


def test_the_commit_callback_clamps_selects_and_reruns_only_what_follows_the_point(monkeypatch):
    """ui.explorer.parse_commit and ui.explore.commit: what the browser sends, as Python takes it."""
    from ui import explore
    from ui.explorer import parse_commit

    b = (-1.0, 1.0, -2.0, 3.0)
    assert parse_commit({"z1": 5, "z2": -9}, b, 10) == (1.0, -2.0, None)
    assert parse_commit({"z1": 0.5, "z2": 0.25, "select": 3}, b, 10) == (0.5, 0.25, 3)
    assert parse_commit({"z1": 0.5, "z2": 0.25, "select": 10}, b, 10) == (0.5, 0.25, None)
    assert parse_commit({"z1": 0.5, "z2": 0.25, "select": True}, b, 10) == (0.5, 0.25, None)
    for junk in (None, [], {"z1": "x", "z2": 0}, {"z1": float("nan"), "z2": 0}, {"z2": 1}):
        assert parse_commit(junk, b, 10) is None
    from ui import features

    reruns = []
    state = {"_latent_bounds": b}
    monkeypatch.setattr(explore.st, "rerun", lambda scope: reruns.append(scope))
    monkeypatch.setattr(explore.st, "session_state", state)
    monkeypatch.setattr(features.st, "session_state", state)
    explore.commit(0.5, 0.25, None)  # a move: the panels show nothing that depends on it, so the
    assert (state["z1"], state["z2"]) == (0.5, 0.25) and reruns == []  # component's own fragment reruns
    explore.commit(0.5, 0.25, 3)  # a new selection: the posterior of the clicked digit follows
    assert state["selected_index"] == 3 and reruns.pop() == ["decoder", "panels"]
    explore.commit(0.75, 0.25, 3)  # the same digit again: nothing new for the panels
    assert reruns == []
    state[features.K_A_KIND] = features.CURRENT  # a morph from the current point follows every move
    explore.commit(0.1, 0.2, None)
    assert reruns.pop() == ["decoder", "panels"]


def _set_latent_script():
    import streamlit as st

    from ui.latent import set_latent

    st.session_state["_latent_bounds"] = (-1.0, 1.0, -2.0, 3.0)
    st.session_state["result"] = set_latent(5.0, -9.0)


def test_set_latent_clamps_to_the_bounds():
    at = AppTest.from_function(_set_latent_script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["result"] == (1.0, -2.0)
    assert (at.session_state["z1"], at.session_state["z2"]) == (1.0, -2.0)


def test_selection_moves_the_point_and_shows_original_and_reconstruction(env):
    enc = shipped.shipped_encodings()
    idx = 1234
    at = run_app()
    at.session_state["selected_index"] = idx  # what a click on a test digit sets
    at.run()
    no_errors(at)
    z = enc["z_mean"][idx]
    assert committed(at) == pytest.approx((z[0], z[1]), abs=1e-5)
    assert explorer_data(at)["selected"] == idx
    caps = [i.caption for i in images(at)]
    assert any(c.startswith(f"original #{idx} (label {enc['label'][idx]})") for c in caps), caps
    assert any(c.startswith("reconstruction at z_mean") for c in caps), caps
    assert any(f"test digit #{idx}, a {enc['label'][idx]}" in m.value for m in at.markdown)
    # A move after a click keeps the new point (the selection is applied once).
    at.session_state["z1"] = 0.5
    at.run()
    assert committed(at)[0] == pytest.approx(0.5)


def test_offline_uses_shipped_encodings(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "no-mnist-here"))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    at = run_app()
    no_errors(at)
    spec = plotly_spec(at, "scatter")
    n = sum(len(t["x"]["bdata"]) > 0 for t in spec["data"] if t.get("type") == "scattergl")
    assert n == 10
    at.session_state["selected_index"] = 7
    at.run()
    no_errors(at)
    caps = [i.caption for i in images(at)]
    assert any(c.startswith("reconstruction at z_mean") for c in caps)
    assert not any(c.startswith("original #") for c in caps)
    assert any("MNIST test set" in i.value and "CVAE_DATA" in i.value for i in at.info)
    # Training says what it needs instead of failing somewhere deep.
    at.session_state[TRAIN_FORM_KEY] = True
    at.run()
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


def test_the_points_payload_is_kept_by_its_encodings_object():
    """A fragment's rerun reuses the payload of its encodings (no hashing, no re-encoding); other
    encodings, other bounds or a freed array are never taken for it."""
    import gc

    from cvae.core.payloads import points_payload
    from ui.explorer import _POINTS, _points

    rng = np.random.default_rng(3)
    enc = {"z_mean": rng.normal(size=(500, 2)).astype(np.float32), "label": rng.integers(0, 10, 500)}
    b = (-4.0, 4.0, -4.0, 4.0)
    first = _points(enc, b)
    assert first == points_payload(enc["z_mean"], enc["label"], b[:2], b[2:])
    assert _points(enc, b) is first  # kept
    assert _points(enc, (-5.0, 5.0, -4.0, 4.0)) is not first  # new bounds
    other = {"z_mean": enc["z_mean"] + 1, "label": enc["label"]}
    assert _points(other, b)["hash"] != first["hash"]  # another model's encodings
    # An entry left at an address by another array (freed, the address reused) is not taken.
    import weakref

    fresh = rng.normal(size=(500, 2)).astype(np.float32)
    _POINTS[id(fresh)] = (weakref.ref(other["z_mean"]), b, first)
    assert _points({"z_mean": fresh, "label": enc["label"]}, b) == points_payload(fresh, enc["label"], b[:2], b[2:])
    del enc, first, other
    gc.collect()
    last = {"z_mean": rng.normal(size=(9, 2)).astype(np.float32), "label": np.zeros(9, int)}
    _points(last, b)
    assert all(ref() is not None for ref, _, _ in _POINTS.values())  # freed arrays' entries are gone


def test_the_fallback_digit_is_the_decode_at_the_point():
    import io

    from PIL import Image

    from cvae import decode_points, load_checkpoint
    from ui.common import file_stamp
    from ui.explore import fallback_png

    path = shipped.SHIPPED_CHECKPOINT
    png = fallback_png(str(path), file_stamp(path), 1.5, -0.75)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), np.int16)
    assert img.shape == (280, 280)
    want = np.rint(decode_points(load_checkpoint(path), np.array([[1.5, -0.75]], np.float32))[0] * 255)
    assert np.abs(img[::10, ::10] - want).max() <= 1 and np.abs(img[9::10, 9::10] - want).max() <= 1


def _layer_traces(at) -> dict:
    spec = plotly_spec(at, "scatter")
    return {t.get("name"): t for t in spec["data"] if t.get("type") != "scattergl"}


def test_the_planes_layers_switch_on_and_off_and_the_url_keeps_them(env):
    """Each layer has its switch, off by default; the stretch map is the decoder's
    magnification over the explorer's bounds; the URL names the layers switched on."""
    from cvae import load_checkpoint
    from cvae.core import geometry
    from cvae.draw.overlays import DENSITY_NAME, PRIOR_NAME, STRETCH_NAME

    at = run_app()
    no_errors(at)
    assert _layer_traces(at) == {} and "layers" not in at.query_params
    at.toggle(key="layer_stretch").set_value(True).run()
    no_errors(at)
    traces = _layer_traces(at)
    assert set(traces) == {STRETCH_NAME} and at.query_params["layers"] == "stretch"
    heat = traces[STRETCH_NAME]
    lo1, hi1, lo2, hi2 = explorer_data(at)["bounds"]
    x, y = plotly_array(heat["x"]), plotly_array(heat["y"])
    assert (x[0], x[-1], y[0], y[-1]) == pytest.approx((lo1, hi1, lo2, hi2))
    z = plotly_array(heat["z"]).reshape(len(y), len(x))
    model = load_checkpoint(shipped.SHIPPED_CHECKPOINT)
    j = geometry.jacobians(model, [[x[7], y[30]], [x[25], y[3]]])
    np.testing.assert_allclose([z[30, 7], z[3, 25]], np.log10(geometry.magnification_of(j)), atol=1e-5)
    assert any("stretches the plane" in c.value for c in at.caption)
    at.toggle(key="layer_prior").set_value(True).run()
    at.toggle(key="layer_density").set_value(True).run()
    no_errors(at)
    assert set(_layer_traces(at)) == {STRETCH_NAME, PRIOR_NAME, DENSITY_NAME}
    assert at.query_params["layers"] == "stretch,prior,density"
    radii = sorted(float(np.hypot(plotly_array(t["x"]), plotly_array(t["y"])).mean())
                   for t in plotly_spec(at, "scatter")["data"] if t.get("name") == PRIOR_NAME)
    assert radii == pytest.approx([1.0, 2.0, 3.0], abs=1e-6)
    for name in ("stretch", "prior", "density"):
        at.toggle(key=f"layer_{name}").set_value(False).run()
    assert _layer_traces(at) == {} and "layers" not in at.query_params
    # a link: the layers it names (junk ignored)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["layers"] = "density,junk"
    at.run()
    no_errors(at)
    assert set(_layer_traces(at)) == {DENSITY_NAME}
    assert at.toggle(key="layer_density").value and not at.toggle(key="layer_stretch").value


def test_the_decoder_says_when_almost_no_test_digit_is_encoded_there(env):
    enc = shipped.shipped_encodings()
    at = run_app()
    no_errors(at)
    lo1, hi1, lo2, hi2 = explorer_data(at)["bounds"]
    sparse = lambda a: [c.value for c in a.caption if "Almost no test digit is encoded" in c.value]  # noqa: E731
    i = 0
    at.session_state["z1"], at.session_state["z2"] = (float(v) for v in enc["z_mean"][i])
    at.run()
    assert sparse(at) == []
    at.session_state["z1"], at.session_state["z2"] = hi1, lo2  # a corner of the plane
    at.run()
    no_errors(at)
    assert len(sparse(at)) == 1 and f"z = ({hi1:.2f}, {lo2:.2f})" in sparse(at)[0]
