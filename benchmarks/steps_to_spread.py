"""How many optimizer steps the quick recipe needs before both latent dimensions spread.

A time budget buys steps; whether the scatter shows ten clouds depends on how many. For each
step count and seed this trains the quick recipe (``RECIPES["quick"]`` in cvae.training.config,
its warm-ups and cosine stretched over exactly that many steps) in-process, with no film, and scores the model on all 10,000 test
digits: the spread (standard deviation of z_mean) along each dimension and the test loss. The
smallest count at which every seed spreads both dimensions to at least 0.5 is the recipe's
``SPREAD_STEPS`` (cvae.training.config), which the form and the CLI compare with the steps a
budget fits before a run starts. Steps, not seconds: the result does not depend on the machine
or its load.

    python benchmarks/steps_to_spread.py --steps 400 600 800 1000 1200 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from cvae import TrainConfig, evaluate, load_mnist, train
from cvae.core.latent import encode_dataset, spread
from cvae.training.callbacks import Callback
from _common import data_dir

SPREAD_TARGET = 0.5


class FixedSteps(Callback):
    """Plan the run for exactly ``n`` optimizer steps (the schedule stretches over them)."""

    def __init__(self, n: int):
        self.n = n

    def on_start(self, run):
        run.total_steps = self.n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(data_dir()))
    p.add_argument("--steps", type=int, nargs="+", default=[400, 600, 800, 1000, 1200])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value (lr, warmup, kl_warmup, batch_size) to try a variation")
    args = p.parse_args(argv)
    over = {}
    for kv in args.set:
        key, _, value = kv.partition("=")
        over[key] = int(value) if key == "batch_size" else float(value)
    train_x, _ = load_mnist("train", args.data_dir, download=False)
    test_x, _ = load_mnist("test", args.data_dir, download=False)
    print(f"quick recipe{' ' + ' '.join(args.set) if args.set else ''} for a fixed number of steps, precision "
          f"{args.precision}; spreads and loss over the 10,000 test digits")
    print(f"{'steps':>6} {'seed':>4} {'test loss':>9} {'spread z1':>9} {'spread z2':>9}  spread  train s")
    rows = []
    for n in args.steps:
        for seed in args.seeds:
            cfg = dataclasses.replace(TrainConfig.from_recipe("quick", seed=seed, film=False, precision=args.precision,
                                                              **over),
                                      seconds=None)
            t0 = time.perf_counter()
            res = train(cfg, train_x, test_x, callbacks=[FixedSteps(n)])
            secs = time.perf_counter() - t0
            s1, s2 = spread(encode_dataset(res.model, test_x)[0])
            loss = evaluate(res.model, test_x, seed=0)["loss"]
            ok = min(s1, s2) >= SPREAD_TARGET
            rows.append(dict(steps=n, seed=seed, loss=loss, s1=s1, s2=s2, ok=ok))
            print(f"{n:>6} {seed:>4} {loss:>9.2f} {s1:>9.3f} {s2:>9.3f}  {'yes' if ok else 'NO ':>6} {secs:>7.1f}",
                  flush=True)
    print("per step count:")
    enough = None
    for n in args.steps:
        rs = [r for r in rows if r["steps"] == n]
        good = sum(r["ok"] for r in rs)
        print(f"  {n} steps: {good} of {len(rs)} seeds spread both dimensions >= {SPREAD_TARGET}; median test "
              f"loss {statistics.median(r['loss'] for r in rs):.2f}, smallest spread "
              f"{min(min(r['s1'], r['s2']) for r in rs):.3f}")
        if good == len(rs) and enough is None:
            enough = n
    print(f"fewest steps at which every seed spread: {enough}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
