"""axe-core (Deque's accessibility rules, the npm package in tests/axe) run in real Chromium over
the app and the static site: no serious or critical finding. Without tests/axe/node_modules
(``npm ci --prefix tests/axe``) these skip, and fail under CI=true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvae.core.files import write_folder
from devkit import shipped_site, REPO, needs_data, serve_folder

AXE = REPO / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
READY = "() => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel && s.paints > 0 && s.scatter)"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
BAD = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_source() -> Path:
    if not AXE.is_file():
        pytest.skip("Chromium accessibility check: axe-core is not installed (npm ci --prefix tests/axe)")
    return AXE


def findings(page, axe: Path) -> list[dict]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    page.add_script_tag(path=str(axe))
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in BAD]


def test_the_app_has_no_serious_accessibility_finding(app_server, browser, axe_source):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(180_000)
        page.goto(app_server.url + "/?layers=prior")
        page.wait_for_function(READY)
        page.wait_for_selector(IDLE)
        bad = findings(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)
    finally:
        ctx.close()


@needs_data
def test_the_site_has_no_serious_accessibility_finding(browser, tmp_path, axe_source):
    site = write_folder(tmp_path / "site", shipped_site(hooks=True))
    proc, url = serve_folder(site)
    # bypass_csp: the site allows no script from outside itself, and axe-core is the test's.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(url + "/index.html")
        page.wait_for_function(READY)
        bad = findings(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)
    finally:
        ctx.close()
        proc.terminate()
        proc.wait(10)
