"""The static site in real Chromium, served by `python -m http.server` from a temporary folder
(and opened as a file), with every request outside that server aborted and counted: none may be
made. The decode equals PyTorch's; hover and slider drag repaint; press-drag-release moves the
point; a click selects a test digit (its original from MNIST beside its reconstruction); a link
opens at its point; the legend, zoom and the manifold work; and on a phone the digit stays in
view while a finger drags on the scatter, without scrolling the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cvae.core import latent
from cvae.core.data import load_mnist
from cvae.core.files import write_folder
from devkit import DATA_DIR, shipped_site, in_view, needs_data, serve_folder, touch

pytestmark = needs_data
TIMEOUT_MS = 60_000
READY = "() => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel && s.paints > 0 && s.scatter)"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    return write_folder(out, shipped_site(hooks=True))


@pytest.fixture(scope="module")
def served(site):
    proc, url = serve_folder(site)
    yield url
    proc.terminate()
    proc.wait(10)


class Visit:
    """A page in its own context; requests outside ``origin`` are aborted and kept."""

    def __init__(self, browser, origin: str, **ctx):
        self.ctx = browser.new_context(**({"viewport": {"width": 1280, "height": 900}} | ctx))
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.ctx.route("**/*", self.route)
        self.origin = origin
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: None if r.url.startswith((origin, "data:", "blob:")) else self.outside.append(r.url))
        # A Content-Security-Policy violation is an error too.
        self.page.add_init_script("document.addEventListener('securitypolicyviolation', e =>"
                                  " console.error('CSP: ' + e.violatedDirective + ' ' + e.blockedURI))")

    def route(self, route):
        url = route.request.url
        if url.startswith(self.origin):
            return route.continue_()
        self.outside.append(url)
        route.abort()

    def open(self, path="/index.html"):
        self.page.goto(self.origin + path)
        self.page.wait_for_function(READY)
        return self.page

    def close(self):
        assert self.outside == [], self.outside
        assert self.errors == [], self.errors
        self.ctx.close()


def stats(pg) -> dict:
    return pg.evaluate("cvaeExplorer.stats()[0]")


def digit(pg) -> np.ndarray:
    rgba = pg.locator("canvas.digit").evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)")
    return np.array(rgba, np.int16).reshape(28, 28, 4)[..., 0]


def pytorch(model, z) -> np.ndarray:
    return np.rint(latent.decode_points(model, np.array([z], np.float32))[0] * 255)


def test_the_page_decodes_as_pytorch_and_follows_the_mouse(browser, served, model):
    v = Visit(browser, served)
    pg = v.open("/index.html?z1=0.75&z2=-1.25")
    # A link opens at its point, and the canvas shows PyTorch's decode of it.
    assert stats(pg)["committed"] == [0.75, -1.25]
    assert np.abs(digit(pg) - pytorch(model, [0.75, -1.25])).max() <= 1
    assert "134,165 parameters · test loss 147.74" in pg.locator("#model").inner_text()

    # Hover: each move repaints the digit at the latent point under the cursor, no commit. (Pointer
    # events carry float32 coordinates: a latent point read back differs by ~2e-7.)
    x0, y0 = pg.evaluate("cvaeExplorer.scatterPx(-0.5, 0.5)")
    paints = stats(pg)["paints"]
    pg.mouse.move(x0, y0)
    for k in range(1, 21):
        pg.mouse.move(x0 + 6 * k, y0 + 2 * k)
        pg.wait_for_function(f"() => cvaeExplorer.stats()[0].paints >= {paints + k}")
    s = stats(pg)
    assert s["commits"] == 0 and s["live"]["source"] == "hover"
    want = pg.evaluate(f"cvaeExplorer.scatterLatent({x0 + 120}, {y0 + 40})")
    assert s["live"]["z"] == pytest.approx(want, abs=1e-6)
    assert np.abs(digit(pg) - pytorch(model, want)).max() <= 1

    # Press, drag, release: the point moves to where the button came up, and the URL keeps it.
    pg.mouse.down()
    pg.mouse.move(x0 + 40, y0 - 60, steps=8)
    assert stats(pg)["live"]["source"] == "drag" and stats(pg)["commits"] == 0
    pg.mouse.up()
    end = pg.evaluate(f"cvaeExplorer.scatterLatent({x0 + 40}, {y0 - 60})")
    pg.wait_for_function("() => cvaeExplorer.stats()[0].commits === 1")
    assert stats(pg)["committed"] == pytest.approx(end, abs=1e-6)
    pg.wait_for_function("([a, b]) => { const q = new URLSearchParams(location.search);"
                         " return q.get('z1') === a && q.get('z2') === b; }", arg=[f"{end[0]:.3f}", f"{end[1]:.3f}"])
    assert np.abs(digit(pg) - pytorch(model, end)).max() <= 1

    # A slider dragged with the mouse repaints while the thumb moves, and commits on release.
    pg.mouse.move(5, 5)
    box = pg.get_by_role("slider", name="z1", exact=True).bounding_box()
    paints, commits = stats(pg)["paints"], stats(pg)["commits"]
    y = box["y"] + box["height"] / 2
    pg.mouse.move(box["x"] + 5, y)
    pg.mouse.down()
    for k in range(1, 11):
        pg.mouse.move(box["x"] + 5 + 12 * k, y)
        pg.wait_for_function(f"() => cvaeExplorer.stats()[0].paints > {paints}")
        paints = stats(pg)["paints"]
    assert stats(pg)["commits"] == commits
    pg.mouse.up()
    pg.wait_for_function(f"() => cvaeExplorer.stats()[0].commits === {commits + 1}")
    z = stats(pg)["committed"]
    assert np.abs(digit(pg) - pytorch(model, z)).max() <= 1
    v.close()


def test_a_click_selects_a_test_digit_beside_its_reconstruction(browser, served, model, enc):
    v = Visit(browser, served)
    pg = v.open()
    zm = enc["z_mean"]
    crowd = [(np.linalg.norm(zm - zm[i], axis=1) < 0.08).sum() for i in range(2000)]
    target = int(np.argmin(crowd))  # an isolated digit: the click lands on it alone
    x, y = pg.evaluate("([a, b]) => cvaeExplorer.scatterPx(a, b)", [float(zm[target, 0]), float(zm[target, 1])])
    pg.mouse.click(x + 1, y)
    pg.locator("#selection-title").filter(has_text=f"#{target},").wait_for()
    assert stats(pg)["committed"] == pytest.approx(zm[target], abs=2e-4)  # the points travel quantised
    orig = np.array(pg.locator("#original").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"), np.int16).reshape(28, 28, 4)[..., 0]
    images, _ = load_mnist("test", DATA_DIR, download=False)
    assert np.abs(orig - images[target, 0].numpy() * 255).max() <= 8  # the nearest of 16 grey levels
    assert f"original #{target} (label {enc['label'][target]})" in pg.locator("#original-caption").inner_text()
    recon = np.array(pg.locator("#reconstruction").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"), np.int16).reshape(28, 28, 4)[..., 0]
    assert np.abs(recon - pytorch(model, stats(pg)["committed"])).max() <= 1
    # Its loss, precomputed at `site` time, and its standing among the test digits.
    from cvae.core.explain import harder_than, test_set_terms

    r, k = test_set_terms(model, images)
    r, k = np.rint(r / 0.05) * 0.05, np.rint(k / 0.1) * 0.1  # as data.js stores them (cvae.site.LOSS_STEPS)
    want = (f"784·BCE {r[target]:.1f} + KL {k[target]:.1f} = −ELBO {r[target] + k[target]:.1f} nats: harder than "
            f"{harder_than(r[target] + k[target], r + k):.0f}% of test digits.")
    assert pg.locator("#loss-text").inner_text() == want
    # the live region said where the point went, in words
    assert pg.locator(".cvae-explorer .said").inner_text().startswith(
        f"z = ({stats(pg)['committed'][0]:.2f}".replace("(-", "(−"))
    pg.get_by_role("button", name="Clear selection").click()
    assert pg.locator("#selection").is_hidden()
    v.close()


def test_legend_zoom_and_the_manifold(browser, served, model):
    v = Visit(browser, served)
    pg = v.open()
    def inked() -> int:
        """Pixels of the points' canvas that are not white (every digit's marks, whatever their shape)."""
        return pg.evaluate("""() => { const c = document.querySelector('canvas.points');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i+3] > 0 && (d[i] < 250 || d[i+1] < 250 || d[i+2] < 250)) n++;
            return n; }""")

    every = inked()
    assert every > 1000
    pg.locator(".legend button", has_text="7").click()
    assert pg.locator(".legend button", has_text="7").get_attribute("aria-pressed") == "false"
    without_7 = inked()
    assert 0.8 * every < without_7 < every - 100  # about a tenth of the marks gone
    pg.locator(".legend button", has_text="7").click()
    assert inked() == every  # the same drawing again
    pg.locator(".legend button", has_text="3").dblclick()  # only the 3s
    only_3 = inked()
    assert 100 < only_3 < 0.5 * every  # 36% measured: the 3s are no longer hidden under the others
    pg.locator(".legend button", has_text="3").dblclick()  # all again
    assert inked() == every

    # The wheel zooms about the cursor: the latent point under it stays under it.
    x, y = pg.evaluate("cvaeExplorer.scatterPx(1.0, -1.0)")
    pg.mouse.move(x, y)
    before = pg.evaluate("cvaeExplorer.scatterPx(2.0, 0.0)")
    pg.mouse.wheel(0, -400)
    pg.wait_for_function(f"() => cvaeExplorer.scatterPx(2.0, 0.0)[0] > {before[0] + 20}")
    assert pg.evaluate(f"cvaeExplorer.scatterLatent({x}, {y})") == pytest.approx([1.0, -1.0], abs=0.01)
    pg.mouse.dblclick(x, y)  # back to the whole plane
    pg.wait_for_function(f"() => Math.abs(cvaeExplorer.scatterPx(2.0, 0.0)[0] - {before[0]}) < 0.5")

    # The manifold tab: the tutorial's grid decoded in the browser, as PyTorch decodes it.
    pg.get_by_role("tab", name="Manifold").click()
    pg.wait_for_function("() => cvaeExplorer.stats()[0].manifoldDraws > 0")
    grid = latent.to_uint8(latent.decode_grid(model)).astype(np.int16)
    pg.wait_for_function("""() => { const c = document.querySelector('canvas.image');
        const d = c.getContext('2d').getImageData(0, c.height - 28, 28, 28).data;
        return d[3] === 255; }""")  # the last row is drawn
    got = np.array(pg.locator("canvas.image").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"), np.int16)
    got = got.reshape(grid.shape[0], grid.shape[1], 4)[..., 0]
    assert np.abs(got - grid).max() <= 1
    # The ring is where cvae.core.latent.grid_pixel puts the point.
    z = stats(pg)["committed"]
    px = latent.grid_pixel(*z, 15, latent.GRID_Z1, latent.GRID_Z2)
    box = pg.locator("canvas.image").bounding_box()
    k = box["width"] / (15 * 28)
    assert pg.evaluate("cvaeExplorer.manifoldRing()") == pytest.approx([box["x"] + px[0] * k, box["y"] + px[1] * k],
                                                                       abs=0.5)
    v.close()


def test_opened_as_a_file(browser, site, model):
    v = Visit(browser, site.as_uri())
    pg = v.open("/index.html?z1=-0.5&z2=1.5")
    assert stats(pg)["committed"] == [-0.5, 1.5]
    assert np.abs(digit(pg) - pytorch(model, [-0.5, 1.5])).max() <= 1
    v.close()


def test_a_phone_drags_on_the_scatter_with_the_digit_in_view(browser, served, model):
    v = Visit(browser, served, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
              device_scale_factor=2)
    pg = v.open()
    # The legend is one or two short rows above the scatter, not a column beside it.
    legend, plot = pg.locator(".legend").bounding_box(), pg.locator(".plot").bounding_box()
    assert legend["y"] + legend["height"] <= plot["y"] + 1 and legend["height"] < 80
    # As the page opens, the digit is below the scatter, mostly out of view.
    d = pg.locator("canvas.digit").bounding_box()
    assert 844 - d["y"] < 0.5 * d["height"]
    scroll = pg.evaluate("window.scrollY")
    cdp = v.ctx.new_cdp_session(pg)
    x, y = pg.evaluate("cvaeExplorer.scatterPx(0, 0)")
    path = [(x + 4 * k, y - 3 * k) for k in range(15)]
    touch(cdp, path)
    want = pg.evaluate(f"cvaeExplorer.scatterLatent({path[-1][0]}, {path[-1][1]})")
    pg.wait_for_function("(w) => { const s = cvaeExplorer.stats()[0]; return s.live && s.live.source === 'drag'"
                         " && Math.abs(s.live.z[0] - w[0]) < 1e-6 && Math.abs(s.live.z[1] - w[1]) < 1e-6; }", arg=want)
    s = stats(pg)
    assert s["commits"] == 0 and s["float"], s
    # The digit's copy floats inside the screen and shows the point under the finger.
    box = pg.locator("canvas.float").bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
    floated = np.array(pg.locator("canvas.float").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"), np.int16).reshape(28, 28, 4)[..., 0]
    assert np.abs(floated - pytorch(model, want)).max() <= 1
    touch(cdp, end=True)
    pg.wait_for_function("() => cvaeExplorer.stats()[0].commits === 1")
    assert stats(pg)["committed"] == pytest.approx(want, abs=1e-6)
    assert pg.evaluate("window.scrollY") == scroll  # the finger moved the point, not the page
    assert not stats(pg)["float"]

    # A finger on the pad, scrolled to the bottom of the screen: the digit (or its copy) is in view.
    pg.locator("canvas.pad").evaluate("e => e.scrollIntoView({block: 'end'})")
    scroll = pg.evaluate("window.scrollY")
    p = pg.locator("canvas.pad").bounding_box()
    cx, cy = p["x"] + p["width"] / 2, p["y"] + p["height"] / 2
    touch(cdp, [(cx + 3 * k, cy + 2 * k) for k in range(10)])
    pg.wait_for_function("() => { const s = cvaeExplorer.stats()[0]; return s.live && s.live.source === 'pad'; }")
    d = pg.locator("canvas.digit").bounding_box()
    if in_view(d, 844) < 0.6:
        box = pg.locator("canvas.float").bounding_box()
        assert stats(pg)["float"] and box["y"] >= 0 and box["y"] + box["height"] <= 844
    touch(cdp, end=True)
    pg.wait_for_function("() => cvaeExplorer.stats()[0].commits === 2")
    assert pg.evaluate("window.scrollY") == scroll and not stats(pg)["float"]
    v.close()
