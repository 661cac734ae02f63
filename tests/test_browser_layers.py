"""The plane's layers under the scatter in real Chromium (app.py): each switch (mouse and
keyboard) draws and removes its layer on the Plotly graph, the URL keeps them beside the point,
and a link opens with them."""

from __future__ import annotations

import pytest

from cvae.core import shipped
from cvae.draw.overlays import DENSITY_NAME, PRIOR_NAME, STRETCH_NAME

pytestmark = pytest.mark.skipif(not shipped.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")

READY_JS = ("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
            "s => s.hasModel && s.paints > 0 && s.scatter)")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
LAYERS_JS = """() => { const gd = document.querySelector('.st-key-scatter .js-plotly-plot');
  return gd && gd.data ? [...new Set(gd.data.filter(t => t.type !== 'scattergl').map(t => t.name))].sort() : null; }"""


def wait_layers(page, names) -> None:
    page.wait_for_function(f"(want) => JSON.stringify(({LAYERS_JS})()) === JSON.stringify(want)", arg=sorted(names),
                           timeout=240_000)


def url_layers(page) -> str | None:
    return page.evaluate("() => new URLSearchParams(location.search).get('layers')")


def test_each_layer_switches_on_and_off_and_a_link_keeps_them(app_server, page):
    page.goto(app_server.url + "/?layers=prior")
    page.wait_for_function(READY_JS, timeout=180_000)
    wait_layers(page, [PRIOR_NAME])
    assert url_layers(page) == "prior"
    # the mouse: the density on
    page.get_by_role("switch", name="Test digits' density").click(force=True)
    wait_layers(page, [PRIOR_NAME, DENSITY_NAME])
    page.wait_for_function("() => new URLSearchParams(location.search).get('layers') === 'prior,density'")
    # the keyboard: Tab to the stretch switch, Space switches it on
    stretch = page.get_by_role("switch", name="Decoder stretch")
    stretch.focus()
    page.keyboard.press("Space")
    wait_layers(page, [PRIOR_NAME, DENSITY_NAME, STRETCH_NAME])
    page.wait_for_selector(IDLE, timeout=120_000)
    assert url_layers(page) == "stretch,prior,density"
    assert "model=" in page.url  # the model's name stays in the link
    for label in ("Decoder stretch", "Prior N(0, I)", "Test digits' density"):
        page.get_by_role("switch", name=label).click(force=True)
        page.wait_for_selector(IDLE, timeout=120_000)
    wait_layers(page, [])
    page.wait_for_function("() => new URLSearchParams(location.search).get('layers') === null")
    assert page.locator('[data-testid="stException"]').count() == 0
