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
from devkit import REPO, start_server

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One harness server for the module: each test opens its own session and only reads."""
    tmp = tmp_path_factory.mktemp("film")
    srv = start_server(HARNESS, log=tmp / "streamlit.log")
    yield srv
    srv.stop()


@pytest.fixture
def replay(server, page):
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


LAYOUT_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const loss = [...gd.querySelectorAll('.annotation-text')].find((t) => t.textContent.startsWith('loss'));
  return { width: gd.getBoundingClientRect().width, legend: box(gd.querySelector('.legend .scrollbox') || gd.querySelector('.legend')),
           loss: box(loss), z1: box(gd.querySelector('.g-xtitle text')), slider: box(gd.querySelector('.slider-container')),
           play: box(gd.querySelector('.updatemenu-container')) };
}"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_the_replays_legend_titles_and_slider_do_not_overlap(replay):
    """At 1400 px wide: the digit legend clear of the loss panel's title, the z1 axis title clear
    of the play button and the slider."""
    got = replay.evaluate(LAYOUT_JS)
    assert got["width"] > 600, got  # the harness page is 1400 px wide; its chart takes the centred column
    for name in ("legend", "loss", "z1", "slider", "play"):
        assert got[name] is not None, (name, got)
    assert not _overlap(got["legend"], got["loss"]), got
    assert not _overlap(got["z1"], got["slider"]) and not _overlap(got["z1"], got["play"]), got


def test_the_shipped_films_note_names_no_path_of_the_machine_that_made_it(film):
    from ui.film import portable_command, shipped_note

    assert "--data-dir" in film.info["command"]  # what the film recorded
    note = shipped_note(film)
    assert "shared/mnist" not in note and "--data-dir" not in note and "python -m cvae train" in note
    assert portable_command("python -m cvae train --data-dir=/x/y --out a.pt") == "python -m cvae train --out a.pt"
