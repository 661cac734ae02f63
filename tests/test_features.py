"""Draw a digit, morph, uncertainty, downloads: the pure functions and the panels (AppTest)."""

from __future__ import annotations

import base64
import csv
import io
import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from cvae import load_checkpoint
from cvae.assets import SHIPPED_CHECKPOINT, read_encodings
from cvae.drawing import DrawingError, canvas_to_ink, center_of_mass, decode_data_url, preprocess_drawing
from cvae.export import encodings_csv, gif_bytes, png_bytes, tile
from cvae.latent import decode_points, encode_dataset
from cvae.morph import interpolate, morph
from cvae.overlays import STAR_NAME, ellipse_traces, path_trace, star_trace
from cvae.uncertainty import ellipse, mass_within, nearest, sample_posterior
from helpers import DATA_DIR, REPO, has_data

HARNESS = str(REPO / "tests" / "apps" / "features_harness.py")


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(SHIPPED_CHECKPOINT)


@pytest.fixture(scope="module")
def enc():
    return read_encodings()


def stroke_canvas(points, size=280, width=20, ink=255, ground=0, mode="L") -> np.ndarray:
    """A canvas with one polyline stroke, drawn as a person would with the pad."""
    img = Image.new(mode, (size, size), ground)
    d = ImageDraw.Draw(img)
    d.line(points, fill=ink, width=width, joint="curve")
    for x, y in (points[0], points[-1]):
        d.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=ink)
    return np.asarray(img)


def data_url(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


SEVEN = [(60, 60), (220, 60), (120, 230)]


# ---- drawing -----------------------------------------------------------------

def test_empty_drawing_is_a_clear_error():
    for blank in (np.zeros((280, 280), np.uint8), np.full((280, 280, 3), 255, np.uint8),
                  np.zeros((280, 280, 4), np.uint8)):
        with pytest.raises(DrawingError, match="empty"):
            preprocess_drawing(blank)


def test_bad_canvases_are_refused():
    for bad in (np.zeros((5, 5, 2)), np.zeros((3,)), np.array([["a"]]), np.full((4, 4), np.nan),
                np.zeros((0, 10))):
        with pytest.raises(DrawingError):
            preprocess_drawing(bad)


def test_tall_stroke_fits_20_high_and_is_centred_by_mass():
    x = preprocess_drawing(stroke_canvas([(140, 40), (140, 240)], width=24))
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == pytest.approx(1.0)
    rows = np.flatnonzero((x > 0.05).any(axis=1))
    cols = np.flatnonzero((x > 0.05).any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side is scaled to 20
    assert cols[-1] - cols[0] + 1 <= 5  # aspect kept: a thin bar stays thin
    cy, cx = center_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_wide_stroke_keeps_its_aspect():
    x = preprocess_drawing(stroke_canvas([(30, 100), (250, 100)], width=20))
    cols = np.flatnonzero((x > 0.05).any(axis=0))
    rows = np.flatnonzero((x > 0.05).any(axis=1))
    assert cols[-1] - cols[0] + 1 == 20
    assert rows[-1] - rows[0] + 1 <= 4


def test_position_size_and_ink_style_do_not_matter():
    base = preprocess_drawing(stroke_canvas(SEVEN))
    # Same digit drawn small in a corner.
    small = preprocess_drawing(stroke_canvas([(x // 3 + 10, y // 3 + 150) for x, y in SEVEN], width=7))
    # Dark ink on paper, RGB.
    paper = preprocess_drawing(np.repeat(stroke_canvas(SEVEN, ink=0, ground=255)[..., None], 3, axis=2))
    # Black strokes on a transparent ground (RGBA, ink only in alpha).
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = stroke_canvas(SEVEN)
    transparent = preprocess_drawing(rgba)
    # Floats in [0, 1].
    floats = preprocess_drawing(stroke_canvas(SEVEN).astype(np.float32) / 255)
    for other in (paper, transparent, floats):
        np.testing.assert_allclose(other, base, atol=1e-5)
    # Scaled up 3x from a small drawing: same place and size, a little softer.
    assert np.corrcoef(small.ravel(), base.ravel())[0, 1] > 0.75
    np.testing.assert_allclose(center_of_mass(small), center_of_mass(base), atol=0.6)
    for axis in (0, 1):
        assert abs(np.ptp(np.flatnonzero((small > 0.05).any(axis=axis))) - np.ptp(np.flatnonzero((base > 0.05).any(axis=axis)))) <= 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 199), st.integers(0, 199)), min_size=1, max_size=6),
       st.integers(1, 30), st.integers(60, 200))
def test_any_stroke_becomes_a_fitted_centred_digit(points, width, side):
    canvas = stroke_canvas([(x * side // 200, y * side // 200) for x, y in points], size=side, width=width)
    assume(canvas.max() > 0.05 * 255)  # PIL draws nothing for a 1-px dot on the edge
    x = preprocess_drawing(canvas)
    assert x.shape == (28, 28) and np.isfinite(x).all() and 0 <= x.min() and x.max() == pytest.approx(1.0)
    ink = x > 0.05
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21
    cy, cx = center_of_mass(x)
    assert abs(cy - 14) <= 3.5 and abs(cx - 14) <= 3.5  # centred unless that would push ink out


def test_ink_reading():
    grey = stroke_canvas(SEVEN)
    np.testing.assert_allclose(canvas_to_ink(grey), grey / 255.0, atol=1e-6)
    np.testing.assert_allclose(canvas_to_ink(255 - grey), grey / 255.0, atol=1e-6)  # inverted on paper


def test_data_url_round_trip_and_garbage():
    arr = stroke_canvas(SEVEN)
    back = decode_data_url(data_url(arr))
    assert back.shape == (280, 280, 4)
    np.testing.assert_array_equal(back[..., 0], arr)
    for bad in ("", "hello", "data:text/plain;base64,aGVsbG8=", "data:image/png;base64,@@@",
                "data:image/png;base64," + base64.b64encode(b"not a png").decode(), 42):
        with pytest.raises(DrawingError):
            decode_data_url(bad)


@pytest.mark.skipif(not has_data(), reason="MNIST not available")
def test_redrawn_mnist_digits_come_back_as_mnist(model):
    """A real test digit drawn large and off-centre on a canvas comes back close to itself,
    and encodes close to where the original does: the preprocessing matches MNIST's."""
    from cvae import load_mnist

    x, _ = load_mnist("test", DATA_DIR)
    x = np.asarray(x[:40], dtype=np.float32).reshape(-1, 28, 28)
    redrawn = []
    for img in x:
        big = np.asarray(Image.fromarray((img * 255).astype(np.uint8)).resize((224, 224), Image.Resampling.BILINEAR))
        canvas = np.zeros((320, 320), np.uint8)
        canvas[70:294, 10:234] = big  # off-centre
        redrawn.append(preprocess_drawing(canvas))
    redrawn = np.stack(redrawn)
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(x, redrawn)]
    assert np.median(corr) > 0.9, corr
    zo, _ = encode_dataset(model, x)
    zr, _ = encode_dataset(model, redrawn)
    spread = np.linalg.norm(zo - zo.mean(0), axis=1).mean()
    assert np.median(np.linalg.norm(zo - zr, axis=1)) < 0.25 * spread


# ---- morph -------------------------------------------------------------------

def test_interpolate_is_a_straight_evenly_spaced_line():
    p = interpolate([0.0, 1.0], [3.0, -2.0], 7)
    assert p.shape == (7, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p[0], [0, 1])
    np.testing.assert_allclose(p[-1], [3, -2])
    steps = np.diff(p, axis=0)
    np.testing.assert_allclose(steps, np.tile([[0.5, -0.5]], (6, 1)), atol=1e-6)


@pytest.mark.parametrize("a,b,n", [([0, 0], [1, 1], 1), ([0, 0], [1, 1], 65), ([0, 0], [1, 1, 1], 5),
                                   ([0, np.nan], [1, 1], 5), ([], [], 5)])
def test_interpolate_refuses_bad_input(a, b, n):
    with pytest.raises(ValueError):
        interpolate(a, b, n)


def test_morph_decodes_the_path(model, enc):
    a, b = enc["z_mean"][0], enc["z_mean"][1]
    path, frames = morph(model, a, b, 9)
    assert frames.shape == (9, 28, 28)
    np.testing.assert_allclose(frames[0], decode_points(model, a[None])[0], atol=1e-6)
    np.testing.assert_allclose(frames[-1], decode_points(model, b[None])[0], atol=1e-6)
    # The middle frame differs from both ends (it is a morph, not a copy).
    assert np.abs(frames[4] - frames[0]).mean() > 1e-3 and np.abs(frames[4] - frames[-1]).mean() > 1e-3


# ---- export ------------------------------------------------------------------

def test_png_is_valid_and_crisp():
    img = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    data = png_bytes(img, scale=3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert back.shape == (84, 84)
    np.testing.assert_array_equal(back[::3, ::3], np.clip(np.rint(img * 255), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(back[1::3, 2::3], back[::3, ::3])
    for bad in (np.zeros((2, 2, 2)), np.full((2, 2), np.nan)):
        with pytest.raises(ValueError):
            png_bytes(bad)
    with pytest.raises(ValueError):
        png_bytes(img, scale=0)


def test_tile_lays_out_a_strip_and_a_grid():
    imgs = np.stack([np.full((4, 5), i / 10, np.float32) for i in range(7)])
    strip = tile(imgs, pad=1)
    assert strip.shape == (4, 7 * 5 + 6)
    assert strip[0, 6] == pytest.approx(0.1) and strip[0, 5] == 1.0
    grid = tile(imgs, ncols=3, pad=2)
    assert grid.shape == (3 * 4 + 4, 3 * 5 + 4)
    assert grid[12, 0] == pytest.approx(0.6)
    assert grid[-1, -1] == 1.0  # the empty cells are padding


def test_gif_is_animated_and_loops_forward_and_back():
    frames = np.stack([np.full((28, 28), i / 5, np.float32) for i in range(6)])
    data = gif_bytes(frames, duration_ms=50, scale=2)
    assert data[:6] == b"GIF89a"
    with Image.open(io.BytesIO(data)) as im:
        assert im.is_animated and im.n_frames == 6 + 4
        assert im.size == (56, 56)
        assert im.info.get("loop") == 0
        means = []
        for k in range(im.n_frames):
            im.seek(k)
            means.append(np.asarray(im.convert("L"), dtype=np.float32).mean())
            assert im.info["duration"] == 50
    np.testing.assert_allclose(means, [round(v * 255) for v in [0, .2, .4, .6, .8, 1, .8, .6, .4, .2]], atol=1)
    once = gif_bytes(frames, boomerang=False)
    with Image.open(io.BytesIO(once)) as im:
        assert im.n_frames == 6


def test_encodings_csv_round_trips(enc):
    n = 50
    data = encodings_csv(enc["z_mean"][:n], enc["z_log_var"][:n], enc["label"][:n])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == ["index", "label", "z1", "z2", "z1_log_var", "z2_log_var", "z1_std", "z2_std"]
    assert len(rows) == n
    got = np.array([[float(r["z1"]), float(r["z2"]), float(r["z1_log_var"]), float(r["z2_std"])] for r in rows])
    want = np.column_stack([enc["z_mean"][:n], enc["z_log_var"][:n, 0], np.exp(0.5 * enc["z_log_var"][:n, 1])])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [int(r["label"]) for r in rows] == enc["label"][:n].tolist()
    assert [int(r["index"]) for r in rows] == list(range(n))
    with pytest.raises(ValueError):
        encodings_csv(enc["z_mean"][:3], enc["z_log_var"][:2])


# ---- uncertainty and neighbours ----------------------------------------------

@pytest.mark.parametrize("k", [1.0, 2.0])
def test_ellipse_is_the_k_sigma_outline(k):
    m, lv = np.array([0.5, -1.0]), np.array([np.log(0.04), np.log(0.25)])  # sigma 0.2 and 0.5
    e = ellipse(m, lv, k, n_points=64)
    assert e.shape == (65, 2)
    np.testing.assert_allclose(e[0], e[-1])
    r = ((e[:, 0] - m[0]) / (k * 0.2)) ** 2 + ((e[:, 1] - m[1]) / (k * 0.5)) ** 2
    np.testing.assert_allclose(r, 1.0, atol=1e-9)
    np.testing.assert_allclose(e[:, 0].max() - e[:, 0].min(), 2 * k * 0.2, atol=1e-9)
    assert mass_within(1) == pytest.approx(0.3935, abs=1e-4)
    assert mass_within(2) == pytest.approx(0.8647, abs=1e-4)
    with pytest.raises(ValueError):
        ellipse([0, 0, 0], [0, 0, 0])


def test_posterior_samples_are_seeded_and_follow_the_posterior():
    m, lv = np.array([1.0, -2.0]), np.array([np.log(0.09), np.log(1.0)])
    a = sample_posterior(m, lv, 256, seed=3)
    np.testing.assert_array_equal(a, sample_posterior(m, lv, 256, seed=3))
    assert not np.array_equal(a, sample_posterior(m, lv, 256, seed=4))
    # 256 samples: the mean is within 4 standard errors, the std within 20%.
    np.testing.assert_array_less(np.abs(a.mean(0) - m), 4 * np.array([0.3, 1.0]) / 16)
    np.testing.assert_allclose(a.std(0), [0.3, 1.0], rtol=0.2)
    inside = (((a - m) / [0.3, 1.0]) ** 2).sum(1) <= 4
    assert 0.78 < inside.mean() < 0.95  # 2-sigma ellipse holds 86%
    with pytest.raises(ValueError):
        sample_posterior(m, lv, 0)


def test_nearest_matches_brute_force(enc):
    z = enc["z_mean"]
    q = z[123]
    idx, dist = nearest(q, z, 5, exclude=123)
    brute = np.argsort(np.linalg.norm(z - q, axis=1), kind="stable")
    brute = brute[brute != 123][:5]
    np.testing.assert_array_equal(idx, brute)
    assert np.all(np.diff(dist) >= 0)
    np.testing.assert_allclose(dist, np.linalg.norm(z[idx] - q, axis=1), rtol=1e-6)
    idx2, _ = nearest([0.0, 0.0], [[1, 0], [0, 1], [-1, 0]], 2)
    np.testing.assert_array_equal(idx2, [0, 1])  # ties broken by index
    with pytest.raises(ValueError):
        nearest([0.0], z, 3)


def test_overlay_traces():
    s = star_trace([1.5, -2.0])
    assert s.name == STAR_NAME and s.marker.symbol == "star" and (s.x[0], s.y[0]) == (1.5, -2.0)
    p = path_trace(interpolate([0, 0], [1, 2], 5))
    assert len(p.x) == 5 and p.y[-1] == pytest.approx(2.0)
    e = ellipse_traces([0, 0], [0, 0])
    assert [t.name for t in e] == ["posterior 1σ (39%)", "posterior 2σ (86%)", "posterior mean"]


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


def test_panels_start_clean(harness):
    st_ = status(harness)
    assert STAR_NAME not in st_["traces"]
    assert any("Nothing drawn yet" in i.value for i in harness.info)
    labels = [b.label for b in harness.get("download_button")]
    for want in ("Download strip (PNG)", "Download animation (GIF)", "Manifold grid (PNG)",
                 "Current digit (PNG)", "Encodings (CSV)"):
        assert want in labels


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
    at = harness
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
    at = harness
    at.selectbox(key="feat_morph_a_kind").set_value("Your drawing").run()
    assert any("Cannot morph" in w.value and "draw a digit" in w.value for w in at.warning)
    assert "morph path" not in status(at)["traces"]


def test_uncertainty_for_a_clicked_digit(harness, enc):
    at = harness
    at.session_state["selected_index"] = 42
    at.run()
    assert not at.exception
    one = trace(at, "test #42 (%d) 1σ (39%%)" % enc["label"][42])
    sd = np.exp(0.5 * enc["z_log_var"][42])
    assert max(one["x"]) - min(one["x"]) == pytest.approx(2 * sd[0], rel=1e-3)
    assert max(one["y"]) - min(one["y"]) == pytest.approx(2 * sd[1], rel=1e-3)
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
    at = harness
    at.radio(key="feat_unc_source").set_value("Your drawing").run()
    assert any("draw a digit first" in i.value for i in at.info)
    canvas = stroke_canvas([(140, 40), (140, 240)], width=24)
    at.session_state["feat_canvas"] = {"image": data_url(canvas)}
    at.run()
    zm, lv = encode_dataset(model, preprocess_drawing(canvas)[None])
    mean = trace(at, "your drawing mean")
    np.testing.assert_allclose([mean["x"][0], mean["y"][0]], zm[0], atol=1e-5)


# ---- in the real app ---------------------------------------------------------

def test_features_in_the_app(model, enc, monkeypatch, tmp_path):
    """app.py shows the panels below the manifold and their layers on its scatter; the drawn
    digit's "Explore from here" moves the app's sliders; a click's posterior is shown."""
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
    names = [t.get("name") for t in figure(at)["data"]]
    assert STAR_NAME in names and "morph path" in names
    assert "test #7 (%d) 1σ (39%%)" % enc["label"][7] in names
    want = encode_dataset(model, preprocess_drawing(canvas)[None])[0][0]
    at.button(key="feat_explore_drawn").click().run()
    assert not at.exception
    assert (at.slider(key="z1").value, at.slider(key="z2").value) == pytest.approx(tuple(want), abs=0.01)


def test_morph_to_the_clicked_digit(harness, enc):
    at = harness
    at.selectbox(key="feat_morph_b_kind").set_value("Clicked test digit").run()
    assert any("click a digit on the scatter" in w.value for w in at.warning)
    at.session_state["selected_index"] = 25
    at.run()
    path = trace(at, "morph path")
    np.testing.assert_allclose([path["x"][-1], path["y"][-1]], enc["z_mean"][25], atol=1e-5)
