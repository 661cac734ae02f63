"""The static site's keyboard pad and its link, in real Chromium over `python -m http.server`:
each arrow key moves the point by its share of the latent bounds (2%, Shift 10%), up is +z2,
the point stops at the bounds, holding a key previews and releasing it commits; the digit is
PyTorch's decode of the point; and the link the page offers, opened in a new page, opens at
that point (to the link's 3 decimals)."""

from __future__ import annotations

import numpy as np
import pytest

from cvae.core import latent
from cvae.core.files import write_folder
from devkit import shipped_site, needs_data, serve_folder

pytestmark = [needs_data, pytest.mark.browser]
READY = "() => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel && s.paints > 0 && s.scatter)"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    site = write_folder(tmp_path_factory.mktemp("site") / "site", shipped_site(hooks=True))
    proc, url = serve_folder(site)
    yield url
    proc.terminate()
    proc.wait(10)


def open_page(browser, url):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_function(READY)
    return ctx, pg, errors


def stats(pg) -> dict:
    return pg.evaluate("cvaeExplorer.stats()[0]")


def digit(pg) -> np.ndarray:
    rgba = pg.locator("canvas.digit").evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)")
    return np.array(rgba, np.int16).reshape(28, 28, 4)[..., 0]


def decoded(model, z) -> np.ndarray:
    return np.rint(latent.decode_points(model, np.array([z], np.float32))[0] * 255)


def committed_after(pg, n: int) -> list[float]:
    pg.wait_for_function(f"() => cvaeExplorer.stats()[0].commits === {n}")
    return stats(pg)["committed"]


def test_the_pads_arrow_keys_move_the_point_by_a_share_of_the_bounds(browser, served, model):
    ctx, pg, errors = open_page(browser, served + "/index.html?z1=0.5&z2=-0.5")
    a, b, c, d = pg.evaluate("globalThis.CVAE_SITE.bounds")
    pad = pg.locator("canvas.pad")
    pad.focus()
    z = [0.5, -0.5]
    moves = [("ArrowRight", (0.02 * (b - a), 0)), ("ArrowUp", (0, 0.02 * (d - c))), ("ArrowLeft", (-0.02 * (b - a), 0)),
             ("ArrowLeft", (-0.02 * (b - a), 0)), ("ArrowDown", (0, -0.02 * (d - c))),
             ("Shift+ArrowDown", (0, -0.1 * (d - c))), ("Shift+ArrowRight", (0.1 * (b - a), 0))]
    for n, (key, (dz1, dz2)) in enumerate(moves, start=1):
        pad.press(key)
        z = [z[0] + dz1, z[1] + dz2]
        assert committed_after(pg, n) == pytest.approx(z, abs=1e-9), key
    assert np.abs(digit(pg) - decoded(model, z)).max() <= 1
    # Held down: the point moves (a preview) and is committed only when the key comes up.
    n = len(moves)
    pg.keyboard.down("ArrowUp")
    pg.wait_for_function("() => { const s = cvaeExplorer.stats()[0]; return s.live && s.live.source === 'key'; }")
    assert stats(pg)["commits"] == n
    pg.keyboard.up("ArrowUp")
    z = [z[0], z[1] + 0.02 * (d - c)]
    assert committed_after(pg, n + 1) == pytest.approx(z, abs=1e-9)
    # The point stops at the bounds.
    for _k in range(12):
        pad.press("Shift+ArrowRight")
    for _k in range(12):
        pad.press("Shift+ArrowDown")
    assert committed_after(pg, n + 25) == pytest.approx([b, c], abs=1e-9)
    assert np.abs(digit(pg) - decoded(model, [b, c])).max() <= 1
    # Keys that are not arrows do nothing.
    pad.press("a")
    pad.press("Enter")
    assert stats(pg)["commits"] == n + 25
    assert errors == []
    ctx.close()


def test_the_link_the_page_offers_opens_at_its_point(browser, served, model):
    ctx, pg, errors = open_page(browser, served + "/index.html")
    pad = pg.locator("canvas.pad")
    pad.focus()
    for key in ("Shift+ArrowRight", "Shift+ArrowUp", "ArrowUp", "ArrowLeft"):
        pad.press(key)
    z = committed_after(pg, 4)
    want = [round(v, 3) for v in z]
    link = pg.locator("#link")
    pg.wait_for_function("(w) => document.getElementById('link').textContent.includes(w)",
                         arg=f"({want[0]:.3f}, {want[1]:.3f})")
    href = link.get_attribute("href")
    assert href.startswith(served + "/index.html?")
    other, page2, errors2 = open_page(browser, href)
    got = stats(page2)["committed"]
    assert got == pytest.approx(want, abs=1e-12) and got != pytest.approx([0, 0], abs=1e-3)
    assert np.abs(digit(page2) - decoded(model, want)).max() <= 1
    assert errors == [] and errors2 == []
    other.close()
    ctx.close()
