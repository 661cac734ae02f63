"""A class on one server: Locust users that speak Streamlit's websocket protocol with no
browser (benchmarks/locustfile.py), against `streamlit run app.py` and, side by side in the
same run, against the bare Streamlit page (benchmarks/bare_page.py) under the same load.

Each scenario starts a fresh server, opens one tab on it first (its caches warm), then runs
Locust headless: --users users open the page within --ramp seconds, then each commits a move
every 1-3 s for --minutes. Printed: sessions opened, commits made and failed (a failure is a
commit lost or not echoed with its point, a session that errored or closed), open and commit
round-trip percentiles (Locust's), the server's peak memory (its process's VmRSS, sampled
every 0.5 s) and its CPU per commit.

    python benchmarks/class_load.py                       # 100 users, the app beside the floor
    python benchmarks/class_load.py --train               # ... while one of them trains from the sidebar
    python benchmarks/class_load.py --knee 100,200,300    # more users until commit p90 passes 1 s
    python benchmarks/class_load.py --knee 300 --profile 30   # py-spy: where the server's time goes
    python benchmarks/class_load.py --host http://127.0.0.1:8080 --no-floor   # an existing server (nginx)

Exit code 1 when something was lost or failed.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from _common import BARE_PAGE, CHROMIUM, CHROMIUM_ARGS, READY_JS, app_env, cpu_seconds, start_server

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
TARGETS = {"commit_p90_ms": 250, "open_p90_s": 5.0, "rss_gb": 1.2, "train_commit_p90_ms": 500, "knee_p90_ms": 1000}


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    """The server's peak resident memory while the load runs."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return
            self.stop.wait(0.5)


def locust(host: str, user_class: str, users: int, ramp: float, seconds: float, prefix: Path) -> dict:
    rate = max(users / ramp, 0.1)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", f"{rate:.3f}",
           "-t", f"{int(ramp + seconds)}s", "--host", host, "--csv", str(prefix), "--only-summary",
           "--stop-timeout", "10", "--loglevel", "WARNING", user_class]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    rows = {row["Name"]: row for row in csv.DictReader(open(f"{prefix}_stats.csv"))}
    fails = list(csv.DictReader(open(f"{prefix}_failures.csv")))
    exc = [row for row in csv.DictReader(open(f"{prefix}_exceptions.csv"))] if Path(f"{prefix}_exceptions.csv").is_file() else []
    out = {"rc": r.returncode, "stderr": r.stderr[-2000:], "failures": fails, "exceptions": exc}
    for name in ("open", "commit", "poll"):
        row = rows.get(name, {})
        out[name] = {"n": int(row.get("Request Count", 0) or 0), "failed": int(row.get("Failure Count", 0) or 0),
                     **{q: float(row.get(q, "nan") or "nan") for q in ("50%", "90%", "99%", "100%")}}
    return out


def start_trainer(url: str, epochs: int, timeout_s: float):
    """A real browser session starts a run from the sidebar, as a person does; returns a stop()."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(timeout_s * 1000)
    page.goto(url)
    page.wait_for_function(READY_JS)
    side = page.locator('[data-testid="stSidebar"]')
    side.get_by_text("Train a new model").click()
    side.get_by_text("Epochs", exact=True).click()  # the radio: epochs, not the quick minute
    box = side.locator('input[aria-label^="Epochs"]').first
    box.fill(str(epochs))
    box.press("Tab")
    side.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training:", exact=False).first.wait_for()

    def running() -> bool:
        return page.get_by_text("Training:", exact=False).count() > 0

    def stop() -> None:
        try:
            button = page.get_by_role("button", name="Stop training")
            if button.count():
                button.first.click()
        finally:
            browser.close()
            pw.stop()

    return running, stop


def scenario(name: str, script: str | None, user_class: str, users: int, args, tmp: Path, train: bool = False,
             profile: float = 0.0) -> dict:
    env = app_env(tmp / f"runs-{name}") if script == "app.py" else {}
    server = start_server(script, env, log=tmp / f"{name}.log") if script else None
    host = server.url if server else args.host
    res = {"name": name, "users": users}
    trainer = None
    try:
        if server:  # one tab first: the server's caches warm, as for a lecturer's own tab
            from streamlit_ws import Tab

            t = Tab(host, timeout=120)
            t.open()
            t.close()
            cpu0 = cpu_seconds(server.proc.pid)
            sampler = Sampler(server.proc.pid)
            sampler.start()
        if train:
            running, trainer = start_trainer(host, args.epochs, 180)
        prof = None
        if profile and server:
            prof_out = Path(args.profile_out or tmp / f"{name}.profile.txt")
            prof = subprocess.Popen(["py-spy", "record", "-p", str(server.proc.pid), "-d", str(int(profile)),
                                     "-f", "raw", "-o", str(prof_out), "-r", "50", "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = locust(host, user_class, users, args.ramp, args.minutes * 60, tmp / name)
        res.update(out)
        if train:
            res["still_training"] = running()
        if prof is not None:
            prof.wait(timeout=profile + 60)
            res["profile"] = top_frames(prof_out)
        if server:
            sampler.stop.set()
            res["rss"] = sampler.peak
            res["cpu_s"] = cpu_seconds(server.proc.pid) - cpu0
            res["tracebacks"] = server.log_text().count("Traceback")
    finally:
        if trainer:
            trainer()
        if server:
            server.stop()
    return res


def top_frames(path: Path, n: int = 10) -> list[tuple[str, float]]:
    """py-spy's raw (collapsed) stacks of the server: the share of samples spent in each function
    itself (the stack's last frame), and in each of the project's functions with what they call,
    largest first."""
    leaf, mine, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c, frames = int(count), stack.split(";")
        total += c
        names = []
        for f in frames:
            fn, _, where = f.partition(" (")
            file = where.split(":")[0]
            names.append((f"{fn} ({Path(file).name})", file))
        leaf[names[-1][0]] += c
        for key in {k for k, file in names if "/ui/" in file or "/cvae/" in file or file.endswith("app.py")}:
            mine[key] += c
    total = max(total, 1)
    return ([("self: " + k, v / total) for k, v in leaf.most_common(n)]
            + [("with callees: " + k, v / total) for k, v in mine.most_common(n)])


def line(res: dict) -> str:
    o, c = res["open"], res["commit"]
    rss = f"{res['rss'] / 1e9:.2f} GB" if "rss" in res else "-"
    cpu = f"{1000 * res['cpu_s'] / max(c['n'], 1):.1f} ms" if "cpu_s" in res else "-"
    return (f"  {res['name']:<18}{res['users']:>6}{o['n'] - o['failed']:>6}/{o['n']:<5}{o['50%'] / 1000:>7.2f}{o['90%'] / 1000:>7.2f}"
            f"{c['n']:>8}{c['failed']:>6}{c['50%']:>7.0f}{c['90%']:>7.0f}{c['99%']:>7.0f}{rss:>10}{cpu:>10}")


HEADER = (f"  {'':<18}{'users':>6}{'opened':>12}{'open s':>7}{'':>7}{'commits':>8}{'lost':>6}{'commit ms':>14}{'':>7}"
          f"{'peak RSS':>10}{'CPU/commit':>11}\n  {'':<18}{'':>6}{'':>12}{'p50':>7}{'p90':>7}{'':>8}{'':>6}{'p50':>7}{'p90':>7}"
          f"{'p99':>7}")


def problems(res: dict) -> list[str]:
    out = []
    if res["open"]["n"] != res["users"] or res["open"]["failed"]:
        out.append(f"{res['name']}: {res['open']['n'] - res['open']['failed']} of {res['users']} sessions opened")
    if res["commit"]["failed"]:
        out.append(f"{res['name']}: {res['commit']['failed']} commits lost or failed")
    for f in res["failures"][:5]:
        out.append(f"{res['name']}: {f.get('Name')}: {f.get('Error', '')[:200]} (x{f.get('Occurrences')})")
    if res.get("tracebacks"):
        out.append(f"{res['name']}: {res['tracebacks']} tracebacks in the server's log")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--ramp", type=float, default=30, help="seconds over which the users open the page")
    ap.add_argument("--minutes", type=float, default=2, help="minutes of moves after the ramp")
    ap.add_argument("--no-floor", action="store_true", help="the app only, not the bare page beside it")
    ap.add_argument("--train", action="store_true", help="one real browser trains a model from the sidebar meanwhile")
    ap.add_argument("--epochs", type=int, default=12,
                    help="the training run's epochs (--train; enough to outlast the load)")
    ap.add_argument("--knee", help="user counts to run in turn, e.g. 100,200,300 (stops past commit p90 1 s)")
    ap.add_argument("--profile", type=float, default=0, help="py-spy the server for this many seconds of each run")
    ap.add_argument("--profile-out", help="keep py-spy's collapsed stacks in this file")
    ap.add_argument("--host", help="load an existing server at this URL (e.g. nginx before replicas)")
    args = ap.parse_args(argv)
    results, lost = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.host:
            results.append(scenario("given host", None, "ExplorerUser", args.users, args, tmp))
        elif args.knee:
            for n in (int(v) for v in args.knee.split(",")):
                res = scenario(f"app, {n} users", "app.py", "ExplorerUser", n, args, tmp, profile=args.profile)
                results.append(res)
                print(HEADER if len(results) == 1 else "", line(res), sep="\n" if len(results) == 1 else "", flush=True)
                if res["commit"]["90%"] > TARGETS["knee_p90_ms"]:
                    break
        else:
            results.append(scenario("app" + (", training" if args.train else ""), "app.py", "ExplorerUser", args.users,
                                    args, tmp, train=args.train, profile=args.profile))
            if not args.no_floor and not args.train:
                results.append(scenario("bare page", BARE_PAGE, "BareUser", args.users, args, tmp))
    print(f"\n{args.users if not args.knee else 'N'} users opening within {args.ramp:.0f} s, then a commit every 1-3 s "
          f"each for {args.minutes:g} min (Locust, {os.cpu_count()} cores shared by the server and the load):")
    print(HEADER)
    for res in results:
        print(line(res))
        lost += problems(res)
        p = res.get("poll", {})
        if p.get("n"):
            print(f"  {'':<18}the training run's progress, polled by every tab every 5 s: {p['n']} polls, "
                  f"{p['failed']} failed, p50 {p['50%']:.0f} ms, p90 {p['90%']:.0f} ms")
        if "still_training" in res:
            print(f"  the training run was {'still running' if res['still_training'] else 'over'} at the end")
        for fn, share in res.get("profile", []):
            print(f"    {share:6.1%}  {fn}")
    print("\nTargets: commit p90 <= 250 ms, open p90 <= 5 s, server <= 1.2 GB; while training: commit p90 <= 500 ms.")
    for p in lost:
        print("LOST:", p)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
