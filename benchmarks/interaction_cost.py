"""What a latent move, a tab open and a reload cost the server, and how smoothly the page
follows the mouse: the explorer (`streamlit run app.py`) beside a bare floor page
(benchmarks/bare_page.py: the same cached 10,000-point scatter, a slider and an image),
both measured in the same run, in headless Chromium (/usr/bin/chromium, Playwright).

Server CPU is the server process's own user + system time (/proc/PID/stat, all threads), so
the browser and the other processes on the machine do not count in it. A step is over when
it landed and everything went quiet:

- a committed move: one ArrowRight on the z1 slider (the slider's keyboard commit); it landed
  when the page URL's z1 changed (Python's decoder fragment writes it after the commit);
- a tab open: a fresh browser context (nothing cached) until the explorer is ready
  (decoder loaded, digit painted, scatter hooked: the test hooks' stats());
- a reload: the same context reloaded (the weights and encodings are in its IndexedDB);

and then the server's CPU counter and the page's websocket frame count both stood still
for 0.5 s (polled every 50 ms). That catches the follow-ups (the browser asking for assets,
a component's trigger) that a wait on the URL alone would miss, and the counter's 10 ms
ticks are summed over the whole step. Bytes are the websocket frames both ways.

Frames per second: the mouse (Playwright) drags the z1 slider's thumb, hovers the scatter
and drags on it for a few seconds; the page counts its digit repaints (stats().paints) and
its requestAnimationFrame callbacks (the frames it drew).

    python benchmarks/interaction_cost.py [--moves 20] [--opens 3] [--seconds 3] [--compare]

--compare: the app's page with a second model under the same cursor (ui/compare.py: the
shipped model with its decoder's weights nudged, saved in the runs folder and opened with
?compare=second), so each figure includes the second model's share (its weights, encodings and
scatter on a tab open, its canvas's decode at every move).

Exit code 1 when a step never landed or the page showed an error.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path


from _common import (add_env_option, print_failures, BARE_PAGE, BARE_READY_JS, CHROMIUM, CHROMIUM_ARGS, IDLE_JS, READY_JS, Quiet,  # noqa: E402
                     app_env, cpu_seconds, fps, med, server_env, start_server)
from cvae import load_checkpoint, save_checkpoint  # noqa: E402
from cvae.core.shipped import SHIPPED_CHECKPOINT  # noqa: E402
from ui.compare import COMPARE_PARAM  # noqa: E402

TARGETS = {"move_cpu_s": 0.030, "move_bytes": 20_000, "open_cpu_s": 0.3, "open_bytes": 1_500_000,
           "reload_bytes": 300_000}
VIEWPORT = {"width": 1400, "height": 1000}
TIMEOUT_MS = 180_000
class Wire:
    """Websocket frames of one page, both ways (bytes and count)."""

    def __init__(self, page):
        self.bytes = 0
        self.frames = 0
        self.received: list = []  # the frames received, for breakdown()
        page.on("websocket", self._ws)

    def _ws(self, ws):
        ws.on("framereceived", self._add)
        ws.on("framesent", self._add)

        ws.on("framereceived", self._keep)

    def _add(self, payload):
        self.bytes += len(payload)
        self.frames += 1

    def _keep(self, payload):
        self.received.append(payload)


# The app's page with the second model shown too (--compare).
COMPARE_READY_JS = ("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
                    "s => s.hasModel && s.paints > 0 && s.scatter && s.hasModel2 && s.paints2 > 0 && s.scatter2)")
SECOND = "second"  # the second model's file name in the runs folder, and its name in the URL


def second_model(path: Path) -> None:
    """The shipped model with every decoder weight nudged by 1e-4: its payloads have hashes of
    their own (a plain copy would share the first model's, and its weights would never travel)."""
    import torch

    model = load_checkpoint(SHIPPED_CHECKPOINT)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(1e-4)
    save_checkpoint(model, path)


class Bench:
    def __init__(self, browser, server, ready_js: str, failures: list[str], name: str, query: str = ""):
        self.browser, self.server, self.ready_js, self.failures, self.name = browser, server, ready_js, failures, name
        self.pid = server.proc.pid
        self.query = query  # the page's URL query (?compare=...)

    def new_page(self, ctx=None):
        ctx = ctx or self.browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        wire = Wire(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        return ctx, page, wire, errors

    def settle(self, page, wire, what: str) -> None:
        """Wait for the script to be idle, then for the server and the wire to stand still."""
        try:
            page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS, polling=50)
        except Exception:
            self.failures.append(f"{self.name}: the script never went idle after {what}")
        if not Quiet(self.pid, lambda: wire.frames).wait(hold=0.5, timeout=60):
            self.failures.append(f"{self.name}: the server never went quiet after {what}")

    def open(self, ctx=None, reload_page=None) -> dict:
        """A tab open in a fresh context (or a reload of ``reload_page``): CPU, bytes, seconds."""
        if reload_page is None:
            ctx, page, wire, errors = self.new_page(ctx)
        else:
            page, wire, errors = reload_page
            Quiet(self.pid, lambda: wire.frames).wait(hold=0.5, timeout=60)
        b0, c0, t0, r0 = wire.bytes, cpu_seconds(self.pid), time.perf_counter(), len(wire.received)
        if reload_page is None:
            page.goto(self.server.url + self.query)
        else:
            page.reload()
        page.wait_for_function(self.ready_js, timeout=TIMEOUT_MS, polling=50)
        ready = time.perf_counter() - t0
        self.settle(page, wire, "an open")
        out = {"cpu": cpu_seconds(self.pid) - c0, "bytes": wire.bytes - b0, "ready_s": ready,
               "frames": wire.received[r0:]}
        return {**out, "ctx": ctx, "page": page, "wire": wire, "errors": errors}

    def moves(self, page, wire, n: int, slider, landed_js: str, value_js: str) -> list[dict]:
        """n presses of ArrowRight on ``slider``; each until ``landed_js(previous value)`` and quiet."""
        out = []
        for i in range(n):
            Quiet(self.pid, lambda: wire.frames).wait(hold=0.5, timeout=60)
            before = page.evaluate(value_js)
            slider.focus()
            b0, c0, t0, r0 = wire.bytes, cpu_seconds(self.pid), time.perf_counter(), len(wire.received)
            page.keyboard.press("ArrowRight")
            try:
                page.wait_for_function(landed_js, arg=before, timeout=60_000, polling=20)
            except Exception:
                self.failures.append(f"{self.name}: move {i + 1} never landed (value stayed {before!r})")
                continue
            landed = time.perf_counter() - t0
            self.settle(page, wire, f"move {i + 1}")
            out.append({"cpu": cpu_seconds(self.pid) - c0, "bytes": wire.bytes - b0, "landed_s": landed,
                        "frames": wire.received[r0:]})
        return out


APP_Z1_JS = "() => new URLSearchParams(location.search).get('z1')"
APP_LANDED_JS = "(b) => new URLSearchParams(location.search).get('z1') !== b"
BARE_VALUE_JS = "() => { const c = [...document.querySelectorAll('[data-testid=\"stImageCaption\"], [data-testid=\"stCaptionContainer\"]')].map(e => e.textContent).find(t => t.startsWith('z1 =')); return c || null; }"
BARE_LANDED_JS = f"(b) => {{ const v = ({BARE_VALUE_JS})(); return v !== null && v !== b; }}"


def breakdown(frames) -> list[tuple[str, int, int]]:
    """What Streamlit sent, by kind: (kind, messages, bytes), largest first. A kind is the
    ForwardMsg type, and for a delta the element's type (plus the component's name)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    out: dict[str, list[int]] = {}
    for payload in frames:
        if isinstance(payload, str):
            continue
        try:
            msg = ForwardMsg.FromString(payload)
        except Exception:  # not a ForwardMsg: counted as such
            kind = "other"
        else:
            kind = msg.WhichOneof("type") or "?"
            if kind == "delta":
                d = msg.delta
                sub = d.WhichOneof("type") or "?"
                if sub == "new_element":
                    el = d.new_element.WhichOneof("type") or "?"
                    comp = getattr(d.new_element, el, None)
                    name = getattr(comp, "component_name", "") if comp is not None else ""
                    kind = f"element {el}" + (f" ({name})" if name else "")
                else:
                    kind = sub
        row = out.setdefault(kind, [0, 0])
        row[0] += 1
        row[1] += len(payload)
    return sorted(((k, n, b) for k, (n, b) in out.items()), key=lambda r: -r[2])


def measure_fps(bench: Bench, page, wire, seconds: float) -> list[dict]:
    out = []
    quiet = lambda: Quiet(bench.pid, lambda: wire.frames).wait(hold=0.5, timeout=60)  # noqa: E731
    # 1. Dragging the z1 slider's thumb back and forth (mouse down, small moves).
    slider = page.get_by_role("slider", name="z1", exact=True)
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    lo, hi = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    v = float(slider.input_value())
    thumb = 16  # Chromium's range thumb: its centre runs half a thumb in from each end
    x0 = box["x"] + thumb / 2 + (v - lo) / (hi - lo) * (box["width"] - thumb)
    y = box["y"] + box["height"] / 2
    amp = min(60.0, box["width"] / 4)
    path = [(x0 + amp * math.sin(k / 40 * 2 * math.pi), y) for k in range(40)]
    quiet()
    page.mouse.move(x0, y)
    page.mouse.down()
    out.append(fps(page, seconds, path, "dragging the z1 slider"))
    page.mouse.up()
    bench.settle(page, wire, "the slider drag's release")
    # 2. Hovering the scatter (a circle through the cloud, anywhere on the plane).
    circle = [[1.8 * math.cos(k / 60 * 2 * math.pi), 1.8 * math.sin(k / 60 * 2 * math.pi)] for k in range(60)]
    path = page.evaluate("(pts) => pts.map(([a, b]) => cvaeExplorer.scatterPx(a, b))", circle)
    page.mouse.move(*path[0])
    out.append(fps(page, seconds, path, "hovering the scatter"))
    # 3. Dragging on the scatter (press, move the point around the circle, release: one commit).
    page.mouse.down()
    out.append(fps(page, seconds, path, "dragging on the scatter"))
    page.mouse.up()
    page.mouse.move(5, 5)
    bench.settle(page, wire, "the scatter drag's release")
    return out


def fmt_ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def fmt_b(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} KB"


def run(args) -> int:
    from playwright.sync_api import sync_playwright

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cvae-cost-") as tmp, sync_playwright() as pw:
        tmp = Path(tmp)
        extra = server_env(args.env)
        bare_srv = start_server(BARE_PAGE, extra, log=tmp / "bare.log")
        if args.compare:
            (tmp / "runs").mkdir()
            second_model(tmp / "runs" / f"{SECOND}.pt")
        app_srv = start_server("app.py", {**app_env(tmp / "runs"), **extra}, log=tmp / "app.log")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        res: dict = {}
        try:
            app_ready, app_query = (COMPARE_READY_JS, f"/?{COMPARE_PARAM}={SECOND}") if args.compare else (READY_JS, "")
            for name, srv, ready, query in (("bare", bare_srv, BARE_READY_JS, ""), ("app", app_srv, app_ready, app_query)):
                bench = Bench(browser, srv, ready, failures, name, query)
                cold = bench.open()  # the server's first page: imports, caches, the figure
                cold["ctx"].close()
                opens = []
                for _ in range(args.opens):
                    if opens:
                        opens[-1]["ctx"].close()
                    opens.append(bench.open())
                last = opens[-1]
                reloads = [bench.open(reload_page=(last["page"], last["wire"], last["errors"]))
                           for _ in range(args.opens)]
                page, wire = last["page"], last["wire"]
                # The server's own background rate with one tab open and nothing happening.
                Quiet(bench.pid, lambda wire=wire: wire.frames).wait(hold=0.5, timeout=60)
                c0, t0 = cpu_seconds(bench.pid), time.perf_counter()
                page.wait_for_timeout(3000)  # an idle window measured, not a synchronisation
                idle = (cpu_seconds(bench.pid) - c0) / (time.perf_counter() - t0)
                if name == "app":
                    slider = page.get_by_role("slider", name="z1", exact=True)
                    moves = bench.moves(page, wire, args.moves, slider, APP_LANDED_JS, APP_Z1_JS)
                    res["fps"] = measure_fps(bench, page, wire, args.seconds)
                    res["decode_ms"] = page.evaluate("() => cvaeExplorer.timeDecode(200)")
                    if page.get_by_test_id("stException").count():
                        failures.append("app: the page shows an exception box")
                else:
                    slider = page.locator(".st-key-z1 input[type=range]")
                    moves = bench.moves(page, wire, args.moves, slider, BARE_LANDED_JS, BARE_VALUE_JS)
                for e in last["errors"]:
                    failures.append(f"{name}: page error: {e}")
                last["ctx"].close()
                res[name] = {"idle": idle, "cold": cold, "opens": opens, "reloads": reloads, "moves": moves}
                if "Traceback" in srv.log_text():
                    failures.append(f"{name}: the server log has a Traceback ({srv.log})")
        finally:
            browser.close()
            bare_srv.stop()
            app_srv.stop()
    report(res, args, failures)
    return 1 if failures else 0


def report(res: dict, args, failures: list[str]) -> None:
    def fig(name, kind, key):
        xs = [r[key] for r in res.get(name, {}).get(kind, [])]
        return med(xs) if xs else float("nan")

    rows = [
        ("server CPU per committed move", "moves", "cpu", fmt_ms, "move_cpu_s", f"median of {args.moves}"),
        ("websocket per committed move", "moves", "bytes", fmt_b, "move_bytes", f"median of {args.moves}"),
        ("server CPU per tab open", "opens", "cpu", fmt_ms, "open_cpu_s", f"median of {args.opens}"),
        ("websocket per tab open", "opens", "bytes", fmt_b, "open_bytes", f"median of {args.opens}"),
        ("websocket per reload (assets cached)", "reloads", "bytes", fmt_b, "reload_bytes", f"median of {args.opens}"),
        ("server CPU per reload", "reloads", "cpu", fmt_ms, None, f"median of {args.opens}"),
        ("tab open -> ready (wall)", "opens", "ready_s", lambda s: f"{s:.2f} s", None, "busy shared machine"),
        ("committed move -> URL updated (wall)", "moves", "landed_s", fmt_ms, None, "incl. Playwright polling"),
    ]
    print("Interaction cost: the explorer (app.py) beside the bare page (benchmarks/bare_page.py: the same")
    print("cached 10k-point scatter, a slider, an image), headless Chromium, one run, one machine.")
    print("Server CPU: the server process's user+system time (/proc). A move on the bare page is a rerun")
    print("from its st.slider; on the app, a commit from the explorer's z1 slider (keyboard).")
    if args.env:
        print(f"both servers with {' '.join(args.env)}")
    if args.compare:
        print("the app with a second model under the same cursor (--compare: its canvas decodes at every move)")
    print()
    print(f"{'':40s} {'app':>11s} {'bare page':>11s} {'target':>11s}  met")
    met_all = []
    for label, kind, key, f, tkey, note in rows:
        a, b = fig("app", kind, key), fig("bare", kind, key)
        t = TARGETS.get(tkey) if tkey else None
        ok = "" if t is None else ("yes" if a <= t else "NO")
        if t is not None:
            met_all.append(ok == "yes")
        tt = "" if t is None else "<= " + f(t)
        print(f"{label:40s} {f(a):>11s} {f(b):>11s} {tt:>11s}  {ok:3s}  ({note})")
    for name in ("app", "bare"):
        c = res.get(name, {}).get("cold")
        if c:
            print(f"first open after the server started ({name}): {fmt_ms(c['cpu'])} CPU, {fmt_b(c['bytes'])}, "
                  f"ready in {c['ready_s']:.1f} s (imports, caches, figure built)")
    print("server CPU while idle, one tab open: " + ", ".join(
        f"{n} {res[n]['idle'] * 1000:.0f} ms/s" for n in ("app", "bare") if n in res)
        + " (the 0.5 s quiet hold after each step adds at most half of that)")
    if res.get("app", {}).get("moves"):
        m = res["app"]["moves"]
        print(f"app per committed move, mean: {fmt_ms(sum(r['cpu'] for r in m) / len(m))} CPU, "
              f"{fmt_b(sum(r['bytes'] for r in m) / len(m))}; max {fmt_ms(max(r['cpu'] for r in m))}, "
              f"{fmt_b(max(r['bytes'] for r in m))}")
    for kind, what in (("moves", "one committed move"), ("reloads", "a reload"), ("opens", "a tab open")):
        m = res.get("app", {}).get(kind)
        if m:
            rows = breakdown(m[-1]["frames"])
            print(f"what the app's server sends for {what} (the last one; kinds over 1 KB):")
            for k, n, b in rows:
                if b >= 1000:
                    print(f"  {k:44s} {n:3d} message(s) {fmt_b(b):>10s}")
    if res.get("fps"):
        print()
        print(f"In the browser (decode {res.get('decode_ms', float('nan')):.2f} ms per digit, timeDecode(200)); "
              f"{args.seconds:.0f} s of mouse moves each:")
        print(f"{'':28s} {'mouse events/s':>15s} {'digit paints/s':>15s} {'frames/s (rAF)':>15s} {'marker draws/s':>15s}")
        for r in res["fps"]:
            print(f"{r['what']:28s} {r['events']:15.1f} {r['paints']:15.1f} {r['raf']:15.1f} {r['draws']:15.1f}")
    print()
    print(f"targets met: {sum(met_all)} of {len(met_all)}")
    print_failures(failures)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20, help="committed moves measured (median)")
    ap.add_argument("--opens", type=int, default=3, help="tab opens and reloads measured (median)")
    add_env_option(ap)
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of mouse moves per fps figure")
    ap.add_argument("--compare", action="store_true", help="the app with a second model shown (ui/compare.py)")
    args = ap.parse_args(argv)
    if args.moves < 1 or args.opens < 1 or args.seconds <= 0:
        ap.error("--moves and --opens must be at least 1, --seconds positive")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
