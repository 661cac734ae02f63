"""Two models under one cursor, in real Chromium (tests/apps/explorer_harness.py on the shipped
model, a second model with random decoder weights in the runs folder): off by default; picked,
a second canvas decodes the same point in the browser at every move of a drag (each canvas
PyTorch's decode of its own model, the two different), with nothing sent to the server until
the release; and a clicked test digit is ringed where each model encodes it (the second
model's encodings computed here with PyTorch), and nowhere else, whichever scatter it was
clicked on."""

from __future__ import annotations

import numpy as np
import pytest

from cvae import decode_points, encode_dataset, save_checkpoint
from cvae.core.data import load_mnist
from cvae.core.shipped import SHIPPED_ENCODINGS
from cvae.core.encodings import read_encodings
from devkit import DATA_DIR, needs_data, random_model, start_server
from test_browser_axe import IDLE, axe_source, findings  # noqa: F401 (axe_source: the fixture, used by name)
from test_browser_explorer import TIMEOUT_MS, Wire

pytestmark = needs_data
OTHER = "Trained here: other.pt"
BLUE = (0, 114, 178)  # cvae/web/views.js SELECTED_RING


@pytest.fixture(scope="module")
def other():
    return random_model(seed=3)


@pytest.fixture(scope="module")
def harness(other, tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    (d / "runs").mkdir()
    save_checkpoint(other, d / "runs" / "other.pt")
    server = start_server("tests/apps/explorer_harness.py",
                          {"CVAE_RUNS": str(d / "runs"), "CVAE_DATA": str(DATA_DIR), "CVAE_TEST_HOOKS": "1"},
                          log=d / "streamlit.log")
    yield server.url
    server.stop()


def stats(pg) -> dict:
    (s,) = pg.evaluate("cvaeExplorer.stats()")
    return s


def pixels(pg, selector: str) -> np.ndarray:
    rgba = pg.locator(selector).evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)")
    return np.array(rgba, np.int16).reshape(28, 28, 4)[..., 0]


def decoded(model, z) -> np.ndarray:
    return np.clip(np.rint(decode_points(model, np.asarray([z], np.float32))[0] * 255), 0, 255).astype(np.int16)


# The blue pixels of a scatter's overlay canvas, as distances (CSS px) from a client point.
BLUE_AROUND_JS = """([key, cx, cy, blue]) => {
    const c = document.querySelector(`.st-key-${key} canvas.cvae-overlay`), r = c.getBoundingClientRect();
    const k = c.width / r.width, d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - blue[0]) > 12 || Math.abs(d[i + 1] - blue[1]) > 12 || Math.abs(d[i + 2] - blue[2]) > 12) continue;
      const px = (i / 4) % c.width, py = Math.floor(i / 4 / c.width);
      out.push(Math.hypot(r.left + px / k - cx, r.top + py / k - cy));
    }
    return out; }"""


def blue_distances(pg, key: str, client) -> np.ndarray:
    return np.array(pg.evaluate(BLUE_AROUND_JS, [key, client[0], client[1], list(BLUE)]))


def on_screen(pg, key: str, z) -> list[float]:
    """Client coordinates of latent point z on a scatter ("scatter" or "scatter2"), scrolled into view."""
    pg.locator(f".st-key-{key}").scroll_into_view_if_needed()
    hook = "scatterPx" if key == "scatter" else "scatter2Px"
    return pg.evaluate(f"([x, y]) => cvaeExplorer.{hook}(x, y)", [float(z[0]), float(z[1])])


def isolated_digit(z: np.ndarray) -> int:
    """A test digit far from every other (so Plotly's hover picks it alone), inside the central box."""
    inner = np.flatnonzero((np.abs(z) < 2.0).all(axis=1))
    pts = z[inner].astype(np.float64)
    near = np.full(len(pts), np.inf)
    for s in range(0, len(pts), 500):
        d = np.hypot(*(pts[s:s + 500, None, :] - z[None, :, :]).transpose(2, 0, 1))
        d[d == 0] = np.inf
        near[s:s + 500] = d.min(axis=1)
    return int(inner[np.argmax(near)])


def click_digit(pg, key: str, z) -> None:
    """Move onto a test digit of a scatter until Plotly's own hover reports it, and click."""
    at = on_screen(pg, key, z)
    pg.evaluate("""(key) => { const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
        window.__hovered = null; gd.on('plotly_hover', (ev) => { window.__hovered = [ev.points[0].x, ev.points[0].y]; }); }""",
                key)
    pg.mouse.move(at[0] - 25, at[1] + 25)
    pg.mouse.move(*at, steps=5)
    pg.wait_for_function("([x, y]) => window.__hovered && Math.abs(window.__hovered[0] - x) < 1e-6"
                         " && Math.abs(window.__hovered[1] - y) < 1e-6", arg=[float(z[0]), float(z[1])])
    pg.mouse.down()
    pg.mouse.up()


def open_compared(browser, url):
    """A page of the harness, its explorer ready: (context, page, what it sent, its errors)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    wire = Wire(pg)
    pg.goto(url)
    pg.wait_for_function("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel && s.paints > 0"
                         " && s.scatter)")
    return ctx, pg, wire, errors


def pick_second(pg) -> None:
    pg.get_by_role("combobox", name="Compare with a second model").click()
    pg.get_by_role("option", name=OTHER).click()
    pg.wait_for_function("() => { const s = cvaeExplorer.stats()[0]; return s.hasModel2 && s.scatter2 && s.paints2 > 0; }")


def test_a_second_model_decodes_the_same_point_and_rings_a_clicked_digit_in_both(browser, harness, model, other):
    ctx, pg, wire, errors = open_compared(browser, harness)
    # Off by default: no second canvas, no second scatter.
    s = stats(pg)
    assert s["compare"] is None and not s["hasModel2"] and s["paints2"] == 0
    assert not pg.locator("canvas.digit2").is_visible()
    assert pg.locator(".st-key-scatter2").count() == 0

    pick_second(pg)
    assert stats(pg)["compare"] == OTHER
    assert pg.locator("canvas.digit2").is_visible()

    # A drag on the first scatter: at every move both canvases show their model's decode of the live z.
    a, b = (-1.5, -1.0), (1.0, 1.5)
    pa, pb = on_screen(pg, "scatter", a), on_screen(pg, "scatter", b)
    pg.mouse.move(*pa)
    pg.mouse.down()
    sent, paints2 = len(wire.sent), stats(pg)["paints2"]
    for k in range(1, 5):
        pg.mouse.move(pa[0] + (pb[0] - pa[0]) * k / 4, pa[1] + (pb[1] - pa[1]) * k / 4)
        s = stats(pg)
        assert s["live"]["source"] == "drag" and s["paints2"] > paints2, "the second canvas did not follow"
        paints2 = s["paints2"]
        z = s["live"]["z"]
        assert s["shown2"] == z
        one, two = pixels(pg, "canvas.digit"), pixels(pg, "canvas.digit2")
        assert np.abs(one - decoded(model, z)).max() <= 1
        assert np.abs(two - decoded(other, z)).max() <= 1
        assert np.abs(one - two).max() > 50, "the two models decoded the same digit"
    assert len(wire.sent) == sent, "the drag sent something before the release"
    pg.mouse.up()
    pg.wait_for_function("() => cvaeExplorer.stats()[0].commits >= 1")

    # Hovering the second scatter (in the middle of its own encodings) previews there.
    z_a = read_encodings(SHIPPED_ENCODINGS)["z_mean"]
    images, _ = load_mnist("test", DATA_DIR, download=False)
    z_b, _ = encode_dataset(other, images)
    target = np.median(z_b, axis=0)
    per_px = np.ptp(z_b, axis=0).max() / 200  # the plot is some 500 px wide
    pg.mouse.move(*on_screen(pg, "scatter2", target))
    s = stats(pg)
    assert s["live"]["source"] == "hover" and np.allclose(s["live"]["z"], target, atol=2 * per_px), (s["live"], target)
    assert np.abs(pixels(pg, "canvas.digit") - decoded(model, s["live"]["z"])).max() <= 1
    assert np.abs(pixels(pg, "canvas.digit2") - decoded(other, s["live"]["z"])).max() <= 1

    # A click on a test digit of either scatter rings it in both, where each model encodes it.
    i, j = isolated_digit(z_a), isolated_digit(z_b)
    pg.mouse.move(5, 5)
    for key, z in (("scatter", z_a[i]), ("scatter2", z_b[i]), ("scatter", z_a[j]), ("scatter2", z_b[j])):
        assert len(blue_distances(pg, key, on_screen(pg, key, z))) == 0  # nothing selected yet
    for key, k in (("scatter", i), ("scatter2", j)):
        click_digit(pg, key, (z_a if key == "scatter" else z_b)[k])
        pg.wait_for_function(f"() => cvaeExplorer.stats()[0].selected === {k}")
        pg.mouse.move(5, 5)  # off the scatters: no hover marks
        for where, z in (("scatter", z_a[k]), ("scatter2", z_b[k])):
            at = on_screen(pg, where, z)
            pg.wait_for_function(f"(a) => ({BLUE_AROUND_JS})(a).length > 40", arg=[where, at[0], at[1], list(BLUE)])
            d = blue_distances(pg, where, at)
            assert d.max() < 18 and np.median(d) == pytest.approx(15, abs=1.5), (key, where, d.min(), d.max())
    ctx.close()
    assert not errors, errors


def test_the_two_models_view_has_no_serious_accessibility_finding(browser, harness, axe_source):  # noqa: F811
    ctx, pg, _, _ = open_compared(browser, harness)
    try:
        pick_second(pg)
        pg.wait_for_selector(IDLE)
        bad = findings(pg, axe_source)
        assert not bad, bad
    finally:
        ctx.close()
