"""The training child's CPU priority: what the class's commits and the run each get.

The app trains in a child process at ``CHILD_NICE`` (cvae.training.jobs). A high niceness hands the
cores to whatever else runs: the server's commits come first, and so does any other program on the
presenter's laptop. For each niceness given, a fresh server (`streamlit run app.py` with
CVAE_TRAIN_NICE set) gets one real Chromium tab that starts a long Quick run from the sidebar with
the live film showing; the run's pace is read off the page's progress line ("epoch E, step S/N").
First the tab alone (the run's idle pace, the page drawing the film); then 10 Locust users
(benchmarks/locustfile.py, Streamlit's own protocol) open the page and commit a move every 1-3 s,
and the run's pace and the commits' round trips are measured together.

``--busy N`` adds N busy processes at normal priority for the whole measurement (the presenter's
other programs), where the niceness decides who gets the contested core.

    python benchmarks/train_priority.py --nice 10 5 0
    python benchmarks/train_priority.py --nice 10 5 0 --busy 1
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import CHROMIUM, CHROMIUM_ARGS, READY_JS, app_env, busy, start_server
from class_load import locust

TARGETS = {"commit_p90_ms": 250, "kept": 0.60}
STEP_RE = re.compile(r"epoch (\d+)/\S+, step (\d+)/(\d+)")


def one(nice: int, args, tmp: Path) -> dict:
    from playwright.sync_api import sync_playwright

    server = start_server("app.py", {**app_env(tmp / f"runs{nice}"), "CVAE_TRAIN_NICE": str(nice)},
                          log=tmp / f"app{nice}.log")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(server.url)
        page.wait_for_function(READY_JS)
        side = page.locator('[data-testid="stSidebar"]')
        if side.get_by_role("button", name="Train", exact=True).count() == 0:
            side.get_by_text("Train a new model").click()
        box = side.locator('input[aria-label^="Seconds"]').first
        box.fill(str(int(args.alone + args.loaded + 120)))
        box.press("Tab")
        side.get_by_role("button", name="Train", exact=True).click()
        samples: list[tuple[float, int]] = []

        def sample_until(t_end: float) -> None:  # Playwright's page belongs to this thread: sample here
            while time.perf_counter() < t_end:
                m = STEP_RE.search(side.inner_text())
                if m:
                    samples.append((time.perf_counter(), (int(m[1]) - 1) * int(m[3]) + int(m[2])))
                page.wait_for_timeout(1000)

        page.wait_for_function("() => /step \\d+\\//.test(document.body.innerText)")
        sample_until(time.perf_counter() + 5)  # past the pacer's first probe
        t0 = time.perf_counter()
        sample_until(t0 + args.alone)
        t1 = time.perf_counter()
        result: dict = {}
        load = threading.Thread(target=lambda: result.update(
            locust(server.url, "ExplorerUser", args.users, 5, args.loaded, tmp / f"nice{nice}")), daemon=True)
        load.start()
        sample_until(t1 + 8)  # the users open the page
        t2 = time.perf_counter()
        load_end = t1 + 5 + args.loaded
        sample_until(load_end - 1)
        t3 = time.perf_counter()
        load.join(timeout=120)

        def rate(a: float, b: float) -> float:
            pts = [(t, s) for t, s in samples if a <= t <= b]
            return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]) if len(pts) >= 2 else float("nan")

        alone, loaded = rate(t0, t1), rate(t2, t3)
        commit = result.get("commit", {})
        return {"nice": nice, "alone": alone, "loaded": loaded, "kept": loaded / alone, "commits": commit.get("n", 0),
                "failed": commit.get("failed", 0), "p50": commit.get("50%"), "p90": commit.get("90%"),
                "p99": commit.get("99%")}
    finally:
        browser.close()
        pw.stop()
        server.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nice", type=int, nargs="+", default=[10, 5, 0])
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--alone", type=float, default=25, help="seconds of the run with only its own tab")
    p.add_argument("--loaded", type=float, default=45, help="seconds of the users' moves")
    p.add_argument("--busy", type=int, default=0, help="busy processes at normal priority beside it all")
    args = p.parse_args(argv)
    print(f"the app's training child at each niceness, {args.busy} busy process(es) beside: its pace alone (its tab "
          f"drawing the live film), then with {args.users} users committing moves every 1-3 s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, busy(args.busy):
        for nice in args.nice:
            r = one(nice, args, Path(tmp))
            rows.append(r)
            print(f"  nice {nice:>2}: {r['alone']:6.1f} steps/s alone, {r['loaded']:6.1f} with the class "
                  f"({r['kept']:.0%} kept); commits {r['commits']} ({r['failed']} failed), p50/p90/p99 "
                  f"{r['p50']:.0f}/{r['p90']:.0f}/{r['p99']:.0f} ms", flush=True)
    good = [r for r in rows if r["p90"] <= TARGETS["commit_p90_ms"] and r["kept"] >= TARGETS["kept"]
            and not r["failed"]]
    print(f"Targets: commit p90 <= {TARGETS['commit_p90_ms']} ms while training, the run keeps >= "
          f"{TARGETS['kept']:.0%} of its pace alone. Meeting both: "
          + (", ".join(f"nice {r['nice']}" for r in good) or "none"))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
