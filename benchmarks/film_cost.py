"""What the training film costs: the same training with and without snapshots, side by side.

Rounds alternate a run with ``film=False`` and one with ``film=True`` (same recipe, seed and
images), so machine noise hits both alike, and print each pair's wall time, the difference,
and the time the trainer itself spent recording snapshots. Recording draws no random numbers,
so both runs compute the same weights; the script checks that too.

A short run holds as many first-epoch snapshots as a long one, so its share overstates the
cost; each round also works out the share for the whole default recipe (8 epochs of 938 steps,
16 snapshots) from that round's own seconds per snapshot, per step and per evaluation (a ratio
within one round, so a busy machine slows both sides alike), and the last line gives the median.

    python benchmarks/film_cost.py --data-dir ../shared/mnist                # 200 steps, 2 rounds
    python benchmarks/film_cost.py --data-dir ../shared/mnist --limit 60000  # one full epoch
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from cvae import TrainConfig, load_mnist, train
from cvae.training.recorder import epoch_stride, first_epoch_steps
from cvae.training.config import DEFAULT_RECIPE, RECIPES

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--recipe", default=DEFAULT_RECIPE, choices=sorted(RECIPES))
    p.add_argument("--limit", type=int, default=12_800, help="training images per epoch (default 12,800)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    train_x, _ = load_mnist("train", args.data_dir, download=False)
    test_x, test_y = load_mnist("test", args.data_dir, download=False)
    cfg = dict(epochs=args.epochs, limit=args.limit, patience=0)
    print(f"recipe {args.recipe}, {args.limit} images x {args.epochs} epoch(s), {args.rounds} rounds; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    full = TrainConfig.from_recipe(DEFAULT_RECIPE)
    spe = -(-60_000 // full.batch_size)
    n_full = 1 + len(first_epoch_steps(spe)) + -(-full.epochs // epoch_stride(full.epochs))
    # Warm-up (not timed): first calls allocate and pick kernels.
    train(TrainConfig.from_recipe(args.recipe, film=True, epochs=1, limit=640, patience=0), train_x, test_x[:500],
          test_y=test_y[:500])
    offs, ons, snaps, projected = [], [], [], []
    for r in range(1, args.rounds + 1):
        off = train(TrainConfig.from_recipe(args.recipe, film=False, **cfg), train_x, test_x, test_y=test_y)
        on = train(TrainConfig.from_recipe(args.recipe, film=True, **cfg), train_x, test_x, test_y=test_y)
        same = all(torch.equal(a, b) for a, b in zip(off.model.state_dict().values(), on.model.state_dict().values()))
        rec = on.film.info["record_seconds"]
        n = len(on.film)
        offs.append(off.seconds)
        ons.append(on.seconds)
        snaps.append(rec / on.seconds)
        steps = sum(h["images"] for h in off.history) / TrainConfig.from_recipe(args.recipe).batch_size
        step_s = sum(h["train_seconds"] for h in off.history) / steps
        eval_s = statistics.mean(h["seconds"] - h["train_seconds"] for h in off.history)
        t_train = full.epochs * (spe * step_s + eval_s)
        projected.append(n_full * rec / n / t_train)
        print(f"round {r}: without film {off.seconds:6.1f} s | with film {on.seconds:6.1f} s "
              f"({(on.seconds - off.seconds) / off.seconds:+.1%}) | {n} snapshots recorded in {rec:.2f} s "
              f"= {rec / on.seconds:.1%} of this run, {1000 * rec / n:.0f} ms each | same weights: {same} | "
              f"default recipe: {n_full} x {1000 * rec / n:.0f} ms on {t_train:.0f} s = {projected[-1]:.2%}")
    print(f"median: without {statistics.median(offs):.1f} s, with {statistics.median(ons):.1f} s, "
          f"difference {(statistics.median(ons) - statistics.median(offs)) / statistics.median(offs):+.1%}; "
          f"recording {statistics.median(snaps):.1%} of this run")
    print(f"FILM default recipe ({full.epochs} epochs x {spe} steps, {n_full} snapshots): recording "
          f"{statistics.median(projected):.2%} of the training time (median of {len(projected)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
