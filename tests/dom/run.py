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
TIMEOUT_MS = int(os.environ.get("CVAE_DOM_TIMEOUT_MS", 20_000))  # a page that has not finished by then hangs (a mutant's endless loop)
SERVER_ENV = "CVAE_DOM_SERVER"  # the socket of a running `run.py --serve` (tools/mutation.py starts one)


def files_of(args: list[str]) -> list[Path]:
    return [Path(a).resolve() for a in args] if args else sorted(HERE.glob("*.dom.js"))


def context_of(path: Path) -> dict:
    """The page's options: a 1280 x 900 viewport, or what the file's first lines ask for
    (``// context: {"viewport": {...}, "device_scale_factor": 2, "has_touch": true}``, Playwright's
    new_context arguments)."""
    head = path.read_text(encoding="utf-8").split("\n", 3)[:3]  # (Stryker's sandbox puts `// @ts-nocheck` first)
    more = next((json.loads(line.split("// context:", 1)[1]) for line in head if line.startswith("// context:")), {})
    return {"viewport": {"width": 1280, "height": 900}} | more


def site_bundle(root: Path) -> str:
    """The static site's script (cvae/site.py assemble_site: site.js and the test hooks, one
    classic script) from the modules under ``root``, by root's own cvae/web/bundle.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cvae_web_bundle", root / "cvae" / "web" / "bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    web = root / "cvae" / "web"
    return mod.bundle([web / "site.js", web / "hooks.js"], script=True)


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
        rel = url[len(ORIGIN) + 1:].split("?")[0]
        if rel == "bundle/site.js":  # the static site's script as `python -m cvae site` writes it
            return r.fulfill(body=site_bundle(root), content_type="text/javascript")
        f = (root / rel).resolve()
        if root not in f.parents or not f.is_file():
            return r.fulfill(status=404, body="not found")
        return r.fulfill(path=str(f))

    hung = False
    try:
        ctx.route("**/*", route)
        if mutant:
            ctx.add_init_script(f"globalThis.__stryker__ = {{ activeMutant: {json.dumps(mutant)} }};")
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
        page.on("console", lambda m: problems.append(f"console.error: {m.text}") if m.type == "error" else None)
        rel = path.relative_to(root / "tests" / "dom").as_posix()
        try:  # (a mutant's endless loop may start while the page loads, or in a test)
            page.goto(f"{ORIGIN}/tests/dom/page.html?test={rel}")
            page.wait_for_function("() => globalThis.__results !== undefined")
        except Exception as e:
            hung = True  # closing the page would wait on it: the caller kills this Chromium
            raise Hung(f"the page did not finish in {TIMEOUT_MS / 1000:.0f} s: {type(e).__name__}") from e
        results = page.evaluate("globalThis.__results")
        try:  # still answering? (a mutant's endless loop may start after the results, in a frame or a handler)
            page.wait_for_function("() => true", timeout=5000)
        except Exception as e:
            hung = True
            raise Hung("the page stopped answering after its tests") from e
    finally:
        if not hung:
            ctx.close()
    return results + [{"name": p, "ok": False, "error": p} for p in problems]


class Hung(Exception):
    """A page that did not finish (a mutant's endless loop): its Chromium must be killed."""


def kill_chromium() -> None:
    """SIGKILL every Chromium process started below this one (Linux /proc): a renderer in an
    endless loop keeps a context's close waiting for ever."""
    import signal

    parent = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    mine, grew = {os.getpid()}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in mine} - mine
        grew = bool(more)
        mine |= more
    for p in mine - {os.getpid()}:
        try:
            if "chromium" in (Path("/proc") / str(p) / "comm").read_text():
                os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def run_files(browser, files: list[Path], root: Path = ROOT, mutant: str | None = None) -> tuple[list[tuple[str, dict]], bool]:
    """(file name, result) for each test of ``files`` (with a mutant, up to the first failure),
    and whether a page hung (then the browser is unusable: kill_chromium, launch again)."""
    out = []
    for f in files:
        try:
            results = run_file(browser, f, root, mutant)
        except Hung as e:
            return out + [(f.name, {"name": "the page", "ok": False, "error": str(e)})], True
        except Exception as e:  # a browser gone
            results = [{"name": "the page", "ok": False, "error": f"{type(e).__name__}: {e}"}]
        for r in results:
            out.append((f.name, r))
            if mutant and not r["ok"]:
                return out, False
    return out, False


def launch(pw):
    sys.path.insert(0, str(ROOT / "tests"))
    from devkit import CHROMIUM, CHROMIUM_ARGS

    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def serve(address: str) -> None:
    """One Chromium for many runs (tools/mutation.py, for Stryker's run per mutant): answers, on
    the Unix socket ``address``, one JSON line {root, files, mutant} with one JSON line of
    [file, result] pairs. Launching Chromium for each mutant took longer than its tests."""
    import socketserver
    import threading

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = [launch(pw)]

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                ask = json.loads(self.rfile.readline())
                root = Path(ask["root"]).resolve()
                # A page can hang where no timeout of Playwright's reaches (a context's close while
                # a frame callback loops): past the files' time and more, its Chromium is killed.
                fired: list[bool] = []
                limit = threading.Timer(len(ask["files"]) * (TIMEOUT_MS / 1000 + 10) + 10,
                                        lambda: (fired.append(True), kill_chromium()))
                limit.start()
                try:
                    out, hung = run_files(browser[0], [root / f for f in ask["files"]], root, ask.get("mutant"))
                finally:
                    limit.cancel()
                if fired and not hung:
                    hung = True
                    out.append(("", {"name": "the page", "ok": False, "error": "the run overran: its Chromium was killed"}))
                if hung:
                    kill_chromium()
                    browser[0] = launch(pw)
                    if os.environ.get("CVAE_DOM_HANG_LOG"):  # which mutants hung, to check again with more time
                        with open(os.environ["CVAE_DOM_HANG_LOG"], "a") as log:
                            log.write(f"{ask.get('mutant')} {ask['files']}\n")
                try:
                    self.wfile.write((json.dumps(out) + "\n").encode())
                except OSError:
                    pass  # Stryker gave up on this one

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
            results, hung = run_files(browser, files, ROOT, os.environ.get("__STRYKER_ACTIVE_MUTANT__"))
            if hung:
                kill_chromium()
            else:
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
