"""The film replay in real Chromium: press Play and watch the digits move; download the GIF.

The harness (tests/apps/film_harness.py) shows only film_replay_ui for the shipped model, whose
film is assets/film.npz. Needs /usr/bin/chromium; under CI=true it never skips (conftest.py).
"""

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from cvae.core.film import Film

from cvae.core.shipped import SHIPPED_FILM
from devkit import REPO

HARNESS = "tests/apps/film_harness.py"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts"))

# The positions of the digit-0 points (trace 0 of the scatter), as the page draws them.
POINTS_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd) return null;
  const tr = gd.querySelectorAll('.scatterlayer .trace')[0];
  if (!tr) return null;
  const pts = Array.from(tr.querySelectorAll('path.point')).map(p => p.getAttribute('transform'));
  return pts.length ? pts.join(';') : null;
}"""
ACTIVE_JS = "() => { const gd = document.querySelector('.js-plotly-plot'); return gd.layout.sliders[0].active; }"
AXES_JS = ("() => { const L = document.querySelector('.js-plotly-plot')._fullLayout; "
           "return [L.xaxis.range, L.yaxis.range]; }")


@pytest.fixture
def film():
    return Film.load_npz(SHIPPED_FILM)


@pytest.fixture
def replay(streamlit_server, page):
    server = streamlit_server(HARNESS)
    page.goto(server.url)
    page.wait_for_function(f"({POINTS_JS})() !== null")
    return page


def test_play_moves_the_digits_frame_by_frame(replay, film):
    page = replay
    n = len(film)
    first = page.evaluate(POINTS_JS)
    assert first.count(";") + 1 == int((film.labels == 0).sum())  # every digit 0 of the film is drawn
    assert page.evaluate(ACTIVE_JS) == 0
    axes = page.evaluate(AXES_JS)
    page.evaluate("window.__seen = new Set()")
    page.locator(".updatemenu-button", has_text="Play").click()
    # While it plays, the drawn positions change again and again, and the slider runs to the end.
    page.wait_for_function(f"""() => {{
        const s = ({POINTS_JS})(); if (s) window.__seen.add(s);
        return window.__seen.size >= 4 && ({ACTIVE_JS})() === {n - 1};
    }}""", polling=100, timeout=120_000)
    last = page.evaluate(POINTS_JS)
    assert last != first
    assert page.evaluate(AXES_JS) == axes  # the same axes in every frame
    # At rest on the last frame, the title says that snapshot's step.
    page.wait_for_function(f"() => document.querySelector('.gtitle').textContent.includes('step {int(film.step[-1]):,}')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "film_replay_end.png"), full_page=True)


def test_the_slider_shows_a_chosen_snapshot(replay, film):
    page = replay
    first = page.evaluate(POINTS_JS)
    k = len(film) // 2
    # Plotly's slider: clicking a step's position on the rail jumps there.
    rail = page.locator(".slider-rail-rect").first.bounding_box()
    page.mouse.click(rail["x"] + rail["width"] * k / (len(film) - 1), rail["y"] + rail["height"] / 2)
    page.wait_for_function(f"({ACTIVE_JS})() === {k}")
    page.wait_for_function(f"({POINTS_JS})() !== {first!r}")
    page.wait_for_function(f"() => document.querySelector('.gtitle').textContent.includes('step {int(film.step[k]):,}')")


def test_the_gif_download_has_one_frame_per_snapshot(replay, film, tmp_path):
    page = replay
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download the film (GIF)").click()
    path = tmp_path / "film.gif"
    dl.value.save_as(path)
    im = Image.open(io.BytesIO(path.read_bytes()))
    assert im.format == "GIF" and im.n_frames == len(film)
