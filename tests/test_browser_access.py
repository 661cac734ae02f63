"""For every reader, in real Chromium (app.py): after each committed move a live region says
where the point is and what the decoder shows there (the labels of the 50 test digits encoded
nearest, counted here in NumPy from the shipped encodings); the keyboard reaches the controls
and shows where it is."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from playwright.sync_api import expect

from cvae.core import shipped

pytestmark = pytest.mark.skipif(not shipped.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")

READY_JS = ("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
            "s => s.hasModel && s.paints > 0 && s.scatter)")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def said_here(z) -> str:
    """The sentence for point z, from the shipped encodings (ties: the lower index first)."""
    enc = shipped.shipped_encodings()
    d = ((enc["z_mean"].astype(np.float64) - np.asarray(z)) ** 2).sum(1)
    near = np.lexsort((np.arange(len(d)), d))[:50]
    (a, na), (b, nb) = sorted(Counter(enc["label"][near].tolist()).items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    fmt = lambda v: f"−{abs(v):.2f}" if v < 0 and f"{abs(v):.2f}" != "0.00" else f"{abs(v):.2f}"  # noqa: E731
    part = lambda n, dg: f"1 is {'an' if dg == 8 else 'a'} {dg}" if n == 1 else f"{n} are {dg}s"  # noqa: E731
    return f"z = ({fmt(z[0])}, {fmt(z[1])}): of the 50 nearest test digits, {part(na, a)} and {part(nb, b)}"


def test_a_live_region_says_each_committed_point_in_words(app_server, page):
    page.goto(app_server.url + "/?z1=0.3&z2=-1.2")
    page.wait_for_function(READY_JS, timeout=180_000)
    page.wait_for_selector(IDLE, timeout=120_000)
    region = page.locator(".cvae-explorer .said")
    assert region.get_attribute("role") == "status" and region.get_attribute("aria-live") == "polite"
    # (the explorer lives in a shadow root: Playwright's locators reach into it)
    expect(region).to_have_text(re.compile("^" + re.escape(said_here((0.3, -1.2)))), timeout=60_000)
    # the keyboard: Tab reaches z1 and shows it has the focus; ten presses of Right, one commit each
    z1 = page.get_by_role("slider", name="z1", exact=True)
    z1.focus()
    style = z1.evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth]; }")
    assert style == ["solid", "3px"], style
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => new URLSearchParams(location.search).get('z1') === '0.400'", timeout=60_000)
    expect(region).to_have_text(re.compile("^" + re.escape(said_here((0.4, -1.2)))), timeout=60_000)
    text = region.inner_text()
    assert re.match(r"z = \(0\.40, −1\.20\): of the 50 nearest test digits, \d+ are \ds", text), text
