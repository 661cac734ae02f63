"""The explorer's browser modules in real Chromium, one page per file of tests/dom/*.dom.js
(tests/dom/run.py: the modules loaded as they are, the repository's files served from disk,
no server). Marked ``browser`` by tests/conftest.py (the ``browser`` fixture): skipped without
Chromium or Playwright, a failure under CI=true."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DOM = Path(__file__).resolve().parent / "dom"
_spec = importlib.util.spec_from_file_location("dom_run", DOM / "run.py")
dom = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dom)


@pytest.mark.parametrize("path", sorted(DOM.glob("*.dom.js")), ids=lambda p: p.name)
def test_dom(browser, path):
    results = dom.run_file(browser, path)
    assert results, "no test ran"
    failed = [f"{r['name']}: {r.get('error', '')}" for r in results if not r["ok"]]
    assert not failed, "\n\n".join(failed)
