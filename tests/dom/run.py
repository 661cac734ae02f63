"""The DOM tests: the explorer's browser modules (cvae/web/*.js) in real Chromium, fast.

Each ``tests/dom/*.dom.js`` is an ES module of tests (harness.js: ``test(name, fn)``) that
builds the elements it needs and imports the modules from cvae/web as they are, no bundle.
This opens one page per file in Chromium (Playwright for Python, the Debian binary:
devkit.CHROMIUM), serves the repository's files to it from disk under a made-up origin (no
server, no port; any other request is refused and fails the file), and reports each test.

    python tests/dom/run.py                        # every file
    python tests/dom/run.py tests/dom/site.dom.js  # some

Exit status 1 when a test fails, a page throws an uncaught error or logs one. Run under
Stryker (tools/mutation.py js) it switches on the mutant named by $__STRYKER_ACTIVE_MUTANT__ in
the page (Stryker's command runner sets it; the mutated modules read globalThis.__stryker__).
pytest runs it through tests/test_dom.py (marked browser).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ORIGIN = "http://cvae.test"
TIMEOUT_MS = 30_000


def files_of(args: list[str]) -> list[Path]:
    return [Path(a).resolve() for a in args] if args else sorted(HERE.glob("*.dom.js"))


def context_of(path: Path) -> dict:
    """The page's options: a 1280 x 900 viewport, or what the file's first line asks for
    (``// context: {"viewport": {...}, "device_scale_factor": 2, "has_touch": true}``, Playwright's
    new_context arguments)."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    more = json.loads(first.split("// context:", 1)[1]) if first.startswith("// context:") else {}
    return {"viewport": {"width": 1280, "height": 900}} | more


def run_file(browser, path: Path) -> list[dict]:
    """The results of one test file: [{name, ok, error}], one entry per test, plus one failed
    entry for each uncaught error, error logged or request outside the origin."""
    ctx = browser.new_context(**context_of(path))
    problems: list[str] = []

    def route(r):
        url = r.request.url
        if not url.startswith(ORIGIN + "/"):
            problems.append(f"a request outside the test origin: {url}")
            return r.abort()
        f = (ROOT / url[len(ORIGIN) + 1:].split("?")[0]).resolve()
        if ROOT not in f.parents or not f.is_file():
            return r.fulfill(status=404, body="not found")
        return r.fulfill(path=str(f))

    try:
        ctx.route("**/*", route)
        mutant = os.environ.get("__STRYKER_ACTIVE_MUTANT__")
        if mutant:
            ctx.add_init_script(f"globalThis.__stryker__ = {{ activeMutant: {json.dumps(mutant)} }};")
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
        page.on("console", lambda m: problems.append(f"console.error: {m.text}") if m.type == "error" else None)
        rel = path.relative_to(HERE).as_posix()
        page.goto(f"{ORIGIN}/tests/dom/page.html?test={rel}")
        page.wait_for_function("() => globalThis.__results !== undefined")
        results = page.evaluate("globalThis.__results")
    finally:
        ctx.close()
    return results + [{"name": p, "ok": False, "error": p} for p in problems]


def launch(pw):
    sys.path.insert(0, str(ROOT / "tests"))
    from devkit import CHROMIUM, CHROMIUM_ARGS

    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    t0, failed, n = time.time(), 0, 0
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            for f in files_of(argv):
                for r in run_file(browser, f):
                    n += 1
                    failed += not r["ok"]
                    print(f"{'ok' if r['ok'] else 'not ok'} {f.name} :: {r['name']}")
                    if not r["ok"]:
                        print("  " + r.get("error", "").replace("\n", "\n  "))
                    if not r["ok"] and os.environ.get("__STRYKER_ACTIVE_MUTANT__"):
                        return 1  # a mutant is killed by its first failure
        finally:
            browser.close()
    print(f"# {n} tests, {failed} failed, {time.time() - t0:.1f} s")
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
