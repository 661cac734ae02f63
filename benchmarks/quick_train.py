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
    python benchmarks/quick_train.py --budgets 60 --load 1                         # beside a busy program
    python benchmarks/quick_train.py --budgets 60 --browser                        # from the app's sidebar

``--avx2`` runs the children with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 and
``--precision fp32`` (the path of a CPU without native bfloat16). ``--set`` overrides a recipe
value for trying variations (``lr``, ``batch_size``, ``warmup``, ``kl_warmup``, ``free_bits``, ``recipe``). ``--load N`` runs N
busy processes (``while True: pass``) at normal priority beside each run. ``--browser`` starts
each run as a person does instead: the app (`streamlit run app.py`) in headless Chromium, the
sidebar's Quick form with the seed and seconds filled in, Train pressed, the live film showing
until the page says the run finished (the page and its server are the load); the wall time is
from pressing Train to the page saying so.
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

from _common import REPO, busy, data_dir

from cvae import evaluate, load_checkpoint, load_mnist
from cvae.core.latent import encode_dataset, spread

SPREAD_TARGET = 0.5
LOSS_TARGET = 175.0  # and both spreads >= SPREAD_TARGET: ten clouds, on every row (alone, busy, browser, AVX2)
OPTIONS = {"lr": "--lr", "batch_size": "--batch-size", "warmup": "--warmup", "recipe": "--recipe",
           "schedule": "--schedule", "precision": "--precision", "kl_warmup": "--kl-warmup",
           "free_bits": "--free-bits"}


def run_one(seconds: float, seed: int, data: Path, extra: list[str], env: dict, out: Path) -> dict:
    cmd = [sys.executable, "-m", "cvae", "train", "--recipe", "quick", "--seconds", f"{seconds:g}", "--seed",
           str(seed), "--data-dir", str(data), "--out", str(out), "--quiet", "--no-download", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {"wall": wall, "stdout": proc.stdout}


class Sidebar:
    """The app in headless Chromium; ``run_one`` trains from the sidebar's Quick form as a person does."""

    def __init__(self, tmp: Path, env: dict):
        from playwright.sync_api import sync_playwright

        from _common import CHROMIUM, CHROMIUM_ARGS, READY_JS, app_env, start_server

        self.runs = tmp / "runs"
        self.server = start_server("app.py", {**app_env(self.runs), **{k: env[k] for k in ENV_PASSED if k in env}},
                                   log=tmp / "app.log")
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        self.ready = READY_JS

    def run_one(self, seconds: float, seed: int) -> dict:
        page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(max(120_000, seconds * 4000))
        try:
            page.goto(self.server.url)
            page.wait_for_function(self.ready)
            side = page.locator('[data-testid="stSidebar"]')
            if side.get_by_role("button", name="Train", exact=True).count() == 0:
                side.get_by_text("Train a new model").click()
            for label, value in (("Seed", seed), ("Seconds", int(seconds))):
                box = side.locator(f'input[aria-label^="{label}"]').first
                box.fill(str(value))
                box.press("Tab")
            before = set(self.runs.glob("*.pt")) if self.runs.is_dir() else set()
            t0 = time.perf_counter()
            side.get_by_role("button", name="Train", exact=True).click()
            try:
                page.get_by_text("Training:", exact=False).first.wait_for()
                page.wait_for_function("() => !document.body.innerText.includes('Training:')")
            except Exception:
                print(page.inner_text('[data-testid="stSidebar"]')[-3000:], file=sys.stderr)
                raise
            wall = time.perf_counter() - t0
            new = sorted(set(self.runs.glob("*.pt")) - before)
            if len(new) != 1:
                raise SystemExit(f"expected one new checkpoint in {self.runs}, found {new}:\n"
                                 + page.inner_text('[data-testid="stSidebar"]')[-1500:])
            return {"wall": wall, "out": new[0]}
        finally:
            page.close()

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()
        self.server.stop()


ENV_PASSED = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "CVAE_TRAIN_NICE")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(data_dir()))
    p.add_argument("--budgets", type=float, nargs="+", default=[20, 60, 120])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--avx2", action="store_true", help="emulate a CPU without AVX-512 (most laptops)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    p.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes beside each run")
    p.add_argument("--browser", action="store_true", help="train from the app's sidebar in headless Chromium")
    args = p.parse_args(argv)
    if args.browser and args.set:
        raise SystemExit("--browser trains with the app's form: --set does not apply")
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
    where = ("from the app's sidebar in Chromium (press Train to 'Finished')" if args.browser else
             "the whole command timed")
    print(f"quick recipe{' ' + ' '.join(extra) if extra else ''}{' (AVX2 emulation)' if args.avx2 else ''}, "
          f"{os.cpu_count()} CPUs, {args.load} busy process(es) beside; {where}; test loss and spreads over the "
          "10,000 test digits")
    print(f"{'budget':>7} {'seed':>4} {'steps':>6} {'epochs':>6} {'wall s':>7} {'over':>6} {'test loss':>9} "
          f"{'spread z1':>9} {'spread z2':>9}  ok")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, busy(args.load):
        sidebar = Sidebar(Path(tmp), env) if args.browser else None
        for seconds in args.budgets:
            for seed in args.seeds:
                out = Path(tmp) / f"q{seconds:g}_{seed}.pt"
                if sidebar is not None:
                    r = sidebar.run_one(seconds, seed)
                    out = r["out"]
                else:
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
        if sidebar is not None:
            sidebar.close()
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
