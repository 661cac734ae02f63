"""Short training runs under a time budget: does a minute show something?

For each budget and seed, runs the whole command a lecturer would type,

    python -m cvae train --recipe quick --seconds S --seed K --out RUN.pt --quiet

as a child process (so the wall time includes starting Python, importing torch, loading MNIST
and recording the film), then reads the checkpoint back and scores it on all 10,000 test
digits: the test loss (784 * BCE + KL, one z per image, seed 0, as `python -m cvae evaluate`)
and the spread of z_mean along each latent dimension (its standard deviation). A dimension
under 0.5 is called out: the scatter is a smear along it. Prints one row per run and a summary
per budget.

    python benchmarks/quick_train.py --data-dir ../shared/mnist                   # 20/60/120 s x 5 seeds
    python benchmarks/quick_train.py --budgets 60 --avx2                           # as on most laptops
    python benchmarks/quick_train.py --budgets 60 --seeds 0 1 --set lr=3e-3 --set batch_size=128

``--avx2`` runs the children with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 and
``--precision fp32`` (the path of a CPU without native bfloat16). ``--set`` overrides a recipe
value for trying variations (``lr``, ``batch_size``, ``warmup``, ``recipe``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cvae import evaluate, load_checkpoint, load_mnist
from cvae.core.latent import encode_dataset, spread
from devkit import REPO, data_dir

SPREAD_TARGET = 0.5
LOSS_TARGET = 165.0
OPTIONS = {"lr": "--lr", "batch_size": "--batch-size", "warmup": "--warmup", "recipe": "--recipe",
           "schedule": "--schedule", "precision": "--precision"}


def run_one(seconds: float, seed: int, data: Path, extra: list[str], env: dict, out: Path) -> dict:
    cmd = [sys.executable, "-m", "cvae", "train", "--recipe", "quick", "--seconds", f"{seconds:g}", "--seed",
           str(seed), "--data-dir", str(data), "--out", str(out), "--quiet", "--no-download", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {"wall": wall, "stdout": proc.stdout}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(data_dir()))
    p.add_argument("--budgets", type=float, nargs="+", default=[20, 60, 120])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--avx2", action="store_true", help="emulate a CPU without AVX-512 (most laptops)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    args = p.parse_args(argv)
    extra = []
    for kv in args.set:
        key, _, value = kv.partition("=")
        if key not in OPTIONS:
            raise SystemExit(f"--set: one of {sorted(OPTIONS)}, got {key!r}")
        extra += [OPTIONS[key], value]
    env = dict(os.environ)
    if args.avx2:
        env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
        extra += ["--precision", "fp32"]
    data = Path(args.data_dir)
    test_x, _ = load_mnist("test", data, download=False)
    print(f"quick recipe{' ' + ' '.join(extra) if extra else ''}{' (AVX2 emulation)' if args.avx2 else ''}, "
          f"{os.cpu_count()} CPUs; the whole command timed; test loss and spreads over the 10,000 test digits")
    print(f"{'budget':>7} {'seed':>4} {'steps':>6} {'epochs':>6} {'wall s':>7} {'over':>6} {'test loss':>9} "
          f"{'spread z1':>9} {'spread z2':>9}  ok")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.budgets:
            for seed in args.seeds:
                out = Path(tmp) / f"q{seconds:g}_{seed}.pt"
                r = run_one(seconds, seed, data, extra, env, out)
                model = load_checkpoint(out)
                hist = model.meta["history"]
                batch = model.meta["train_config"]["batch_size"]
                steps = sum(-(-h["images"] // batch) for h in hist)
                loss = evaluate(model, test_x, seed=0)["loss"]
                s1, s2 = spread(encode_dataset(model, test_x)[0])
                ok = loss <= LOSS_TARGET and min(s1, s2) >= SPREAD_TARGET
                rows.append(dict(budget=seconds, seed=seed, steps=steps, wall=r["wall"], loss=loss, s1=s1, s2=s2, ok=ok))
                print(f"{seconds:>6g}s {seed:>4} {steps:>6} {len(hist):>6} {r['wall']:>7.1f} "
                      f"{(r['wall'] / seconds - 1):>+6.1%} {loss:>9.2f} {s1:>9.3f} {s2:>9.3f}  {'yes' if ok else 'NO'}",
                      flush=True)
    print("per budget (median over seeds):")
    for seconds in args.budgets:
        rs = [r for r in rows if r["budget"] == seconds]
        print(f"  {seconds:g} s: wall {statistics.median(r['wall'] for r in rs):.1f} s "
              f"(worst {max(abs(r['wall'] / seconds - 1) for r in rs):.1%} off), steps "
              f"{statistics.median(r['steps'] for r in rs):.0f}, test loss {statistics.median(r['loss'] for r in rs):.2f} "
              f"(worst {max(r['loss'] for r in rs):.2f}), smallest spread {min(min(r['s1'], r['s2']) for r in rs):.3f}; "
              f"{sum(r['ok'] for r in rs)} of {len(rs)} runs spread both dimensions >= {SPREAD_TARGET} with loss "
              f"<= {LOSS_TARGET:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
