"""Load test: many browser sessions at once against one `streamlit run app.py`, measured
against a floor in the same run.

The floor is benchmarks/bare_page.py (a bare Streamlit page holding only the cached
10,000-point Plotly scatter, a slider and an image) on a server of its own: the browsers run
on this machine too and dominate a first render, so the app's figures only mean something
beside the floor's, opened the same way by the same number of sessions.

For each page (in --rounds rounds, the floor and the app alternating, each on a fresh server):
one session opens it first, alone (the server's caches warm up), then
--sessions sessions (separate browser contexts, so separate Streamlit sessions) open it at
once, and then every session presses ArrowRight on its z1 slider --moves times, each press
after the previous one landed. Measured in each page with its own clock (an init script):

- first render: goto -> the page is usable (app: the explorer's decoder loaded, its digit
  painted and the scatter hooked, from the test hooks' stats(); floor: the scatter drawn,
  the image loaded, the slider there);
- move -> new digit (app): the key press -> the first animation frame after the canvas was
  repainted (the browser decodes: no server round trip);
- commit round trip: the key press -> the page URL's z1 changed (the app's decoder fragment
  writes it after Python took the commit; on the floor, the rerun's image caption changed).

Nothing may be lost: after its moves every app session's URL holds its start z1 plus
--moves steps (each move reached Python), no page has an error or an exception box, and the
server log has no Traceback.

--train: no floor; session 0 starts a small training run from the sidebar (--epochs,
--limit) and, while it trains, the other sessions make their moves (the target:
commit round trip p90 <= 1 s).

    python benchmarks/load_test.py                  # 10 sessions, 3 rounds beside the floor (targets)
    python benchmarks/load_test.py --sessions 20 --no-floor   # a class: nothing lost
    python benchmarks/load_test.py --train          # moves while one session trains

Exit code 1 when something was lost or failed, 2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path


from _common import (add_env_option, print_failures, BARE_PAGE, BARE_READY_JS, CHROMIUM, CHROMIUM_ARGS, READY_JS, app_env, pct, server_env,  # noqa: E402
                     start_server, summary)

VIEWPORT = {"width": 1400, "height": 1000}
TARGET_SESSIONS = 10  # the render and digit targets are set for 10 sessions at once
TARGET_RENDER_RATIO = 1.25
TARGET_DIGIT_S = 0.5
TARGET_TRAIN_COMMIT_S = 1.0

# In every page, before its own scripts: the key presses, the URL changes (Streamlit writes
# query params with history.replaceState / pushState), the canvas repaints after a key.
INSTRUMENT_JS = r"""
(() => {
  const lt = window.__lt = { pending: null, digit: [], commit: [], urls: 0 };
  const z1 = () => new URLSearchParams(location.search).get('z1');
  const caption = () => { const c = [...document.querySelectorAll('[data-testid="stImageCaption"]')]
    .map(e => e.textContent).find(t => t.startsWith('z1 =')); return c || null; };
  const paints = () => (globalThis.cvaeExplorer ? cvaeExplorer.stats()[0].paints : -1);
  lt.value = () => (globalThis.cvaeExplorer ? z1() : caption());
  const landed = () => {
    const p = lt.pending;
    if (p && lt.value() !== null && lt.value() !== p.before) { lt.commit.push(performance.now() - p.t0); lt.pending = null; return true; }
    return false;
  };
  for (const name of ['replaceState', 'pushState']) {
    const f = history[name];
    history[name] = function (...a) { const r = f.apply(this, a); lt.urls++; landed(); return r; };
  }
  document.addEventListener('keydown', (e) => {
    if (!e.key.startsWith('Arrow')) return;
    const t0 = performance.now(), p0 = paints();
    lt.pending = { t0, before: lt.value() };
    if (p0 >= 0) {
      const frame = () => {
        if (paints() > p0) lt.digit.push(performance.now() - t0);
        else if (performance.now() - t0 < 60000) requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    }
    if (!globalThis.cvaeExplorer) {  // the floor: the rerun replaces the image caption
      const look = () => { if (!landed() && lt.pending && performance.now() - t0 < 60000) setTimeout(look, 10); };
      setTimeout(look, 10);
    }
  }, true);
})();
"""


class Session:
    def __init__(self, i: int):
        self.i = i
        self.ctx = self.page = None
        self.render_s: float | None = None
        self.errors: list[str] = []
        self.digit_s: list[float] = []
        self.commit_s: list[float] = []
        self.lost: list[str] = []


async def open_session(browser, url: str, ready_js: str, s: Session, timeout_ms: float) -> Session:
    s.ctx = await browser.new_context(viewport=VIEWPORT)
    await s.ctx.add_init_script(INSTRUMENT_JS)
    s.page = await s.ctx.new_page()
    s.page.set_default_timeout(timeout_ms)
    s.page.on("pageerror", lambda e: s.errors.append(f"pageerror: {e}"))
    t0 = time.perf_counter()
    try:
        await s.page.goto(url, timeout=timeout_ms)
        await s.page.wait_for_function(ready_js, timeout=timeout_ms, polling=100)
        s.render_s = time.perf_counter() - t0
    except Exception as exc:
        s.errors.append(f"did not render: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return s


def slider_of(page, app: bool):
    return page.get_by_role("slider", name="z1", exact=True) if app else page.locator(".st-key-z1 input[type=range]")


async def move(s: Session, app: bool, moves: int, timeout_ms: float) -> None:
    """``moves`` ArrowRight presses on z1, each after the previous one landed."""
    page = s.page
    start = await page.evaluate("() => __lt.value()")
    slider = slider_of(page, app)
    for k in range(moves):
        n_commit, n_digit = await page.evaluate("() => [__lt.commit.length, __lt.digit.length]")
        await slider.focus()
        await page.keyboard.press("ArrowRight")
        try:
            await page.wait_for_function(f"() => __lt.commit.length > {n_commit}"
                                         + (f" && __lt.digit.length > {n_digit}" if app else ""),
                                         timeout=timeout_ms, polling=100)
        except Exception:
            s.lost.append(f"session {s.i}: move {k + 1} did not land in {timeout_ms / 1000:.0f} s "
                          f"(URL z1 {await page.evaluate('() => __lt.value()')!r}, started at {start!r})")
            break
    lt = await page.evaluate("() => ({digit: __lt.digit, commit: __lt.commit, value: __lt.value()})")
    s.digit_s = [t / 1000 for t in lt["digit"]]
    s.commit_s = [t / 1000 for t in lt["commit"]]
    if app and not s.lost:  # every move reached Python: the URL (written by Python) moved by exactly `moves` steps
        try:
            step = float(await slider.get_attribute("step"))  # Python's step, as the page got it
            got, want = float(lt["value"]), float(start) + moves * step
        except (TypeError, ValueError):
            s.lost.append(f"session {s.i}: no z1 in the URL ({lt['value']!r})")
            return
        if abs(got - want) > 1e-6 + 5e-4:
            s.lost.append(f"session {s.i}: URL z1 {got:.3f} after {moves} moves from {start}, expected {want:.3f}")


async def start_training(s: Session, epochs: int, limit: int, timeout_ms: float) -> None:
    """Session ``s`` starts a small run from the sidebar's form and waits until it runs."""
    side = s.page.locator('[data-testid="stSidebar"]')
    await side.get_by_text("Train a new model").click()  # the form is drawn when opened
    await side.get_by_text("Epochs", exact=True).click()  # the radio: epochs and a limit, not the quick minute
    for label, value in (("Epochs", epochs), ("Training images", limit)):
        box = side.locator(f'input[aria-label^="{label}"]').first
        await box.fill(str(value))
        await box.press("Tab")  # not Enter: in a form, Enter submits it
    await side.get_by_role("button", name="Train", exact=True).click()
    await s.page.get_by_text("Training:", exact=False).first.wait_for(timeout=timeout_ms)


async def training_running(s: Session) -> bool:
    return await s.page.get_by_text("Training:", exact=False).count() > 0


async def run_page(browser, url: str, app: bool, args, failures: list[str], train: bool = False) -> dict:
    ready = READY_JS if app else BARE_READY_JS
    name = "app" if app else "floor"
    timeout_ms = args.timeout * 1000
    warm = await open_session(browser, url, ready, Session(-1), timeout_ms)
    out = {"warm_render_s": warm.render_s}
    failures += [f"{name} warm-up session: {e}" for e in warm.errors]
    await warm.ctx.close()
    sessions = [Session(i) for i in range(args.sessions)]
    t0 = time.perf_counter()
    await asyncio.gather(*[open_session(browser, url, ready, s, timeout_ms) for s in sessions])
    out["open_wall_s"] = time.perf_counter() - t0
    out["render_s"] = [s.render_s for s in sessions if s.render_s is not None]
    movers = [s for s in sessions if s.render_s is not None]
    if train:
        trainer, movers = movers[0], movers[1:]
        try:
            await start_training(trainer, args.epochs, args.limit, timeout_ms)
        except Exception as exc:
            failures.append(f"could not start training: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        out["training_at_start"] = await training_running(trainer)
    t0 = time.perf_counter()
    await asyncio.gather(*[move(s, app, args.moves, timeout_ms) for s in movers])
    out["moves_wall_s"] = time.perf_counter() - t0
    if train:
        out["training_at_end"] = await training_running(trainer)
        stop = trainer.page.get_by_role("button", name="Stop training")
        if await stop.count():
            await stop.first.click()
            await trainer.page.get_by_text("Training:", exact=False).first.wait_for(state="detached", timeout=timeout_ms)
    out["digit_s"] = [t for s in movers for t in s.digit_s]
    out["commit_s"] = [t for s in movers for t in s.commit_s]
    for s in sessions:
        if s.page is not None and await s.page.get_by_test_id("stException").count():
            failures.append(f"{name} session {s.i}: the page shows an exception box")
        failures += [f"{name} session {s.i}: {e}" for e in s.errors] + [f"{name}: {x}" for x in s.lost]
        if s.ctx is not None:
            await s.ctx.close()
    return out


async def run(args) -> tuple[dict, list[str]]:
    from playwright.async_api import async_playwright

    failures: list[str] = []
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="cvae-load-") as tmp:
        tmp = Path(tmp)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                plan = [] if args.no_floor or args.train else [("floor", BARE_PAGE, {})]
                plan.append(("app", "app.py", app_env(tmp / "runs")))
                # Rounds alternate the floor and the app, so a machine that gets busier or
                # quieter during the run weighs on both alike.
                for _ in range(args.rounds):
                    for name, script, env in plan:
                        srv = start_server(script, {**env, **server_env(args.env)}, log=tmp / f"{name}.log")
                        try:
                            res.setdefault(name, []).append(await run_page(
                                browser, srv.url, name == "app", args, failures, train=args.train and name == "app"))
                        finally:
                            srv.stop()
                    if "Traceback" in srv.log_text():
                        tb = srv.log_text()
                        failures.append(f"{name}: the server log has a Traceback:\n"
                                        + tb[tb.index("Traceback"):][:3000])
            finally:
                await browser.close()
    return res, failures


def pooled(rounds: list[dict]) -> dict:
    """One page's rounds as one: every session's figures, and each round's first-render p90."""
    out = {k: [x for r in rounds for x in r[k]] for k in ("render_s", "digit_s", "commit_s")}
    out["warm_render_s"] = rounds[0]["warm_render_s"]
    out["render_p90s"] = [pct(r["render_s"], 0.9) for r in rounds if r["render_s"]]
    for k in ("training_at_start", "training_at_end"):
        if k in rounds[0]:
            out[k] = all(r[k] for r in rounds)
    return out


def report(res: dict, args, failures: list[str]) -> None:
    res = {name: pooled(rounds) for name, rounds in res.items()}
    n = args.sessions
    mode = "while session 0 trains" if args.train else ""
    print(f"Load test: {n} Chromium sessions opened at once against one `streamlit run` on "
          f"{os.cpu_count()} CPU cores, each pressing ArrowRight on z1 {args.moves} times {mode}".rstrip())
    if args.rounds > 1:
        print(f"{args.rounds} rounds, the floor and the app alternating; figures over all rounds")
    if args.env:
        print(f"servers run with {' '.join(args.env)}")
    for name in ("floor", "app"):
        r = res.get(name)
        if not r:
            continue
        label = "bare page (floor)" if name == "floor" else "app.py"
        print(f"{label}:")
        warm = r["warm_render_s"]
        print("  first render, one session alone (server caches warming): "
              + (f"{warm:.1f} s" if warm is not None else "failed"))
        print(f"  first render, {n} sessions at once:  {summary(r['render_s'])}")
        if args.rounds > 1:
            print("  first render p90 of each round: " + ", ".join(f"{p:.2f}s" for p in r["render_p90s"]))
        if name == "app":
            print(f"  move -> new digit (canvas repaint): {summary(r['digit_s'], 'ms', 1000, '{:.0f}')}")
        print(f"  move -> commit round trip ({'URL updated' if name == 'app' else 'rerun shown'}): "
              f"{summary(r['commit_s'], 'ms', 1000, '{:.0f}')}")
        if "training_at_start" in r:
            print(f"  training running when the moves began: {r['training_at_start']}, "
                  f"when they ended: {r['training_at_end']}")
    print("targets:")
    met = []
    app, floor = res.get("app"), res.get("floor")
    if app and floor and app["render_p90s"] and floor["render_p90s"]:
        # The median over rounds of each page's p90 (one round: its p90).
        ratio = statistics.median(app["render_p90s"]) / statistics.median(floor["render_p90s"])
        met.append(ratio <= TARGET_RENDER_RATIO)
        each = (" (each round: " + ", ".join(f"{a / f:.2f}x" for a, f in zip(app["render_p90s"], floor["render_p90s"]))
                + ")") if args.rounds > 1 else ""
        print(f"  first render p90, app / floor: {ratio:.2f}x (target <= {TARGET_RENDER_RATIO}x): "
              f"{'met' if met[-1] else 'NOT met'}{each}")
    if app and not args.train:
        p = pct(app["digit_s"], 0.9)
        if n == TARGET_SESSIONS:
            met.append(p <= TARGET_DIGIT_S)
            print(f"  move -> new digit p90: {p * 1000:.0f} ms (target <= {TARGET_DIGIT_S * 1000:.0f} ms): "
                  f"{'met' if met[-1] else 'NOT met'}")
        else:
            print(f"  move -> new digit p90: {p * 1000:.0f} ms (the target, <= {TARGET_DIGIT_S * 1000:.0f} ms, "
                  f"is for {TARGET_SESSIONS} sessions)")
    if app and args.train:
        p = pct(app["commit_s"], 0.9)
        during = app.get("training_at_end")
        met.append(p <= TARGET_TRAIN_COMMIT_S and bool(during))
        print(f"  commit round trip p90 while training: {p * 1000:.0f} ms (target <= {TARGET_TRAIN_COMMIT_S * 1000:.0f} ms)"
              f"{'' if during else ' (training had ended before the last move: not a valid measurement)'}: "
              f"{'met' if met[-1] else 'NOT met'}")
    moved = len(app["commit_s"]) if app else 0
    print(f"  nothing lost: {moved} commits reached Python" + (" and no errors" if not failures else ""))
    print_failures(failures)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help="sessions opened at once (default 10)")
    ap.add_argument("--moves", type=int, default=5, help="z1 key presses per session")
    ap.add_argument("--rounds", type=int, default=None,
                    help="open the floor and the app this many times each, alternating; the ratio is the "
                         "median of each page's per-round p90 (default 3 beside the floor, else 1)")
    ap.add_argument("--no-floor", action="store_true", help="only the app (e.g. --sessions 20)")
    ap.add_argument("--train", action="store_true", help="session 0 trains while the others move (no floor)")
    ap.add_argument("--epochs", type=int, default=2, help="--train: epochs of the training run")
    ap.add_argument("--limit", type=int, default=5000, help="--train: training images")
    add_env_option(ap)
    ap.add_argument("--timeout", type=float, default=240, help="seconds for any one wait")
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.no_floor or args.train else 3
    if args.sessions < (2 if args.train else 1) or args.moves < 1 or args.rounds < 1 or args.timeout <= 0:
        ap.error("--sessions must be at least 1 (2 with --train), --moves and --rounds at least 1")
    res, failures = asyncio.run(run(args))
    report(res, args, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
