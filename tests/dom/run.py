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
the page (Stryker's command runner sets it; the mutated modules read globalThis.__stryker__)
and stops at the first failure; with $CVAE_DOM_SERVER (the socket of ``run.py --serve``, which
tools/mutation.py starts) the tests run in that server's Chromium, not a new one. pytest runs
the files through tests/test_dom.py (marked browser).
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
TIMEOUT_MS = 20_000  # a page that has not finished by then hangs (a mutant's endless loop)
SERVER_ENV = "CVAE_DOM_SERVER"  # the socket of a running `run.py --serve` (tools/mutation.py starts one)


def files_of(args: list[str]) -> list[Path]:
    return [Path(a).resolve() for a in args] if args else sorted(HERE.glob("*.dom.js"))


def context_of(path: Path) -> dict:
    """The page's options: a 1280 x 900 viewport, or what the file's first line asks for
    (``// context: {"viewport": {...}, "device_scale_factor": 2, "has_touch": true}``, Playwright's
    new_context arguments)."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    more = json.loads(first.split("// context:", 1)[1]) if first.startswith("// context:") else {}
    return {"viewport": {"width": 1280, "height": 900}} | more


def run_file(browser, path: Path, root: Path = ROOT, mutant: str | None = None) -> list[dict]:
    """The results of one test file (under ``root``/tests/dom): [{name, ok, error}], one entry
    per test, plus one failed entry for each uncaught error, error logged or request outside the
    origin. ``mutant``: the Stryker mutant to switch on in the page."""
    ctx = browser.new_context(**context_of(path))
    problems: list[str] = []

    def route(r):
        url = r.request.url
        if not url.startswith(ORIGIN + "/"):
            problems.append(f"a request outside the test origin: {url}")
            return r.abort()
        f = (root / url[len(ORIGIN) + 1:].split("?")[0]).resolve()
        if root not in f.parents or not f.is_file():
            return r.fulfill(status=404, body="not found")
        return r.fulfill(path=str(f))

    try:
        ctx.route("**/*", route)
        if mutant:
            ctx.add_init_script(f"globalThis.__stryker__ = {{ activeMutant: {json.dumps(mutant)} }};")
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
        page.on("console", lambda m: problems.append(f"console.error: {m.text}") if m.type == "error" else None)
        rel = path.relative_to(root / "tests" / "dom").as_posix()
        page.goto(f"{ORIGIN}/tests/dom/page.html?test={rel}")
        page.wait_for_function("() => globalThis.__results !== undefined")
        results = page.evaluate("globalThis.__results")
    finally:
        ctx.close()
    return results + [{"name": p, "ok": False, "error": p} for p in problems]


def run_files(browser, files: list[Path], root: Path = ROOT, mutant: str | None = None) -> list[tuple[str, dict]]:
    """(file name, result) for each test of ``files``; with a mutant, up to the first failure."""
    out = []
    for f in files:
        try:
            results = run_file(browser, f, root, mutant)
        except Exception as e:  # a page that never finished (a mutant's endless loop), a browser gone
            results = [{"name": "the page", "ok": False, "error": f"{type(e).__name__}: {e}"}]
        for r in results:
            out.append((f.name, r))
            if mutant and not r["ok"]:
                return out
    return out


def launch(pw):
    sys.path.insert(0, str(ROOT / "tests"))
    from devkit import CHROMIUM, CHROMIUM_ARGS

    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def serve(address: str) -> None:
    """One Chromium for many runs (tools/mutation.py, for Stryker's run per mutant): answers, on
    the Unix socket ``address``, one JSON line {root, files, mutant} with one JSON line of
    [file, result] pairs. Launching Chromium for each mutant took longer than its tests."""
    import socketserver

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                ask = json.loads(self.rfile.readline())
                root = Path(ask["root"]).resolve()
                out = run_files(browser, [root / f for f in ask["files"]], root, ask.get("mutant"))
                self.wfile.write((json.dumps(out) + "\n").encode())

        with socketserver.UnixStreamServer(address, Handler) as server:
            server.serve_forever()


def ask_server(address: str, files: list[Path]) -> list[tuple[str, dict]]:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(address)
        ask = {"root": str(ROOT), "files": [str(f.relative_to(ROOT)) for f in files],
               "mutant": os.environ.get("__STRYKER_ACTIVE_MUTANT__")}
        s.sendall((json.dumps(ask) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the DOM test server closed the connection")
            data += chunk
    return [tuple(p) for p in json.loads(data)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve(argv[1])
        return 0
    t0 = time.time()
    files = files_of(argv)
    if os.environ.get(SERVER_ENV):
        results = ask_server(os.environ[SERVER_ENV], files)
    else:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                results = run_files(browser, files, ROOT, os.environ.get("__STRYKER_ACTIVE_MUTANT__"))
            finally:
                browser.close()
    failed = 0
    for name, r in results:
        failed += not r["ok"]
        print(f"{'ok' if r['ok'] else 'not ok'} {name} :: {r['name']}")
        if not r["ok"]:
            print("  " + r.get("error", "").replace("\n", "\n  "))
    print(f"# {len(results)} tests, {failed} failed, {time.time() - t0:.1f} s")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
