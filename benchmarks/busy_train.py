"""Training speed alone and beside busy programs: does any path fall off a cliff?

For each load (0, 1, ... busy processes at normal priority, each a plain `while True: pass`) and
each way of training, a fresh child process trains the quick recipe on MNIST and counts its
optimizer steps over --seconds of wall time after a warm-up (no epoch ends inside the window, so
no evaluation is counted). The ways:

* auto: what `python -m cvae train` does by default: the pacer (cvae.training.pace) chooses the
  arithmetic (bfloat16 products where native, or the stock layers) and the threads from the
  measured pace, and chooses again when the load changes;
* fp32 auto / bf16 auto: one arithmetic, the pacer choosing the threads;
* fp32 split: the stock layers with the batch split over one thread per core (the fp32 path's
  fixed setting before the pacer); bf16 all-cores: bfloat16 products, one thread handing each op to
  torch's intra-op threads (the bf16 path's fixed setting before the pacer);
* plain: the straightforward PyTorch loop (benchmarks/train_speed.py's reference: DataLoader,
  nn layers, Adam), batch 32.

Printed: steps/s per way and load, each load's share of the way's idle rate, and auto against the
best fixed stock-layer way at the same load. bfloat16 is left out where the CPU does not multiply
it natively (it is many times slower there and `auto` never takes it) unless --bf16.

    python benchmarks/busy_train.py                       # loads 0 and 1
    python benchmarks/busy_train.py --loads 0 1 2 --seconds 15
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/busy_train.py   # the AVX2 path
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import REPO, busy, data_dir

WAYS = {  # name: TrainConfig overrides (None: the plain PyTorch loop)
    "auto": {},
    "fp32 auto": {"precision": "fp32"},
    "fp32 split": {"precision": "fp32", "workers": 2},
    "bf16 auto": {"precision": "bf16"},
    "bf16 all-cores": {"precision": "bf16", "workers": 1},
    "plain": None,
}
BF16_WAYS = ("bf16 auto", "bf16 all-cores")
KEEP_TARGET = 0.40  # under one busy process, each way keeps at least this share of its idle steps/s


def child(way: dict | None, seconds: float, warm: float, data: str) -> dict:
    """Steps/s of one way over ``seconds`` after ``warm`` seconds (runs in a fresh process)."""
    import torch

    from cvae import TrainConfig, load_mnist, train
    from cvae.training.callbacks import Callback

    if way is None:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from train_speed import Reference

        ref = Reference(data, seed=0)
        t_end = time.perf_counter() + warm
        while time.perf_counter() < t_end:
            ref.run(32)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n += ref.run(32) // 32
        return {"steps_per_s": n / (time.perf_counter() - t0), "ways": "plain PyTorch loop"}

    class Window(Callback):
        def __init__(self):
            self.t0 = self.n0 = None
            self.t_start = time.perf_counter()

        def on_step(self, run, event):
            now = time.perf_counter()
            if self.t0 is None and now - self.t_start >= warm:
                self.t0, self.n0 = now, run.global_step
            if self.t0 is not None and now - self.t0 >= seconds:
                self.rate = (run.global_step - self.n0) / (now - self.t0)
                self.ways = run.step.summary()
                return False

    train_x, _ = load_mnist("train", data, download=False)
    test_x, _ = load_mnist("test", data, download=False)
    cfg = TrainConfig.from_recipe("quick", film=False, **way)
    w = Window()
    train(cfg, train_x, test_x[:500], callbacks=[w])
    return {"steps_per_s": w.rate, "ways": w.ways, "threads": torch.get_num_threads()}


def measure(name: str, seconds: float, warm: float, data: str) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(WAYS[name]), "--seconds", str(seconds), "--warm",
           str(warm), "--data-dir", data]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(data_dir()))
    p.add_argument("--loads", type=int, nargs="+", default=[0, 1], help="busy processes beside the run")
    p.add_argument("--seconds", type=float, default=12.0, help="the measured window of each run")
    p.add_argument("--warm", type=float, default=3.0, help="seconds of each run before the window")
    p.add_argument("--ways", nargs="+", choices=list(WAYS), help="default: all (bf16 only where native)")
    p.add_argument("--bf16", action="store_true", help="measure the bfloat16 ways even where not native")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child), args.seconds, args.warm, args.data_dir)))
        return 0

    from cvae.training.gemm import native_bf16

    native = native_bf16()
    names = args.ways or [n for n in WAYS if native or args.bf16 or n not in BF16_WAYS]
    isa = os.environ.get("ATEN_CPU_CAPABILITY", "default")
    print(f"{os.cpu_count()} CPUs, native bfloat16: {'yes' if native else 'no'}, ATEN_CPU_CAPABILITY={isa}; "
          f"steps/s of the quick recipe (batch 32) over {args.seconds:g} s after {args.warm:g} s")
    rates: dict[tuple[str, int], float] = {}
    for load in args.loads:
        with busy(load):
            for name in names:
                r = measure(name, args.seconds, args.warm, args.data_dir)
                rates[name, load] = r["steps_per_s"]
                print(f"  load {load}  {name:<15} {r['steps_per_s']:7.1f} steps/s   {r['ways']}", flush=True)
    print(f"\n{'way':<15}" + "".join(f"{'load ' + str(n):>12}" for n in args.loads) + "   kept under load")
    ok = True
    for name in names:
        idle = rates.get((name, 0))
        kept = [rates[name, n] / idle for n in args.loads if n and idle]
        ok &= all(k >= KEEP_TARGET for k in kept) or name == "plain"
        print(f"{name:<15}" + "".join(f"{rates[name, n]:>12.1f}" for n in args.loads) + "   "
              + ", ".join(f"{k:.0%}" for k in kept))
    for load in args.loads:
        stock = rates.get(("fp32 split", load), 0)
        if stock and ("auto", load) in rates:
            ratio = rates["auto", load] / stock
            print(f"load {load}: auto {rates['auto', load]:.1f} steps/s = {ratio:.2f}x the stock layers "
                  f"(fp32 split); {rates['auto', load] / rates['plain', load]:.2f}x the plain loop"
                  if ("plain", load) in rates else f"load {load}: auto = {ratio:.2f}x the stock layers")
    print(f"Targets: under load each way keeps >= {KEEP_TARGET:.0%} of its idle rate; auto is never slower than the "
          "stock layers; idle, auto >= 2x the plain loop where bfloat16 is native.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
