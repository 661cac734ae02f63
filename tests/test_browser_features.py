"""The feature panels in real Chromium, on the real app: draw a digit with the mouse and see
its star on the scatter, play the morph, download PNG/GIF/CSV files and check them.

Runs ``streamlit run app.py`` on a free port with the shipped model (conftest's app_server and
browser fixtures). Needs /usr/bin/chromium; under CI=true it never skips. Screenshots go to
test-artifacts/; with CVAE_UPDATE_DOCS=1 the README's feature screenshots in docs/ are
rewritten too.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvae import load_checkpoint
from cvae.core.shipped import SHIPPED_CHECKPOINT
from cvae.draw.sketch import preprocess_drawing
from cvae.core.latent import encode_dataset
from cvae.draw.overlays import STAR_NAME
from devkit import REPO

TIMEOUT_MS = 90_000
ARTIFACTS = REPO / "test-artifacts"
DOCS = REPO / "docs"

# A "7" in canvas fractions: the top bar, then the diagonal down.
SEVEN = [(0.22, 0.2), (0.78, 0.2), (0.45, 0.85)]


@pytest.fixture
def page(browser, app_server):
    """app.py (conftest's app_server: shipped model, MNIST from $CVAE_DATA) in a fresh page,
    with the scatter and the drawing pad ready; fails on any uncaught page error."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(app_server.url)
    wait_ready(pg)  # the scatter and the browser's decoder are there
    pg.locator("canvas.ink").wait_for(timeout=TIMEOUT_MS)
    yield pg
    ctx.close()
    assert not errors, errors


def scatter_traces(pg) -> dict:
    """{name: {"x": [...], "y": [...]}} of the feature layers the browser draws over the scatter."""
    return pg.evaluate("cvaeExplorer.overlays()")


def scatter_chart(pg):
    """The latent scatter's Streamlit element."""
    return pg.locator(".st-key-scatter")


def wait_for_trace(pg, name: str, present: bool = True) -> None:
    pg.wait_for_function("([name, present]) => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel)"
                         " && (name in cvaeExplorer.overlays()) === present", arg=[name, present], timeout=TIMEOUT_MS)


def wait_ready(pg) -> None:
    pg.wait_for_function("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
                         "s => s.hasModel && s.paints > 0 && s.scatter)", timeout=TIMEOUT_MS)


def draw(pg, points, steps: int = 12) -> np.ndarray:
    """Draw one stroke through ``points`` (canvas fractions) with the real mouse; returns the
    same stroke as the pad's pixels read back from the canvas."""
    canvas = pg.locator("canvas.ink")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    pg.mouse.move(*xy[0])
    pg.mouse.down()
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        for k in range(1, steps + 1):
            pg.mouse.move(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
    pg.mouse.up()
    rgba = canvas.evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)")
    side = int(round(len(rgba) / 4) ** 0.5)
    return np.array(rgba, np.uint8).reshape(side, side, 4)


def shot(pg, locator, name: str) -> None:
    """A small PNG of one part of the page (test-artifacts/, and docs/ on request)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    pg.mouse.move(0, 0)  # no hover tooltip in the picture
    locator.screenshot(path=str(path), animations="disabled")
    img = Image.open(path).convert("RGB")
    img.thumbnail((900, 900))
    img = img.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    img.save(path, optimize=True)
    if os.environ.get("CVAE_UPDATE_DOCS") == "1":
        DOCS.mkdir(exist_ok=True)
        img.save(DOCS / name, optimize=True)


def download(pg, label: str) -> bytes:
    with pg.expect_download(timeout=TIMEOUT_MS) as info:
        pg.get_by_role("button", name=label).click()
    path = info.value.path()
    return Path(path).read_bytes()


def decoder_z(pg) -> tuple[float, float]:
    """The committed point, as the browser's explorer holds it."""
    return tuple(pg.evaluate("cvaeExplorer.stats()[0].committed"))


def test_draw_a_digit_star_and_explore(page):
    pg = page
    assert STAR_NAME not in scatter_traces(pg)
    pixels = draw(pg, SEVEN)
    wait_for_trace(pg, STAR_NAME)
    star = scatter_traces(pg)[STAR_NAME]
    # The star sits where the model encodes the drawing (as the pad drew it, preprocessed here).
    model = load_checkpoint(SHIPPED_CHECKPOINT)
    want = encode_dataset(model, preprocess_drawing(pixels)[None])[0][0]
    np.testing.assert_allclose([star["x"][0], star["y"][0]], want, atol=1e-3)
    # It is drawn over the scatter, where the browser puts that latent point.
    pg.wait_for_function("() => cvaeExplorer.stats()[0].scatterDraws > 0")
    pg.get_by_text("as the model sees it (28x28)").wait_for(timeout=TIMEOUT_MS)
    pg.get_by_text("Nearest test digits in latent space").wait_for(timeout=TIMEOUT_MS)
    pg.get_by_text("as the model sees it (28x28)").scroll_into_view_if_needed()
    shot(pg, pg.locator("[data-testid='stTabs']").first, "feature-draw.png")
    scatter = scatter_chart(pg)
    scatter.scroll_into_view_if_needed()
    shot(pg, scatter, "feature-star.png")
    pg.get_by_role("button", name="Explore from here").click()
    pg.wait_for_function("""([a, b]) => { const z = cvaeExplorer.stats()[0].committed;
        return Math.abs(z[0] - a) < 2e-3 && Math.abs(z[1] - b) < 2e-3; }""",
                         arg=[float(want[0]), float(want[1])], timeout=TIMEOUT_MS)
    assert decoder_z(pg) == pytest.approx(tuple(want), abs=2e-3)
    # A second stroke moves the star; Undo takes it back to where the 7 is.
    draw(pg, [(0.2, 0.95), (0.8, 0.95)])
    pg.wait_for_function("""([name, x]) => {
        const t = cvaeExplorer.overlays()[name];
        return !!t && Math.abs(t.x[0] - x) > 1e-4;
    }""", arg=[STAR_NAME, float(want[0])], timeout=TIMEOUT_MS)
    pg.locator(".cvae-draw button.undo").click()
    pg.wait_for_function("""([name, x]) => {
        const t = cvaeExplorer.overlays()[name];
        return !!t && Math.abs(t.x[0] - x) < 1e-3;
    }""", arg=[STAR_NAME, float(want[0])], timeout=TIMEOUT_MS)
    # Clear: the star goes away.
    pg.locator(".cvae-draw button.clear").click()
    wait_for_trace(pg, STAR_NAME, present=False)


def test_morph_plays_and_downloads(page):
    pg = page
    pg.get_by_role("tab", name=re.compile("Morph")).click()
    wait_for_trace(pg, "morph path")
    path = scatter_traces(pg)["morph path"]
    assert len(path["x"]) == 12
    pg.get_by_text("Play animation").click()
    gif_img = pg.locator("img[src*='.gif']").first
    gif_img.wait_for(timeout=TIMEOUT_MS)
    # The page's animation is an animated GIF of the morph, playing forward and back.
    src = gif_img.get_attribute("src")
    body = pg.request.get(src if src.startswith("http") else pg.url.rstrip("/") + "/" + src.lstrip("/")).body()
    assert body[:6] == b"GIF89a"
    with Image.open(io.BytesIO(body)) as im:
        assert im.is_animated and im.n_frames == 12 + 10
    pg.wait_for_function("img => img.complete && img.naturalWidth === 112", arg=gif_img.element_handle(),
                         timeout=TIMEOUT_MS)
    shot(pg, pg.locator("[data-testid='stTabs']").first, "feature-morph.png")
    data = download(pg, "Download animation (GIF)")
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "GIF" and im.n_frames == 22
    data = download(pg, "Download strip (PNG)")
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.size == (3 * (12 * 28 + 11 * 2), 3 * 28)


def test_downloads_and_uncertainty(page):
    pg = page
    pg.get_by_role("tab", name=re.compile("Downloads")).click()
    data = download(pg, "Current digit (PNG)")
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.size == (280, 280)
    data = download(pg, "Manifold grid (PNG)")
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.size == (2 * 15 * 28, 2 * 15 * 28)
    rows = list(csv.reader(io.StringIO(download(pg, "Encodings (CSV)").decode("utf-8"))))
    assert rows[0][:4] == ["index", "label", "z1", "z2"] and len(rows) == 10_001
    # Uncertainty of a drawing: the ellipses appear on the scatter.
    pg.get_by_role("tab", name=re.compile("Draw")).click()
    draw(pg, [(0.5, 0.15), (0.5, 0.9)])
    wait_for_trace(pg, STAR_NAME)
    pg.get_by_role("tab", name=re.compile("Uncertainty")).click()
    pg.locator("[data-testid='stRadio']").get_by_text("Your drawing", exact=True).click()
    wait_for_trace(pg, "your drawing 2σ (86%)")
    pg.get_by_text(re.compile("decoded samples from q")).wait_for(timeout=TIMEOUT_MS)
    shot(pg, pg.locator("[data-testid='stTabs']").first, "feature-uncertainty.png")
    scatter = scatter_chart(pg)
    scatter.scroll_into_view_if_needed()
    shot(pg, scatter, "feature-posterior.png")
