"""The explorer in a real browser: `streamlit run app.py` + Playwright + system Chromium.

Waits for the scatter and the digit, moves a slider with the keyboard, clicks a point on
the scatter, and saves a screenshot (test-artifacts/screenshot.png; with
UPDATE_SCREENSHOT=1 also docs/screenshot.png, the README's picture).
Under CI=true this must run: a missing Chromium or Playwright fails (see conftest.py).
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest

from cvae import assets
from conftest import REPO

pytestmark = pytest.mark.skipif(not assets.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")

MAIN = '[data-testid="stMain"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CAPTION = f'{MAIN} [data-testid="stImageCaption"]'
SCATTER = f'{MAIN} [data-testid="stPlotlyChart"] .js-plotly-plot'
SLIDER_THUMB = f'{MAIN} [data-testid="stSlider"] input[type="range"]'

# Screen position of latent (x, y) on the scatter: Plotly's own axis mapping.
POINT_PX_JS = """([x, y]) => {
  const gds = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')];
  const gd = gds.find(g => g.data && g.data.some(t => t.name === 'current point'));
  const fl = gd._fullLayout, r = gd.getBoundingClientRect();
  return [r.left + fl.xaxis._offset + fl.xaxis.l2p(x), r.top + fl.yaxis._offset + fl.yaxis.l2p(y)];
}"""
DIGIT_SRC_JS = """() => { const caps = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImageCaption"]')];
  const c = caps.find(e => e.textContent.startsWith('decoded at z'));
  const img = c && c.closest('[data-testid="stImageContainer"], [data-testid="stImage"]')?.querySelector('img');
  return img ? img.currentSrc || img.src : null; }"""


def digit_caption(page) -> str:
    return page.locator(CAPTION, has_text="decoded at z").first.inner_text()


def caption_z(text: str) -> tuple[float, float]:
    m = re.search(r"z = \((-?[\d.]+), (-?[\d.]+)\)", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def wait_idle(page) -> None:
    page.wait_for_selector(IDLE, timeout=120_000)


def save_screenshot(page) -> None:
    from PIL import Image

    png = page.screenshot(full_page=False)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.LANCZOS)
    small = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    small.save(out / "screenshot.png", optimize=True)
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        small.save(REPO / "docs" / "screenshot.png", optimize=True)


def test_explore_in_chromium(app_server, page):
    page.goto(app_server.url)
    page.wait_for_selector(SCATTER + " .scatterlayer, " + SCATTER + " canvas", timeout=180_000)
    page.wait_for_selector(CAPTION, timeout=180_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    cap0, src0 = digit_caption(page), page.evaluate(DIGIT_SRC_JS)
    assert src0, "the decoded digit is not shown"
    assert caption_z(cap0) == (0.0, 0.0)
    # The digit is drawn at least 280 px wide and pixelated (served 280x280, no smoothing).
    box = page.locator(f"{MAIN} img[src='{src0}']").first.bounding_box()
    assert box["width"] >= 280

    # Keyboard: focus z1's thumb, press Right 10 times (step 0.01); released -> rerun.
    thumb = page.locator(SLIDER_THUMB).first
    thumb.focus(timeout=20_000)
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([src]) => { const f = " + DIGIT_SRC_JS + "; return f() && f() !== src; }",
                           arg=[src0], timeout=60_000)
    wait_idle(page)
    z = caption_z(digit_caption(page))
    assert z[0] == pytest.approx(0.10, abs=1e-6) and z[1] == 0.0

    # Click a digit far from the current point; the latent point jumps to its z_mean.
    enc = assets.read_encodings()
    zm = enc["z_mean"]
    far = np.linalg.norm(zm - np.array(z), axis=1) > 1.0
    # An isolated point (fewest neighbours within 0.05) so the click lands on it alone.
    cand = np.flatnonzero(far)[:2000]
    crowd = [(np.linalg.norm(zm - zm[i], axis=1) < 0.05).sum() for i in cand]
    target = int(cand[int(np.argmin(crowd))])
    x, y = page.evaluate(POINT_PX_JS, [float(zm[target, 0]), float(zm[target, 1])])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    heading = page.locator(f"{MAIN} h3", has_text="Selected: test digit #")
    heading.wait_for(timeout=60_000)
    wait_idle(page)
    idx = int(re.search(r"#(\d+)", heading.inner_text()).group(1))
    z_new = caption_z(digit_caption(page))
    assert z_new == pytest.approx((float(zm[idx, 0]), float(zm[idx, 1])), abs=1e-3)
    assert np.linalg.norm(np.array(z_new) - np.array(z)) > 0.5, "the latent point did not move"
    caps = page.locator(CAPTION).all_inner_texts()
    assert any(c.startswith(f"reconstruction at z_mean") for c in caps)
    assert any(c.startswith(f"original #{idx}") for c in caps)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.evaluate("window.scrollTo(0, 0)")
    save_screenshot(page)
