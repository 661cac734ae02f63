"""Bits shared by the browser benchmarks (interaction_cost.py, load_test.py, site.py): the server
(devkit.start_server, the one copy), the server's CPU time from /proc, and the test
hooks the explorer exposes with CVAE_TEST_HOOKS=1."""

from __future__ import annotations

from contextlib import contextmanager
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# tests/devkit.py (the server, the data path, the Chromium flags) lives with the tests and is not
# installed; this is the one place the benchmarks find it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from devkit import (CHROMIUM, CHROMIUM_ARGS, REPO, Server, data_dir, serve_folder,  # noqa: E402, F401 (for the benchmarks)
                    start_server)

BARE_PAGE = "benchmarks/bare_page.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The explorer is ready: decoder loaded, digit painted, the scatter hooked.
READY_JS = ("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some("
            "s => s.hasModel && s.paints > 0 && s.scatter)")
# The bare page is ready: the scatter drawn, the image loaded, the slider there.
BARE_READY_JS = """() => { const gd = document.querySelector('.st-key-scatter .js-plotly-plot');
  const img = document.querySelector('[data-testid="stImage"] img');
  return !!(gd && gd._fullLayout && gd.querySelector('canvas') && img && img.complete && img.naturalWidth > 0
            && document.querySelector('.st-key-z1 input[type=range]')); }"""
IDLE_JS = ("() => { const a = document.querySelector('[data-testid=\"stApp\"]'); "
           "return !!a && a.getAttribute('data-test-script-state') === 'notRunning'; }")


RAF_JS = "() => { if (window.__raf === undefined) { window.__raf = 0; const f = () => { window.__raf++; requestAnimationFrame(f); }; requestAnimationFrame(f); } }"


def stat(page) -> dict:
    return page.evaluate("() => ({...cvaeExplorer.stats()[0], raf: window.__raf})")


def fps(page, seconds: float, moves, what: str) -> dict:
    """Drive the mouse through ``moves`` (a list of page points, cycled) for ``seconds``;
    digit repaints, rAF frames, mouse events and scatter draws per second."""
    page.evaluate(RAF_JS)
    s0, t0, n = stat(page), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds and n < 100_000:
        page.mouse.move(*moves[n % len(moves)])
        n += 1
    s1, dt = stat(page), time.perf_counter() - t0
    return {"what": what, "paints": (s1["paints"] - s0["paints"]) / dt, "raf": (s1["raf"] - s0["raf"]) / dt,
            "events": n / dt, "draws": (s1.get("scatterDraws", 0) - s0.get("scatterDraws", 0)) / dt,
            "commits": s1["commits"] - s0["commits"]}


def app_env(runs: Path) -> dict:
    """The app's environment: MNIST from ../shared/mnist ($CVAE_DATA), runs in a temp folder,
    the test hooks on."""
    return {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(runs), "CVAE_TEST_HOOKS": "1"}


def server_env(pairs) -> dict:
    """``["KEY=VALUE", ...]`` (the benchmarks' --env) as a dict; Streamlit reads its options from
    STREAMLIT_<SECTION>_<OPTION> variables, so a setting can be tried without editing config.toml."""
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env wants KEY=VALUE, got {p!r}")
        out[key] = value
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (including threads that have
    ended: Streamlit runs each script run on a thread of its own), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(xs, q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


def med(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def summary(xs, unit: str = "s", scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    if not xs:
        return "n/a"
    f = lambda v: fmt.format(v * scale)  # noqa: E731
    return f"p50 {f(med(xs))}{unit}  p90 {f(pct(xs, 0.9))}{unit}  max {f(max(xs))}{unit}  (n={len(xs)})"


class Quiet:
    """Waits until a server and a page have gone quiet: the server's CPU counter and the
    number of websocket frames both unchanged for ``hold`` seconds (polled every 50 ms),
    bounded by ``timeout``. Returns False when the deadline came first."""

    def __init__(self, pid: int, frames):
        self.pid, self.frames = pid, frames  # frames(): a count that grows with every frame

    def wait(self, hold: float = 0.5, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        last = (cpu_seconds(self.pid), self.frames())
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)  # a polling interval, not a synchronisation: the loop ends on the condition
            now = (cpu_seconds(self.pid), self.frames())
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= hold:
                return True
        return False


def add_env_option(ap) -> None:
    """``--env KEY=VALUE`` (repeatable): extra environment for the servers a benchmark starts."""
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the servers, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false")


def print_failures(failures) -> None:
    if failures:
        print("FAILURES:")
        for f in failures:
            print("  -", f)


@contextmanager
def busy(n: int):
    """``n`` busy processes at normal priority for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()
