"""Training throughput and time-to-quality: a plain PyTorch port vs the project's trainer.

Both run side by side in one process, on the same machine, on the same MNIST images.

* reference: the straightforward PyTorch port of the tutorial, as most people would write
  it: torchvision MNIST with ToTensor through a DataLoader (batch 32, shuffled), nn.Conv2d /
  nn.ConvTranspose2d with symmetric padding, Adam 1e-3, a Python step loop.
* project: ``cvae.train`` with a recipe (default: the project's default recipe), as
  ``python -m cvae train`` runs it (``--precision auto``: bfloat16 products through
  cvae.training.gemm where the CPU has native bfloat16), and the same trainer on PyTorch's stock
  layers (``--precision fp32``).

Throughput alternates short rounds of each (so machine noise hits both alike) and prints
images/s and the ratio. ``--quality`` then trains each from scratch, evaluating the test
loss after every epoch, and prints the wall time at which each first reaches 155 and 151.3.

    python benchmarks/train_speed.py --data-dir ../shared/mnist            # throughput only
    python benchmarks/train_speed.py --data-dir ../shared/mnist --quality  # + time to quality
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from cvae import TrainConfig, evaluate, load_mnist, train
from cvae.core.model import reparameterize, vae_loss
from cvae.training.gemm import native_bf16
from cvae.training.config import DEFAULT_RECIPE, RECIPES
from cvae.training.hardware import describe_precision, keep_freed_memory

REPO = Path(__file__).resolve().parents[1]


class PlainCVAE(nn.Module):
    """The plain port: same layers and parameter count, PyTorch's stock modules."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(3136, 16), nn.ReLU())
        self.mu, self.lv = nn.Linear(16, 2), nn.Linear(16, 2)
        self.dec = nn.Sequential(
            nn.Linear(2, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 64, 3, 2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, 2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, 1, padding=1))

    def encode(self, x):
        h = self.enc(x)
        return self.mu(h), self.lv(h)

    latent_dim = 2

    def loss(self, x, generator=None, eps=None):
        mu, lv = self.encode(x)
        return vae_loss(x, self.dec(reparameterize(mu, lv, generator, eps)), mu, lv)

    @property
    def device(self):
        return torch.device("cpu")


class Reference:
    """DataLoader + Python loop; ``run(n)`` trains on the next n images."""

    def __init__(self, data_dir, seed=0, limit=None):
        from torch.utils.data import DataLoader, Subset
        from torchvision import datasets, transforms

        torch.manual_seed(seed)
        ds = datasets.MNIST(data_dir, train=True, download=False, transform=transforms.ToTensor())
        if limit:
            ds = Subset(ds, range(limit))
        self.loader = DataLoader(ds, batch_size=32, shuffle=True)
        self.model = PlainCVAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.it = iter(self.loader)
        self.epoch_images = len(ds)

    def run(self, n):
        done = 0
        self.model.train()
        while done < n:
            try:
                x, _ = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                continue
            loss = self.model.loss(x).loss
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            done += len(x)
        return done


def project_images_per_second(cfg, train_x, test_x, n):
    """Seconds of the training pass alone for n images (evaluation excluded)."""
    res = train(TrainConfig(**{**cfg.to_dict(), "epochs": 1, "limit": n, "patience": 0}), train_x, test_x[:10])
    h = res.history[0]
    return h["images"], h["train_seconds"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "mnist"))
    p.add_argument("--recipe", default=DEFAULT_RECIPE, choices=sorted(RECIPES))
    p.add_argument("--images", type=int, default=3200, help="images per throughput round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quality", action="store_true", help="also measure time to test loss 155 and 151.3")
    p.add_argument("--max-minutes", type=float, default=30.0, help="per trainer, for --quality")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="the project's")
    p.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    # cvae.train sets this for the whole process on its first run; set it first, so that the
    # reference loop runs with the same allocator from its first step.
    malloc_tuned = keep_freed_memory()
    train_x, _ = load_mnist("train", args.data_dir, download=False)
    test_x, _ = load_mnist("test", args.data_dir, download=False)
    cfg = TrainConfig.from_recipe(args.recipe, precision=args.precision)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bfloat16: {'yes' if native_bf16() else 'no'}; "
          f"project recipe {args.recipe}: batch {cfg.batch_size}, lr {cfg.lr}, {cfg.schedule}, {cfg.epochs} epochs, "
          f"precision {cfg.precision}; malloc keeps freed memory (both): {'yes' if malloc_tuned else 'no'}")

    ref = Reference(args.data_dir)
    ref.run(320)  # warm-up
    # The project as configured; the same trainer at the reference's batch of 32 (when the
    # recipe's differs), to separate the batch size's share of the speed from the code's; and on
    # PyTorch's stock layers (float32), to show what cvae.training.gemm adds.
    variants = {"project": cfg}
    if cfg.batch_size != 32:
        variants["project, batch 32"] = TrainConfig(**{**cfg.to_dict(), "batch_size": 32})
    variants["project, stock layers"] = TrainConfig(**{**cfg.to_dict(), "precision": "fp32"})
    for c in variants.values():
        project_images_per_second(c, train_x, test_x, 256)  # warm-up
    done = {name: [0, 0.0] for name in ["reference", *variants]}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        done["reference"][0] += ref.run(args.images)
        done["reference"][1] += time.perf_counter() - t0
        for name, c in variants.items():
            n, secs = project_images_per_second(c, train_x, test_x, args.images)
            done[name][0] += n
            done[name][1] += secs
        print(f"round {r + 1}: " + "   ".join(f"{name} {n / t:5.0f} img/s" for name, (n, t) in done.items()),
              flush=True)
    ips = {name: n / t for name, (n, t) in done.items()}
    ref_ips, proj_ips, stock_ips = ips["reference"], ips["project"], ips["project, stock layers"]
    cpu = torch.device("cpu")
    print(f"THROUGHPUT reference {ref_ips:.0f} img/s ({1e6 / ref_ips:.0f} us/img), project {proj_ips:.0f} img/s "
          f"({1e6 / proj_ips:.0f} us/img; {describe_precision(cfg.precision, cpu)}), "
          f"ratio {proj_ips / ref_ips:.2f}x; project on the stock layers {stock_ips:.0f} img/s "
          f"({1e6 / stock_ips:.0f} us/img), ratio {stock_ips / ref_ips:.2f}x"
          + (f"; project at batch 32 {ips['project, batch 32']:.0f} img/s, ratio "
             f"{ips['project, batch 32'] / ref_ips:.2f}x" if "project, batch 32" in ips else ""))

    if args.quality:
        targets = (155.0, 151.3)

        def reached(curve):
            return {t: next((secs for secs, loss in curve if loss <= t), None) for t in targets}

        # Reference: epochs of the DataLoader loop, test loss (seeded, one z per image) after each.
        ref = Reference(args.data_dir, seed=0)
        curve, t0 = [], time.perf_counter()
        while time.perf_counter() - t0 < args.max_minutes * 60:
            ref.run(ref.epoch_images)
            loss = evaluate(ref.model, test_x)["loss"]
            curve.append((time.perf_counter() - t0, loss))
            print(f"reference epoch {len(curve)}: {curve[-1][0]:.0f}s test_loss {loss:.2f}", flush=True)
            if loss <= targets[-1]:
                break
        ref_reach = reached(curve)
        # Project: the whole `python -m cvae train` command (start-up and data loading included),
        # each epoch's line stamped with the seconds since the command started.
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-u", "-m", "cvae", "train", "--data-dir", args.data_dir, "--recipe", args.recipe,
                   "--precision", args.precision, "--out", str(Path(tmp) / "m.pt"), "--quiet"]
            print("project command: " + " ".join(cmd[1:]), flush=True)
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            proj_curve = []
            for line in proc.stdout:
                secs = time.perf_counter() - t0
                print(f"project {secs:6.1f}s {line.rstrip()}", flush=True)
                m = re.search(r"val_loss: ([0-9.]+)", line)
                if line.startswith("Epoch") and m:
                    proj_curve.append((secs, float(m.group(1))))
            if proc.wait() != 0:
                raise SystemExit(f"the project's train command failed (exit {proc.returncode})")
        proj_reach = reached(proj_curve)
        print(f"project: {len(proj_curve)} epochs, whole command {time.perf_counter() - t0:.0f}s, best test loss "
              f"{min(loss for _, loss in proj_curve):.2f}")
        for t in targets:
            fmt = lambda s: "not reached" if s is None else f"{s:.0f}s"  # noqa: E731
            print(f"TIME TO {t}: reference {fmt(ref_reach[t])} (training loop), "
                  f"project {fmt(proj_reach[t])} (whole train command)")


if __name__ == "__main__":
    main()
