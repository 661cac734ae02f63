"""How long a training run from the sidebar takes to start: from ``JobRegistry.start`` (the Train
button) to the trainer's first step, for a server's first run and the runs after it.

The app forks its training processes from a forkserver that has imported torch and the trainer
once (``cvae.training.jobs.training_context``); the other way shown is a process spawned afresh
for every run, which imports torch itself. Each way runs in a fresh Python process, as a fresh
server would, and starts ``--runs`` trainings one after another (the default recipe on MNIST,
each stopped at its first step).

    python benchmarks/job_start.py [--data-dir ../shared/mnist] [--runs 4] [--busy 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import busy, data_dir, med

WAYS = ("forkserver", "spawn")  # the app's way first


def starts(way: str, data: str, runs: int) -> list[float]:
    """Seconds from start() to the first step event, for ``runs`` runs in this process."""
    import cvae
    from cvae.training.jobs import JobRegistry

    reg = JobRegistry(grace_s=60)
    if way != "forkserver":
        reg._ctx = mp.get_context(way)  # the registry's context, here another way for the comparison
    cfg = cvae.TrainConfig.from_recipe(cvae.DEFAULT_RECIPE, device="cpu", film=False)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            t0 = time.perf_counter()
            job = reg.start(cfg, Path(tmp) / f"run{i}.pt", data)
            while job.running and job.last_step is None:
                time.sleep(0.01)
            if job.last_step is None:
                raise SystemExit(f"run {i} ended before its first step: {job.status} {job.error}")
            out.append(time.perf_counter() - t0)
            job.stop()
            if not job.wait(120):
                raise SystemExit(f"run {i} did not stop within 120 s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(data_dir()))
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--busy", type=int, default=0, help="busy processes beside it (a presenter's other programs)")
    ap.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # one way, in this process (the child)
    args = ap.parse_args(argv)
    if args.way:
        print(json.dumps(starts(args.way, args.data_dir, args.runs)))
        return 0
    with busy(args.busy):
        rows = {}
        for way in WAYS:
            r = subprocess.run([sys.executable, __file__, "--way", way, "--data-dir", args.data_dir,
                                "--runs", str(args.runs)], capture_output=True, text=True)
            if r.returncode:
                print(r.stdout + r.stderr, file=sys.stderr)
                return 1
            rows[way] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"Start of a training run to its first step ({args.runs} runs one after another, "
          f"{args.busy} busy process{'es' if args.busy != 1 else ''} beside):")
    print(f"  {'':<34}{'first run':>10}{'later runs (median)':>22}")
    names = {"forkserver": "forked from a forkserver (the app)", "spawn": "spawned afresh"}
    for way, xs in rows.items():
        print(f"  {names[way]:<34}{xs[0]:>9.2f}s{med(xs[1:]) if len(xs) > 1 else float('nan'):>21.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
