"""The page follows the model, in real Chromium: after a switch of model the live canvas shows
the new model's decode at once (no move needed) and the scatter its encodings; the model is in
the URL (?model=NAME), so a reload or a link opens it; a name that is not there is ignored with
a note."""

from __future__ import annotations

import numpy as np
import pytest

from cvae import encode_dataset, load_checkpoint, load_mnist, save_checkpoint
from cvae.core import shipped
from devkit import data_dir, random_model, start_server

READY_JS = ("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
            "s => s.hasModel && s.paints > 0 && s.scatter)")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 180_000
# The canvas's red channel equals the expected 28x28 uint8 image to within one level (the canvas
# lives in the component's shadow DOM).
CANVAS_IS_JS = """(want) => {
  const find = (root) => { const c = root.querySelector('canvas.digit'); if (c) return c;
    for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; } }
    return null; };
  const c = find(document); if (!c) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < 784; i++) if (Math.abs(d[4 * i] - want[i]) > 1) return false; return true; }"""
# Digit 0's first point on the scatter (Plotly keeps float32 arrays as base64: {dtype, bdata}).
FIRST_POINT_JS = """() => { const gd = document.querySelector('.st-key-scatter .js-plotly-plot');
  const t = gd && gd.data && gd.data.find((t) => t.name === '0'); if (!t) return null;
  const arr = (a) => a.bdata ? new Float32Array(Uint8Array.from(atob(a.bdata), (c) => c.charCodeAt(0)).buffer) : a;
  return [arr(t.x)[0], arr(t.y)[0]]; }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """app.py with a second model in its runs folder; one for the module (each test opens its own
    session and none changes the folder)."""
    tmp = tmp_path_factory.mktemp("models")
    runs = tmp / "runs"
    save_checkpoint(random_model(3), runs / "other.pt")
    srv = start_server("app.py", {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(runs), "CVAE_TEST_HOOKS": "1"},
                       log=tmp / "streamlit.log")
    srv.runs = runs
    yield srv
    srv.stop()


def expected(model, z) -> list[int]:
    from cvae import decode_points

    img = decode_points(model, np.asarray([z], np.float32))[0]
    return np.clip(np.rint(img * 255), 0, 255).astype(int).ravel().tolist()


def open_page(page, url):
    page.goto(url)
    page.wait_for_function(READY_JS, timeout=TIMEOUT_MS)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)


def test_a_switch_of_model_repaints_at_once_and_the_url_names_it(server, page, mnist_dir):
    ship = load_checkpoint(shipped.SHIPPED_CHECKPOINT)
    open_page(page, server.url)
    z = tuple(page.evaluate("cvaeExplorer.stats()[0].committed"))
    page.wait_for_function(CANVAS_IS_JS, arg=expected(ship, z), timeout=TIMEOUT_MS)
    assert page.evaluate("new URLSearchParams(location.search).get('model')") == "shipped"

    # Pick the trained model in the sidebar; touch nothing else.
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Trained here: other.pt").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('model') === 'other'",
                           timeout=TIMEOUT_MS)
    model = load_checkpoint(server.runs / "other.pt")
    z = tuple(page.evaluate("cvaeExplorer.stats()[0].committed"))
    page.wait_for_function(CANVAS_IS_JS, arg=expected(model, z), timeout=TIMEOUT_MS)
    # The scatter holds the new model's encodings (digit 0's first test image).
    test_x, test_y = load_mnist("test", mnist_dir, download=False)
    first0 = int(np.flatnonzero(test_y.numpy() == 0)[0])
    want = encode_dataset(model, test_x[first0:first0 + 1])[0][0]
    page.wait_for_function(f"() => {{ const p = ({FIRST_POINT_JS})(); return p && Math.abs(p[0] - {want[0]}) < 1e-4"
                           f" && Math.abs(p[1] - {want[1]}) < 1e-4; }}", timeout=TIMEOUT_MS)

    # A reload opens the same model (a new session reads the URL).
    page.reload()
    open_page(page, page.url)
    assert page.evaluate("new URLSearchParams(location.search).get('model')") == "other"
    z = tuple(page.evaluate("cvaeExplorer.stats()[0].committed"))
    page.wait_for_function(CANVAS_IS_JS, arg=expected(model, z), timeout=TIMEOUT_MS)


def test_a_link_to_a_model_that_is_not_there_opens_the_shipped_one_with_a_note(server, page):
    open_page(page, server.url + "/?model=no-such-run")
    note = page.get_by_text("The link names a model, “no-such-run”, that is not here")
    note.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => new URLSearchParams(location.search).get('model') === 'shipped'",
                           timeout=TIMEOUT_MS)
    ship = load_checkpoint(shipped.SHIPPED_CHECKPOINT)
    z = tuple(page.evaluate("cvaeExplorer.stats()[0].committed"))
    page.wait_for_function(CANVAS_IS_JS, arg=expected(ship, z), timeout=TIMEOUT_MS)
