"""The latent explorer in real Chromium: the browser's decoder, sliders that morph while
dragged, the scatter as a 2-D slider, commits, the URL, cached assets, visible errors.

Runs tests/apps/explorer_harness.py under ``streamlit run`` with a decoder whose weights and
biases are all random (so any layout slip in the browser's forward pass shows) and random
encodings. "No rerun" is checked on the wire: the page sends nothing on its websocket
while a slider or the scatter is dragged or hovered; a commit is one message.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from cvae import decode_points, save_checkpoint
from cvae.core.payloads import decoder_payload
from devkit import random_model, start_server

TIMEOUT_MS = 90_000
HARNESS_LABELS = np.random.default_rng(1).integers(0, 10, 3000).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def harness(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("explorer")
    save_checkpoint(model, d / "model.pt")
    rng = np.random.default_rng(0)
    np.savez(d / "enc.npz", z_mean=rng.normal(size=(3000, 2)).astype(np.float32),
             z_log_var=np.zeros((3000, 2), np.float32), label=HARNESS_LABELS)
    server = start_server("tests/apps/explorer_harness.py",
                          {"CVAE_EXPLORER_CKPT": str(d / "model.pt"), "CVAE_EXPLORER_ENC": str(d / "enc.npz"),
                           "CVAE_TEST_HOOKS": "1"}, log=d / "streamlit.log")
    yield server.url
    server.stop()


class Wire:
    """What the page sends on Streamlit's websocket (a rerun or a trigger is one message)."""

    def __init__(self, pg):
        self.sent: list[bytes] = []
        pg.on("websocket", lambda ws: ws.on("framesent", lambda payload: self.sent.append(payload)))


def open_page(browser, url, viewport=(1400, 1100), context=None):
    ctx = context or browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "WebGL" not in m.text else None)
    wire = Wire(pg)
    pg.goto(url)
    ready(pg)
    return ctx, pg, wire, errors


def ready(pg):
    pg.wait_for_function("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
                         "s => s.hasModel && s.paints > 0 && s.scatter)", timeout=TIMEOUT_MS)


@pytest.fixture
def page_(browser, harness):
    ctx, pg, wire, errors = open_page(browser, harness)
    yield pg, wire
    ctx.close()
    assert not errors, errors


def stats(pg) -> dict:
    (s,) = pg.evaluate("cvaeExplorer.stats()")
    return s


def status(pg) -> dict:
    """The harness's line, printed by Python: the committed point and the selection."""
    text = pg.get_by_test_id("stText").last.inner_text()
    m = re.search(r"full_runs=(\d+) z1=(\S+) z2=(\S+) selected=(\S+)", text)
    assert m, text
    return {"full_runs": int(m[1]), "z": (float(m[2]), float(m[3])), "selected": None if m[4] == "None" else int(m[4])}


def canvas_pixels(pg) -> np.ndarray:
    rgba = pg.locator("canvas.digit").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)")
    return np.array(rgba, np.uint8).reshape(28, 28, 4)[..., 0]


def expected_pixels(model, z) -> np.ndarray:
    return np.clip(np.rint(decode_points(model, np.asarray([z], np.float32))[0] * 255), 0, 255).astype(np.uint8)


def assert_canvas_is(pg, model, z):
    err = np.abs(canvas_pixels(pg).astype(int) - expected_pixels(model, z)).max()
    assert err <= 1, f"canvas differs from the PyTorch decode at {z} by {err}/255"


def wait_commits(pg, n):
    pg.wait_for_function(f"() => cvaeExplorer.stats()[0].commits >= {n}", timeout=TIMEOUT_MS)


def wait_python_at(pg, z, tol=2e-3):
    pg.wait_for_function(
        """([a, b, tol]) => { const m = /z1=(\\S+) z2=(\\S+)/.exec(document.body.innerText);
             return m && Math.abs(+m[1] - a) < tol && Math.abs(+m[2] - b) < tol; }""", arg=[z[0], z[1], tol],
        timeout=TIMEOUT_MS)


def thumb_x(pg, name, value) -> tuple[float, float]:
    """Page coordinates of a range input's thumb at ``value`` (Chromium: the thumb's centre runs
    from half a thumb in from the left edge to half a thumb in from the right)."""
    box = pg.get_by_role("slider", name=name, exact=True).bounding_box()
    lo = float(pg.get_by_role("slider", name=name, exact=True).get_attribute("min"))
    hi = float(pg.get_by_role("slider", name=name, exact=True).get_attribute("max"))
    thumb = 16
    return (box["x"] + thumb / 2 + (value - lo) / (hi - lo) * (box["width"] - thumb), box["y"] + box["height"] / 2)


def test_browser_decode_matches_pytorch(page_, model):
    pg, _ = page_
    rng = np.random.default_rng(1)
    points = np.concatenate([[[0, 0], [-4, -4], [4, 4], [1.5, -2.5]], rng.uniform(-4, 4, size=(12, 2))]).astype(np.float32)
    got = np.array(pg.evaluate("pts => cvaeExplorer.decode(pts)", points.tolist()), np.float32)
    want = decode_points(model, points).reshape(len(points), -1)
    assert got.shape == want.shape == (16, 784)
    err = np.abs(got - want).max()
    assert err < 1e-5, f"max |browser - pytorch| = {err}"  # float64 in the browser; measured ~1e-7
    assert want.std(axis=0).max() > 0.05  # the points decode to different images
    assert_canvas_is(pg, model, stats(pg)["committed"])  # what is painted is that decode


def test_slider_drag_repaints_at_every_move_and_commits_on_release(page_, model):
    pg, wire = page_
    z0 = stats(pg)["committed"]
    start = thumb_x(pg, "z1", z0[0])
    pg.mouse.move(*start)
    pg.mouse.down()
    sent_before, paints = len(wire.sent), stats(pg)["paints"]
    frames, seen = [], []
    for dx in (20, 45, 70, 110, 150):
        pg.mouse.move(start[0] + dx, start[1])
        s = stats(pg)
        assert s["paints"] == paints + 1, "the canvas was not repainted at this move"
        paints = s["paints"]
        assert s["live"] and s["live"]["source"] == "slider"
        seen.append(s["live"]["z"][0])
        frames.append(canvas_pixels(pg))
        assert_canvas_is(pg, model, s["live"]["z"])
        assert s["live"]["z"][1] == z0[1]
        assert float(pg.get_by_role("slider", name="z1", exact=True).input_value()) == pytest.approx(seen[-1])
    assert seen == sorted(seen) and seen[0] > z0[0]
    for a, b in zip(frames, frames[1:]):
        assert (a != b).any(), "the digit did not change between moves"
    assert len(wire.sent) == sent_before, "something was sent to the server before the release"
    assert stats(pg)["commits"] == 0
    # Read before the release: Python's rerun may land before the next call returns.
    backgrounds, updates = stats(pg)["padBackgrounds"], stats(pg)["updates"]
    pg.mouse.up()
    wait_commits(pg, 1)
    wait_python_at(pg, (seen[-1], z0[1]))
    pg.wait_for_function(f"() => cvaeExplorer.stats()[0].updates > {updates}", timeout=TIMEOUT_MS)
    s = stats(pg)
    assert s["commits"] == 1
    # Python's rerun after the commit: the pad's 10,000 faint points are not drawn again, and
    # the page is no longer watched for the scatter (it was hooked when the page was ready).
    assert s["padBackgrounds"] == backgrounds == 1
    assert s["watching"] is False


def test_arrow_keys_move_a_slider_and_shift_takes_bigger_steps(page_, model):
    pg, _ = page_
    z = stats(pg)["committed"]
    slider = pg.get_by_role("slider", name="z2", exact=True)
    slider.focus()
    pg.keyboard.press("ArrowRight")
    wait_python_at(pg, (z[0], z[1] + 0.01))
    pg.keyboard.press("Shift+ArrowRight")
    wait_python_at(pg, (z[0], z[1] + 0.11))
    assert_canvas_is(pg, model, (z[0], z[1] + 0.11))
    assert pg.locator("output").nth(1).inner_text() == f"{z[1] + 0.11:.2f}"
    # The point was shown while the key was down ("moving"); committed, the readout says so.
    assert re.search(rf"z = \({z[0]:.3f}, {z[1] + 0.11:.3f}\) · committed · decoded in your browser",
                     pg.locator(".readout").inner_text())


def test_hovering_the_scatter_previews_the_digit_at_the_cursor(page_, model):
    pg, wire = page_
    committed = stats(pg)["committed"]
    sent_before = len(wire.sent)
    targets = [(-1.5, 1.0), (0.7, -0.4), (2.2, 2.0), (-0.3, -2.6)]
    paints = stats(pg)["paints"]
    for t in targets:
        pg.mouse.move(*pg.evaluate("([a, b]) => cvaeExplorer.scatterPx(a, b)", list(t)))
        s = stats(pg)
        assert s["paints"] == paints + 1
        paints = s["paints"]
        assert s["live"]["source"] == "hover"
        z = s["live"]["z"]
        assert np.allclose(z, t, atol=0.03), (z, t)  # within a pixel of the target
        browser = np.array(pg.evaluate("z => cvaeExplorer.decode([z])[0]", z), np.float32)
        want = decode_points(model, np.asarray([z], np.float32)).reshape(-1)
        assert np.abs(browser - want).max() < 1e-3
        assert_canvas_is(pg, model, z)
    assert len(wire.sent) == sent_before, "hovering sent something to the server"
    pg.mouse.move(5, 5)  # leave the plot: back to the committed point
    s = stats(pg)
    assert s["live"] is None and s["shown"] == committed
    assert_canvas_is(pg, model, committed)


# The test-set index of a scatter point, from the harness's encodings (trace "d" holds the
# digits labelled d in test-set order; the page sends no indices).
ISOLATED_POINT_JS = """(labels) => { const gd = document.querySelector('.st-key-scatter .js-plotly-plot');
    const byLabel = {}; labels.forEach((l, i) => (byLabel[l] ||= []).push(i));
    const pts = []; for (const t of gd._fullData) { if (!t.x || !/^\\d$/.test(t.name)) continue;
      for (let i = 0; i < t.x.length; i++) pts.push([t.x[i], t.y[i], byLabel[+t.name][i]]); }
    let best = null;  // the point inside [-2.5, 2.5]^2 farthest from its nearest neighbour
    for (const p of pts) { if (Math.abs(p[0]) > 2.5 || Math.abs(p[1]) > 2.5) continue;
      let near = Infinity; for (const q of pts) if (q !== p) near = Math.min(near, Math.hypot(p[0] - q[0], p[1] - q[1]));
      if (!best || near > best[3]) best = [p[0], p[1], p[2], near]; }
    return best; }"""

WATCH_HOVER_JS = """() => { const gd = document.querySelector('.st-key-scatter .js-plotly-plot');
    window.__hovered = null; gd.on('plotly_hover', (ev) => { const p = ev.points[0]; window.__hovered = [p.x, p.y, +p.data.name, p.pointNumber]; }); }"""


def harness_labels() -> list[int]:
    return HARNESS_LABELS.tolist()


def hover_point(pg, target):
    """Move onto a test digit until Plotly's own hover reports that digit."""
    pg.evaluate(WATCH_HOVER_JS)
    px = pg.evaluate("([a, b]) => cvaeExplorer.scatterPx(a, b)", target[:2])
    pg.mouse.move(px[0] - 25, px[1] + 25)
    pg.mouse.move(*px, steps=5)
    pg.wait_for_function("([x, y]) => window.__hovered && window.__hovered[0] === x && window.__hovered[1] === y",
                         arg=[target[0], target[1]], timeout=TIMEOUT_MS)
    return px


def test_hover_preview_is_where_plotly_puts_a_point(page_):
    """The cursor's latent point, independently of our axis maths: Plotly's own hover picks
    the test digit under the cursor, and the preview is at that digit's z_mean."""
    pg, _ = page_
    target = pg.evaluate(ISOLATED_POINT_JS, harness_labels())
    hover_point(pg, target)
    z = stats(pg)["live"]["z"]
    per_px = pg.evaluate("""() => { const a = document.querySelector('.st-key-scatter .js-plotly-plot')._fullLayout.xaxis;
        return (a.range[1] - a.range[0]) / a._length; }""")
    assert np.allclose(z, target[:2], atol=1.5 * per_px), (z, target)  # within a pixel and a half


def test_drag_on_the_scatter_moves_the_marker_live_and_commits_once(page_, model):
    pg, wire = page_
    a, b = (-2.0, -2.5), (1.5, 1.2)
    pa = pg.evaluate("([x, y]) => cvaeExplorer.scatterPx(x, y)", list(a))
    pb = pg.evaluate("([x, y]) => cvaeExplorer.scatterPx(x, y)", list(b))
    pg.mouse.move(*pa)
    pg.mouse.down()
    sent_before, draws = len(wire.sent), stats(pg)["scatterDraws"]
    for k in range(1, 6):
        pg.mouse.move(pa[0] + (pb[0] - pa[0]) * k / 5, pa[1] + (pb[1] - pa[1]) * k / 5)
        s = stats(pg)
        assert s["live"]["source"] == "drag"
        assert s["scatterDraws"] > draws, "the marker did not follow"
        draws = s["scatterDraws"]
        assert_canvas_is(pg, model, s["live"]["z"])
    assert len(wire.sent) == sent_before, "the drag sent something before the release"
    pg.mouse.up()
    wait_commits(pg, 1)
    wait_python_at(pg, b, tol=0.03)
    s = stats(pg)
    assert s["commits"] == 1 and s["live"] is None
    assert np.allclose(s["committed"], b, atol=0.03)


def test_a_click_on_a_test_digit_selects_it(page_, model):
    pg, _ = page_
    target = pg.evaluate(ISOLATED_POINT_JS, harness_labels())
    hover_point(pg, target)
    pg.mouse.down()
    pg.mouse.up()
    pg.get_by_text(f"Selected: test digit #{target[2]}").wait_for(timeout=TIMEOUT_MS)
    wait_python_at(pg, target[:2], tol=2e-3)
    assert status(pg)["selected"] == target[2]
    assert stats(pg)["commits"] == 1
    assert_canvas_is(pg, model, stats(pg)["committed"])


def test_after_a_commit_sliders_pad_marker_url_and_canvas_agree(page_, model):
    pg, _ = page_
    target = (1.25, -0.75)
    start = pg.evaluate("([a, b]) => cvaeExplorer.scatterPx(a, b)", [0.25, 0.25])
    end = pg.evaluate("([a, b]) => cvaeExplorer.scatterPx(a, b)", list(target))
    pg.mouse.move(*start)
    pg.mouse.down()
    pg.mouse.move(*end, steps=4)
    pg.mouse.up()
    wait_python_at(pg, target, tol=0.03)
    pg.wait_for_function("() => /z1=/.test(location.search)", timeout=TIMEOUT_MS)
    python_z = status(pg)["z"]
    s = stats(pg)
    assert np.allclose(s["committed"], python_z, atol=1e-3)
    for k, name in enumerate(("z1", "z2")):
        assert float(pg.get_by_role("slider", name=name, exact=True).input_value()) == pytest.approx(python_z[k], abs=0.006)
    url = parse_qs(urlparse(pg.url).query)
    assert (float(url["z1"][0]), float(url["z2"][0])) == pytest.approx(python_z, abs=1e-3)
    assert_canvas_is(pg, model, s["committed"])
    # The pad's handle (a red disc) is drawn at that point.
    lo1, hi1, lo2, hi2 = (float(pg.get_by_role("slider", name=n, exact=True).get_attribute(a))
                          for n in ("z1", "z2") for a in ("min", "max"))
    rgba = pg.locator("canvas.pad").evaluate("""(c, [fx, fy]) => Array.from(c.getContext('2d').getImageData(
        Math.round(fx * c.width), Math.round(fy * c.height), 1, 1).data)""",
        [(python_z[0] - lo1) / (hi1 - lo1), (hi2 - python_z[1]) / (hi2 - lo2)])
    assert rgba[0] > 200 and rgba[1] < 120 and rgba[2] < 120, f"no handle at the committed point on the pad: {rgba}"
    # The scatter's marker and the manifold's ring are drawn at that point.
    px = pg.evaluate("([a, b]) => cvaeExplorer.scatterPx(a, b)", list(python_z))
    assert pg.evaluate("([a, b]) => cvaeExplorer.scatterLatent(a, b)", px) == pytest.approx(list(python_z), abs=0.02)


def ring_row(pg) -> tuple[float, list[int]]:
    """Along the manifold overlay's row through the point the ring should circle: that point's
    x and the x of every red pixel (canvas pixels)."""
    return pg.evaluate("""() => {
        const [cx, cy] = cvaeExplorer.manifoldRing();
        const c = document.querySelector('.st-key-manifold canvas.cvae-overlay'), r = c.getBoundingClientRect();
        const k = c.width / r.width, row = c.getContext('2d').getImageData(0, Math.round((cy - r.top) * k), c.width, 1).data;
        const red = [];
        for (let i = 0; i < c.width; i++) if (row[4 * i] > 200 && row[4 * i + 1] < 120 && row[4 * i + 3] > 200) red.push(i);
        return [(cx - r.left) * k, red];
    }""")


def assert_ring_around_point(pg) -> float:
    x0, red = ring_row(pg)
    left, right = [i for i in red if i < x0], [i for i in red if i > x0]
    assert left and right, f"no ring around x={x0:.1f}: red at {red}"
    inner = (max(left) + min(right)) / 2
    assert abs(inner - x0) <= 1.5, f"the ring is centred at {inner}, the point at {x0:.1f}"
    return x0


def test_the_manifold_tab_rings_the_point_and_follows_a_drag_live(page_):
    pg, wire = page_
    assert not stats(pg)["manifold"], "the manifold is drawn before its tab is opened"
    pg.get_by_role("tab", name="Manifold").click()
    pg.wait_for_function("() => { const s = cvaeExplorer.stats()[0]; return s.manifold && s.manifoldDraws > 0; }",
                         timeout=TIMEOUT_MS)
    x0 = assert_ring_around_point(pg)
    # A slider drag, not released: the ring follows the live point, nothing goes to the server.
    z0 = stats(pg)["committed"]
    start = thumb_x(pg, "z1", z0[0])
    pg.mouse.move(*start)
    pg.mouse.down()
    sent, draws = len(wire.sent), stats(pg)["manifoldDraws"]
    pg.mouse.move(start[0] + 60, start[1])
    s = stats(pg)
    assert s["manifoldDraws"] > draws and s["live"]["z"][0] > z0[0] + 0.3
    assert assert_ring_around_point(pg) > x0 + 10
    assert len(wire.sent) == sent
    pg.mouse.up()
    wait_commits(pg, 1)


def test_a_link_opens_the_explorer_at_its_point_and_junk_is_ignored(browser, harness, model):
    ctx, pg, _, errors = open_page(browser, harness + "/?z1=-1.5&z2=0.5")
    try:
        wait_python_at(pg, (-1.5, 0.5))
        assert_canvas_is(pg, model, (-1.5, 0.5))
        pg.goto(harness + "/?z1=banana&z2=1e9")
        ready(pg)
        z = status(pg)["z"]
        assert np.isfinite(z).all() and -10 < z[0] < 10 and z[1] < 10  # junk ignored, the huge value clamped
        assert pg.get_by_test_id("stException").count() == 0
    finally:
        ctx.close()
    assert not errors, errors


def test_a_reload_takes_the_weights_from_the_browser(browser, harness, model):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        received: list[int] = []
        payloads: list[bytes] = []
        weights_b64 = decoder_payload(model)["b64"][1000:1100].encode()
        code_snippet = b"function convTranspose(x, L)"
        _, pg, _, errors = open_page(browser, harness, context=ctx)
        assert pg.evaluate("cvaeExplorer.stats()[0].hasModel")

        def got(p):
            received.append(len(p))
            payloads.append(p if isinstance(p, bytes) else p.encode())
        pg.on("websocket", lambda ws: ws.on("framereceived", got))
        first = pg.evaluate("cvaeExplorer.stats()[0].updates")
        assert first >= 1
        # The browser names what it keeps once IndexedDB has committed it.
        pg.wait_for_function("() => document.cookie.includes('cvae_assets=')", timeout=TIMEOUT_MS)
        pg.reload()
        ready(pg)
        assert_canvas_is(pg, model, stats(pg)["committed"])
        # (What a reload of the real app costs in bytes: benchmarks/interaction_cost.py.)
        assert not any(weights_b64 in p for p in payloads), "the weights were sent again"
        assert not any(code_snippet in p for p in payloads), "the explorer module was sent again"
        assert received, "nothing was received: the frames were not watched"
    finally:
        ctx.close()
    assert not errors, errors


def own_harness(model, tmp_path, env: dict):
    """A harness server of the test's own, with ``env`` (the harness's fault switches)."""
    save_checkpoint(model, tmp_path / "model.pt")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "enc.npz", z_mean=rng.normal(size=(300, 2)).astype(np.float32),
             z_log_var=np.zeros((300, 2), np.float32), label=HARNESS_LABELS[:300])
    return start_server("tests/apps/explorer_harness.py",
                        {"CVAE_EXPLORER_CKPT": str(tmp_path / "model.pt"), "CVAE_EXPLORER_ENC": str(tmp_path / "enc.npz"),
                         "CVAE_TEST_HOOKS": "1", **env}, log=tmp_path / "streamlit.log")


def test_rapid_keys_on_a_slow_server_lose_nothing_and_never_step_back(browser, model, tmp_path):
    """Twenty key presses, in pairs, faster than the server applies them: a rerun of the first
    of a pair arrives while the second is pending. The browser keeps its own point until its last commit is
    echoed, so every step builds on the one before, and Python ends on the twentieth."""
    server = own_harness(model, tmp_path, {"CVAE_HARNESS_SLOW_COMMIT": "0.3"})
    try:
        ctx, pg, _, errors = open_page(browser, server.url)
        z0 = stats(pg)["committed"]
        pg.get_by_role("slider", name="z1", exact=True).focus()
        seen = []
        for k in range(10):
            updates = stats(pg)["updates"]
            pg.keyboard.press("ArrowRight")
            pg.keyboard.press("ArrowRight")
            seen += [stats(pg)["committed"][0]]
            if k < 9:  # a rerun (of the first press) arrives while the second is still pending
                pg.wait_for_function(f"() => cvaeExplorer.stats()[0].updates > {updates}", timeout=TIMEOUT_MS)
        assert seen == sorted(seen) and len(set(seen)) == 10, f"the point stepped back: {seen}"
        want = (round(z0[0] + 0.20, 2), z0[1])
        wait_python_at(pg, want)
        pg.wait_for_function(f"() => new URLSearchParams(location.search).get('z1') === '{want[0]:.3f}'",
                             timeout=TIMEOUT_MS)
        assert stats(pg)["committed"] == pytest.approx(list(want))
        ctx.close()
        assert not errors, errors
    finally:
        server.stop()


def test_a_commit_lost_on_its_way_is_sent_again(browser, model, tmp_path):
    """The server loses the first commit (the harness drops it): Python never echoes its
    number, so the browser sends it again and it lands."""
    server = own_harness(model, tmp_path, {"CVAE_HARNESS_LOSE_FIRST_COMMIT": "1"})
    try:
        ctx, pg, _, errors = open_page(browser, server.url)
        z0 = stats(pg)["committed"]
        pg.get_by_role("slider", name="z1", exact=True).focus()
        pg.keyboard.press("ArrowRight")
        wait_python_at(pg, (z0[0] + 0.01, z0[1]))
        assert stats(pg)["resent"] >= 1
        ctx.close()
        assert not errors, errors
    finally:
        server.stop()


def remount(pg):
    """Take the explorer off the page (the harness's toggle: Streamlit unmounts it, and the
    page's list of live explorers empties) and put it back (a new explorer, ready)."""
    show = pg.get_by_text("Show the explorer")
    show.click()
    pg.wait_for_function("() => cvaeExplorer.stats().length === 0", timeout=TIMEOUT_MS)
    show.click()
    ready(pg)


def test_an_overtaken_call_keeps_the_explorer_and_its_keyboard_focus(page_):
    """Streamlit (1.67's BidiComponent) runs the cleanup of a call that a newer rerun overtook
    (its data came while the call was still starting) at once, while the component stays on
    the page. Under load that tore the explorer down in the middle of a key sequence (CI of
    2026-11-30: the slider lost focus, the last presses went nowhere, the old explorer resent
    its last commit every 2.5 s for ever). Here that call and its cleanup are made as
    Streamlit makes them, between two key presses."""
    pg, wire = page_
    z0 = stats(pg)["committed"]
    slider = pg.get_by_role("slider", name="z1", exact=True)
    slider.focus()
    pg.keyboard.press("ArrowRight")
    wait_python_at(pg, (z0[0] + 0.01, z0[1]))
    looked = pg.evaluate("cvaeBoot.released()")
    pg.evaluate("() => cvaeBoot.mount(cvaeBoot.last)()")  # the overtaken call, then its cleanup
    pg.wait_for_function(f"() => cvaeBoot.released() > {looked}", timeout=TIMEOUT_MS)
    assert stats(pg)["commits"] == 1  # the same explorer, not a new one
    assert slider.evaluate("s => s.getRootNode().activeElement === s"), "the slider lost the keyboard focus"
    for _ in range(9):
        pg.keyboard.press("ArrowRight")
    wait_python_at(pg, (round(z0[0] + 0.10, 2), z0[1]))
    assert stats(pg)["commits"] == 10


def test_an_explorer_taken_off_the_page_stops_and_a_new_one_commits(page_):
    """Off the page, the explorer is unmounted (the page's list of live explorers empties); put
    back, a new one numbers its commits on from the last Python applied (starting again at 1,
    Python dropped them as already applied and the point sprang back)."""
    pg, wire = page_
    z0 = stats(pg)["committed"]
    pg.get_by_role("slider", name="z1", exact=True).focus()
    for k in range(1, 4):
        pg.keyboard.press("ArrowRight")
        wait_python_at(pg, (round(z0[0] + 0.01 * k, 2), z0[1]))
    remount(pg)
    assert stats(pg)["commits"] == 0  # a new explorer
    pg.get_by_role("slider", name="z1", exact=True).focus()
    pg.keyboard.press("ArrowRight")
    wait_python_at(pg, (round(z0[0] + 0.04, 2), z0[1]))
    pg.wait_for_function(f"() => new URLSearchParams(location.search).get('z1') === '{z0[0] + 0.04:.3f}'",
                         timeout=TIMEOUT_MS)


@pytest.mark.parametrize("new_explorer", [False, True], ids=["same explorer", "a new explorer"])
def test_a_decoder_the_browser_cannot_read_says_so_and_the_server_draws_the_digit(page_, new_explorer):
    """Once a commit says the browser decodes, Python stops drawing (and sending) its own digit.
    A decoder payload the browser cannot read (here cut short) shows a visible message, and the
    browser says "failed": the server's digit is drawn again, and shown. So too when the
    explorer that failed is not the one that told (taken off the page and put back between)."""
    pg, _ = page_
    server_digit = pg.locator('[data-testid="stImageCaption"]', has_text="decoded at z")
    z0 = stats(pg)["committed"]
    pg.get_by_role("slider", name="z1", exact=True).focus()
    pg.keyboard.press("ArrowRight")
    wait_python_at(pg, (z0[0] + 0.01, z0[1]))
    server_digit.first.wait_for(state="detached", timeout=TIMEOUT_MS)
    if new_explorer:
        remount(pg)
        assert stats(pg)["commits"] == 0 and server_digit.count() == 0
    pg.get_by_text("Cut the decoder's weights short").click()
    alert = pg.get_by_role("alert").filter(has_text="The decoder could not be prepared")
    alert.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert "bytes, expected" in alert.inner_text()
    server_digit.first.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert f"z = ({z0[0] + 0.01:.3f}, {z0[1]:.3f})" in server_digit.first.inner_text()
