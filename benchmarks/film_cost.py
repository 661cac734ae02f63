"""What the training film costs: the same training with and without snapshots, side by side.

Rounds alternate a run with ``film=False`` and one with ``film=True`` (same recipe, seed and
images), so machine noise hits both alike, and print each pair's wall time, the difference,
and the time the trainer itself spent recording snapshots. Recording draws no random numbers,
so both runs compute the same weights; the script checks that too.

A short run holds as many first-epoch snapshots as a long one, so its share overstates the
cost; the last line works out the share for the whole default recipe (8 epochs of 938 steps,
16 snapshots) from the measured seconds per snapshot, per step and per evaluation.

    python benchmarks/film_cost.py --data-dir ../shared/mnist                # 200 steps, 2 rounds
    python benchmarks/film_cost.py --data-dir ../shared/mnist --limit 60000  # one full epoch
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cvae import TrainConfig, load_mnist, train  # noqa: E402
from cvae.film import epoch_stride, first_epoch_steps  # noqa: E402
from cvae.train import DEFAULT_RECIPE, RECIPES  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--recipe", default=DEFAULT_RECIPE, choices=sorted(RECIPES))
    p.add_argument("--limit", type=int, default=12_800, help="training images per epoch (default 12,800)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()

    train_x, _ = load_mnist("train", args.data_dir, download=False)
    test_x, test_y = load_mnist("test", args.data_dir, download=False)
    cfg = dict(epochs=args.epochs, limit=args.limit, patience=0)
    print(f"recipe {args.recipe}, {args.limit} images x {args.epochs} epoch(s), {args.rounds} rounds; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    offs, ons, snaps, per_snap = [], [], [], []
    step_s, eval_s = [], []
    for r in range(1, args.rounds + 1):
        off = train(TrainConfig.from_recipe(args.recipe, film=False, **cfg), train_x, test_x, test_y=test_y)
        on = train(TrainConfig.from_recipe(args.recipe, film=True, **cfg), train_x, test_x, test_y=test_y)
        same = all(torch.equal(a, b) for a, b in zip(off.model.state_dict().values(), on.model.state_dict().values()))
        rec = on.film.info["record_seconds"]
        n = len(on.film)
        offs.append(off.seconds)
        ons.append(on.seconds)
        snaps.append(rec / on.seconds)
        per_snap.append(rec / n)
        steps = sum(h["images"] for h in off.history) / TrainConfig.from_recipe(args.recipe).batch_size
        step_s.append(sum(h["train_seconds"] for h in off.history) / steps)
        eval_s.append(statistics.mean(h["seconds"] - h["train_seconds"] for h in off.history))
        print(f"round {r}: without film {off.seconds:7.1f} s | with film {on.seconds:7.1f} s "
              f"({(on.seconds - off.seconds) / off.seconds:+.1%}) | {n} snapshots recorded in {rec:.2f} s "
              f"= {rec / on.seconds:.1%} of the run, {1000 * rec / n:.0f} ms each | same weights: {same}")
    print(f"median: without {statistics.median(offs):.1f} s, with {statistics.median(ons):.1f} s, "
          f"difference {(statistics.median(ons) - statistics.median(offs)) / statistics.median(offs):+.1%}; "
          f"recording {statistics.median(snaps):.1%} of this run")
    # The whole default recipe: its steps, evaluations and snapshots at the measured unit costs.
    full = TrainConfig.from_recipe(DEFAULT_RECIPE)
    spe = -(-60_000 // full.batch_size)
    n_full = 1 + len(first_epoch_steps(spe)) + -(-full.epochs // epoch_stride(full.epochs))
    t_train = full.epochs * (spe * statistics.median(step_s) + statistics.median(eval_s))
    t_film = n_full * statistics.median(per_snap)
    print(f"FILM default recipe ({full.epochs} epochs x {spe} steps, {n_full} snapshots): "
          f"{n_full} x {1000 * statistics.median(per_snap):.0f} ms = {t_film:.1f} s on top of {t_train:.0f} s "
          f"of training = {t_film / t_train:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
