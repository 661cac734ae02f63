"""Opening a model in real Chromium: the Keras tutorial's file dropped on the sidebar's uploader
opens at once, its name in the URL, the live canvas drawing what the imported model decodes and
the scatter placing the test digits where Keras encodes them; a second server on the same runs
folder (another replica) lists it and opens it from its link."""

from __future__ import annotations

import numpy as np

from cvae import load_checkpoint
from devkit import REPO, data_dir
from test_browser_models import CANVAS_IS_JS, FIRST_POINT_JS, TIMEOUT_MS, expected, open_page

GOLDEN = REPO / "tests" / "golden" / "keras_tutorial"


def test_a_keras_file_dropped_on_the_uploader_opens(streamlit_server, tmp_path, page, mnist_dir):
    runs = tmp_path / "runs"
    env = {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(runs), "CVAE_TEST_HOOKS": "1"}
    server = streamlit_server("app.py", env=env)
    open_page(page, server.url)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Open a model").click()
    sidebar.locator('input[type="file"]').set_input_files(str(GOLDEN / "vae.weights.h5"))
    sidebar.get_by_text("vae.weights.h5").first.wait_for(timeout=TIMEOUT_MS)
    sidebar.get_by_role("button", name="Open it").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('model') === 'vae'", timeout=TIMEOUT_MS)
    model = load_checkpoint(runs / "vae.pt")
    assert model.meta["extra"]["imported_from"]["kind"] == "keras3_weights"
    page.wait_for_function("() => cvaeExplorer.stats().some(s => s.hasModel && s.paints > 0)", timeout=TIMEOUT_MS)
    z = tuple(page.evaluate("cvaeExplorer.stats()[0].committed"))
    page.wait_for_function(CANVAS_IS_JS, arg=expected(model, z), timeout=TIMEOUT_MS)
    sidebar.get_by_text("Opened vae.weights.h5").wait_for(timeout=TIMEOUT_MS)

    # The scatter is this model's encoding of the test set: the first test digit 0 (index 3) lies
    # where Keras itself put it (outputs.npz, z_mean of test digits 0 1 2 3 ...).
    with np.load(GOLDEN / "outputs.npz") as g:
        assert int(g["test_indices"][3]) == 3
        want = g["z_mean"][3]
    page.wait_for_function(f"() => {{ const p = ({FIRST_POINT_JS})(); return p && Math.abs(p[0] - {want[0]}) < 1e-4"
                           f" && Math.abs(p[1] - {want[1]}) < 1e-4; }}", timeout=TIMEOUT_MS)

    # Another replica (its own server process, the same runs folder) lists it, and its link opens it.
    replica = streamlit_server("app.py", env=env)
    open_page(page, f"{replica.url}?model=vae")
    page.wait_for_function("() => new URLSearchParams(location.search).get('model') === 'vae'", timeout=TIMEOUT_MS)
    z = tuple(page.evaluate("cvaeExplorer.stats()[0].committed"))
    page.wait_for_function(CANVAS_IS_JS, arg=expected(model, z), timeout=TIMEOUT_MS)
