"""Where a checkpoint's test loss goes: the encoder's amortization gap, on training and test images.

For a random sample of training and of test images it compares the loss (784 * BCE + KL, the
tutorial's) with the encoder's z_mean / z_log_var against the loss after optimising z_mean and
z_log_var for each image by itself (decoder fixed, Adam). The difference is the amortization
gap: what a perfect encoder would save. Comparing the two splits separates how much of the
train/test difference is the encoder generalising worse (gap larger on test) from the decoder
fitting the training images better (per-image optimum lower on train).

    python benchmarks/amortization_gap.py assets/cvae_mnist.pt --data-dir ../shared/mnist
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


from cvae import load_checkpoint, load_mnist
from cvae.core.model import vae_loss
def mean_loss(model, x, z_mean, z_log_var, samples: int) -> torch.Tensor:
    """Per-image loss averaged over ``samples`` draws of z."""
    total = torch.zeros(len(x))
    for _ in range(samples):
        z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
        total = total + vae_loss(x, model.decoder(z), z_mean, z_log_var).per_image
    return total / samples


def gap(model, x, steps: int, lr: float, samples: int) -> tuple[float, float]:
    with torch.no_grad():
        z_mean, z_log_var = model.encoder(x)
        encoded = mean_loss(model, x, z_mean, z_log_var, samples).mean().item()
    z_mean, z_log_var = z_mean.clone().requires_grad_(True), z_log_var.clone().requires_grad_(True)
    opt = torch.optim.Adam([z_mean, z_log_var], lr=lr)
    for _ in range(steps):
        loss = mean_loss(model, x, z_mean, z_log_var, 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        optimised = mean_loss(model, x, z_mean, z_log_var, samples).mean().item()
    return encoded, optimised


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "mnist"))
    p.add_argument("--images", type=int, default=400, help="images per split")
    p.add_argument("--steps", type=int, default=150, help="Adam steps per image")
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--samples", type=int, default=32, help="draws of z when scoring")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    model = load_checkpoint(args.checkpoint)
    model.decoder.channels_last = False
    model.eval()
    for q in model.parameters():
        q.requires_grad_(False)
    rows = {}
    for split in ("train", "test"):
        x, _ = load_mnist(split, args.data_dir, download=False)
        x = x[torch.randperm(len(x))[:args.images]]
        t0 = time.perf_counter()
        rows[split] = gap(model, x, args.steps, args.lr, args.samples)
        enc, opt = rows[split]
        print(f"{split}: encoder {enc:.2f}, per-image optimum {opt:.2f}, amortization gap {enc - opt:.2f} "
              f"({args.images} images, {time.perf_counter() - t0:.0f}s)", flush=True)
    (tr_enc, tr_opt), (te_enc, te_opt) = rows["train"], rows["test"]
    print(f"GAP test - train {te_enc - tr_enc:.2f}: decoder (per-image optima) {te_opt - tr_opt:.2f}, "
          f"encoder (amortization gaps) {(te_enc - te_opt) - (tr_enc - tr_opt):.2f}")


if __name__ == "__main__":
    main()
