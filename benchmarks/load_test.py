"""Load test: N concurrent browser sessions against one `streamlit run app.py`, one of them training.

Starts the app once, opens N separate browser contexts (= N Streamlit sessions) in headless
Chromium at the same time, and checks that every session renders its first full page. Then
session 0 starts training a small model from the sidebar and, while it trains, every other
session moves the z1 slider (keyboard, like a person) several times; each move must
change the decoded digit. Prints, side by side:

* time to first full render per session (median / p90 / max);
* slider move -> new digit, while one session trains (median / p90 / max), vs the same
  with one session alone (the baseline measured first);
* server memory (RSS) idle, with 1 session, with N sessions, and per extra session,
  vs the size of the model + encodings (shared through the caches, not copied per session).

    python benchmarks/load_test.py [--sessions 10] [--moves 3] [--no-train] [--json out.json]

Exit code 1 when a session failed to render or a slider move did not update its digit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# As in tests/conftest.py: WebGL (Plotly's scattergl) through the software rasteriser.
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(script: Path, env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run SCRIPT --server.headless true --server.port N`; waits for /_stcore/health."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

DATA = Path(os.environ.get("CVAE_DATA") or REPO.parent / "shared" / "mnist")

APP = '[data-testid="stApp"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
DIGIT = '[data-testid="stImage"] img'
SLIDER = '[data-testid="stSlider"] input[type="range"][aria-label="z1"]'

# The src of the decoded digit: the image captioned "decoded at z" (else the first image
# in the main area, not the sidebar).
DIGIT_SRC_JS = """(sel) => { const main = document.querySelector('[data-testid="stMain"]') || document;
  const boxes = [...main.querySelectorAll('[data-testid="stImage"]')];
  const box = boxes.find(b => b.textContent.includes("decoded at z"));
  const img = box ? box.querySelector("img") : main.querySelector(sel);
  // The caption names z, so a move shows even where two nearby digits look the same.
  return img ? (box ? box.textContent : "") + " " + (img.currentSrc || img.src) : null; }"""


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (Linux /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def stats(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return f"median {statistics.median(xs):6.2f}s  p90 {p90:6.2f}s  max {xs[-1]:6.2f}s  (n={len(xs)})"


async def wait_idle(page, timeout_ms: float) -> None:
    await page.wait_for_selector(IDLE, timeout=timeout_ms)


async def settle(page, timeout_ms: float) -> None:
    """After a move: wait until the page is idle, but while a training runs the progress
    fragment reruns every few seconds and a busy server may never look idle; the move has
    already been measured, so a page that stays busy is not a failure."""
    try:
        await page.wait_for_selector(IDLE, timeout=timeout_ms)
    except Exception:
        pass


async def open_session(browser, url: str, timeout_ms: float):
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    t0 = time.perf_counter()
    await page.goto(url, timeout=timeout_ms)
    await page.wait_for_selector(f"[data-testid='stMain'] {DIGIT}", timeout=timeout_ms, state="visible")
    await wait_idle(page, timeout_ms)
    render = time.perf_counter() - t0
    errors = await page.locator('[data-testid="stException"]').count()
    return ctx, page, render, errors


async def move_slider(page, timeout_ms: float, key: str = "ArrowRight", presses: int = 3,
                      retry_after_ms: float = 30_000) -> tuple[float, bool]:
    """Focus the z1 slider, press a key; seconds until the decoded digit (image + caption) changed.

    If nothing changed after ``retry_after_ms`` (an input lost, e.g. sent during a rerun),
    presses once more and reports it: (seconds from the first press, retried).
    """
    before = await page.evaluate(DIGIT_SRC_JS, DIGIT)
    thumb = page.locator(f"[data-testid='stMain'] {SLIDER}").first
    await thumb.focus()
    changed = f"(b) => ({DIGIT_SRC_JS})({json.dumps(DIGIT)}) !== b"
    t0 = time.perf_counter()
    for _ in range(presses):
        await page.keyboard.press(key)
    try:
        await page.wait_for_function(changed, arg=before, timeout=min(retry_after_ms, timeout_ms), polling=20)
        return time.perf_counter() - t0, False
    except Exception:
        await thumb.focus()
        await page.keyboard.press(key)
        await page.wait_for_function(changed, arg=before, timeout=timeout_ms, polling=20)
        return time.perf_counter() - t0, True


async def page_state(page, shot: Path) -> str:
    """What a stuck page looks like: slider value, script state, connection, screenshot."""
    try:
        info = await page.evaluate("""() => {
          const app = document.querySelector('[data-testid="stApp"]');
          const s = document.querySelector('[data-testid="stMain"] [data-testid="stSlider"] [role="slider"]');
          return {script: app && app.getAttribute('data-test-script-state'),
                  connection: app && app.getAttribute('data-test-connection-state'),
                  z1: s && s.getAttribute('aria-valuenow'),
                  focused: document.activeElement && document.activeElement.getAttribute('aria-label'),
                  caption: [...document.querySelectorAll('[data-testid="stImage"]')]
                           .map(b => b.textContent).find(t => t.includes('decoded at z')) || null}; }""")
        await page.screenshot(path=str(shot))
        return f"{info}, screenshot {shot}"
    except Exception as exc:  # the page itself may be gone
        return f"unreadable ({type(exc).__name__})"


async def start_training(page, timeout_ms: float, limit: int, epochs: int) -> float:
    """Start a small training run from the sidebar ("Train a new model"); returns when it runs."""
    side = page.locator('[data-testid="stSidebar"]')
    expander = side.locator('[data-testid="stExpander"] summary', has_text="Train a new model")
    if await expander.count():
        await expander.first.click()
    for label, value in (("Epochs", epochs), ("Training images", limit), ("limit", limit)):
        box = side.get_by_label(label, exact=False)
        if await box.count() and await box.first.get_attribute("type") == "number":
            await box.first.fill(str(value))
            await box.first.press("Tab")  # not Enter: in a form, Enter submits it
    button = side.get_by_role("button", name="Train", exact=True)
    t0 = time.perf_counter()
    await button.first.click()
    # Training is running when the page shows a progress bar (or a stop button).
    await page.wait_for_selector('[data-testid="stProgress"], button:has-text("Stop")', timeout=timeout_ms)
    return time.perf_counter() - t0


async def run(args) -> dict:
    from playwright.async_api import async_playwright

    log = Path(tempfile.mkdtemp(prefix="cvae-load-")) / "streamlit.log"
    env = {"CVAE_DATA": str(DATA), "CVAE_RUNS": str(log.parent / "runs")}
    t_start = time.perf_counter()
    proc, url = start_streamlit(REPO / args.app, env, log)
    timeout_ms = args.timeout * 1000
    out: dict = {"sessions": args.sessions, "url": url, "cpus": os.cpu_count()}
    failures: list[str] = []
    try:
        out["rss_idle_mb"] = rss_mb(proc.pid)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
            # 1 session alone: the first render (cold caches) and a baseline for slider moves.
            ctx0, page0, render0, errors0 = await open_session(browser, url, timeout_ms)
            out["first_render_cold_s"] = render0
            out["server_start_to_render_s"] = time.perf_counter() - t_start
            out["rss_1_session_mb"] = rss_mb(proc.pid)
            base, retries = [], 0
            await asyncio.sleep(1.0)  # let the first run's follow-ups (component handshakes) settle
            await wait_idle(page0, timeout_ms)
            for i in range(args.moves):
                t, retried = await move_slider(page0, timeout_ms, "ArrowRight" if i % 2 == 0 else "ArrowLeft")
                base.append(t)
                retries += retried
                try:
                    await wait_idle(page0, timeout_ms)
                except Exception:
                    state = await page_state(page0, log.parent / f"stuck-alone-move{i + 1}.png")
                    raise RuntimeError(f"session 0 stayed busy after move {i + 1}; page: {state}") from None
            out["move_alone_s"] = base
            # The other N-1 sessions, all at once.
            opened = await asyncio.gather(*[open_session(browser, url, timeout_ms)
                                            for _ in range(args.sessions - 1)], return_exceptions=True)
            pages = [page0]
            renders = []
            for i, r in enumerate(opened, start=1):
                if isinstance(r, BaseException):
                    failures.append(f"session {i} did not render: {type(r).__name__}: {str(r).splitlines()[0]}")
                    continue
                _, page, render, errors = r
                pages.append(page)
                renders.append(render)
                if errors:
                    failures.append(f"session {i} shows {errors} exception box(es)")
            out["render_concurrent_s"] = renders
            await asyncio.sleep(1.0)
            out["rss_n_sessions_mb"] = rss_mb(proc.pid)

            # Session 0 trains; the others move their slider at the same time.
            if not args.no_train:
                try:
                    out["train_start_s"] = await start_training(page0, timeout_ms, args.limit, args.epochs)
                except Exception as exc:  # reported, and the rest of the load test still runs
                    failures.append(f"could not start training: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            movers = pages[1:] if not args.no_train else pages

            async def moves_of(i, page):
                times = []
                for k in range(args.moves):
                    try:
                        t, retried = await move_slider(page, timeout_ms, "ArrowRight" if k % 2 == 0 else "ArrowLeft")
                        times.append(t)
                        lost.append(retried)
                        await settle(page, 30_000)
                    except Exception as exc:
                        state = await page_state(page, log.parent / f"failed-session{i}-move{k + 1}.png")
                        failures.append(f"session {i}: slider move {k + 1} did not update the digit: "
                                        f"{type(exc).__name__}: {str(exc).splitlines()[0]}; page: {state}")
                        break
                return times

            lost: list[bool] = []
            t_moves = time.perf_counter()
            per_session = await asyncio.gather(*[moves_of(i, p) for i, p in enumerate(movers, start=len(pages) - len(movers))])
            out["move_concurrent_s"] = [t for ts in per_session for t in ts]
            out["moves_wall_s"] = time.perf_counter() - t_moves
            out["moves_retried"] = retries + sum(lost)
            out["rss_n_sessions_training_mb"] = rss_mb(proc.pid)
            out["training_still_running"] = bool(await page0.locator('[data-testid="stProgress"]').count()) \
                if not args.no_train else None
            await browser.close()
    finally:
        out["rss_peak_mb"] = _peak_mb(proc.pid)
        stop(proc)
    out["failures"] = failures
    out["log"] = str(log)
    return out


def _peak_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def shared_sizes_mb() -> float:
    """Bytes of what the caches should hold once: the model's weights and the encodings."""
    total = 0
    for name in ("cvae_mnist.pt", "test_encodings.npz"):
        p = REPO / "assets" / name
        if p.is_file():
            total += p.stat().st_size
    return total / 1e6


def report(out: dict) -> None:
    n = out["sessions"]
    print(f"Load test: {n} concurrent Chromium sessions against one `streamlit run app.py` "
          f"on {out['cpus']} CPU cores ({out['url']})")
    print(f"  server start -> first full render (cold): {out['server_start_to_render_s']:.1f}s "
          f"(page load {out['first_render_cold_s']:.1f}s)")
    print(f"  first render, {n - 1} sessions opened at once:  {stats(out['render_concurrent_s'])}")
    print(f"  slider move -> new digit, 1 session alone:    {stats(out['move_alone_s'])}")
    label = "while session 0 trains" if out.get("train_start_s") is not None else "all sessions moving"
    print(f"  slider move -> new digit, {label}: {stats(out['move_concurrent_s'])}")
    if out.get("move_alone_s") and out.get("move_concurrent_s"):
        ratio = statistics.median(out["move_concurrent_s"]) / statistics.median(out["move_alone_s"])
        print(f"    ratio loaded / alone (median): {ratio:.1f}x")
    extra = (out["rss_n_sessions_mb"] - out["rss_1_session_mb"]) / max(1, n - 1)
    print(f"  server RSS: idle {out['rss_idle_mb']:.0f} MB, 1 session {out['rss_1_session_mb']:.0f} MB, "
          f"{n} sessions {out['rss_n_sessions_mb']:.0f} MB, {n} + training "
          f"{out['rss_n_sessions_training_mb']:.0f} MB, peak {out['rss_peak_mb']:.0f} MB")
    print(f"  per extra session: {extra:+.1f} MB  vs model + encodings on disk {shared_sizes_mb():.1f} MB "
          f"(a copy per session would add at least that)")
    if out.get("training_still_running") is not None:
        print(f"  training was {'still running' if out['training_still_running'] else 'finished'} "
              f"when the moves ended")
    if out.get("moves_retried"):
        print(f"  {out['moves_retried']} slider move(s) changed nothing within 30 s and needed a second key press")
    if out["failures"]:
        print("FAILURES:")
        for f in out["failures"]:
            print("  -", f)
    else:
        print(f"  OK: all {n} sessions rendered and every slider move updated its digit")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", default="app.py", help="the Streamlit script, relative to the repo")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--moves", type=int, default=3, help="slider moves per session")
    ap.add_argument("--no-train", action="store_true", help="no training session")
    ap.add_argument("--limit", type=int, default=5000, help="training-set limit of the training session")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180, help="seconds for any one wait")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.sessions < 1 or args.moves < 1:
        ap.error("--sessions and --moves must be at least 1")
    if not (REPO / args.app).is_file():
        print(f"error: {REPO / args.app} does not exist", file=sys.stderr)
        return 2
    out = asyncio.run(run(args))
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
