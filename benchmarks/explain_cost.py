"""The loss of one digit (cvae.core.explain) and the decoder's stretch map (cvae.core.geometry):
what each costs on this machine, and how far the importance-weighted -log p(x) (K = 1,000) is
from the integral of p(x|z) p(z) over the plane and from itself over seeds.

    python benchmarks/explain_cost.py assets/cvae_mnist.pt --data-dir ../shared/mnist
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from torch.distributions import Bernoulli, Normal

from cvae import load_checkpoint, load_mnist
from cvae.core import explain, geometry
from cvae.core.encodings import read_encodings
from cvae.core.latent import latent_bounds
from cvae.core.shipped import SHIPPED_ENCODINGS


def quadrature_neg_log_px(model, x: torch.Tensor, n: int = 64, width: float = 8.0) -> float:
    """-log of the integral of p(x|z) p(z) over +-``width`` posterior sigmas, midpoint rule."""
    with torch.no_grad():
        m, lv = model.encode(x.reshape(1, 1, 28, 28))
    m, s = m[0].double(), torch.exp(0.5 * lv[0].double())
    mids = (torch.linspace(-width, width, n + 1, dtype=torch.float64)[1:] +
            torch.linspace(-width, width, n + 1, dtype=torch.float64)[:-1]) / 2
    g1, g2 = torch.meshgrid(m[0] + s[0] * mids, m[1] + s[1] * mids, indexing="ij")
    z = torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)
    with torch.no_grad():
        logits = torch.cat([model.decoder(z[i:i + 1024].float()) for i in range(0, len(z), 1024)]).double()
    log_f = (Bernoulli(logits=logits.reshape(len(z), 784), validate_args=False).log_prob(x.double().reshape(1, 784))
             .sum(1) + Normal(0.0, 1.0).log_prob(z).sum(1))
    return -float(torch.logsumexp(log_f, 0) + math.log((2 * width / n) ** 2 * float(s[0] * s[1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--digits", type=int, default=6, help="test digits #0.. whose -log p(x) is checked")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--test-n", type=int, default=10000, help="test digits scored for the histogram")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                    help="torch's intra-op threads (default: half the cores, as the app sets them)")
    ap.add_argument("--workers", type=int, default=None,
                    help="threads sharing the stretch map's batches (default: geometry.jacobians's)")
    ap.add_argument("--only-maps", action="store_true", help="time the stretch map and the density only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint)
    enc = read_encodings(SHIPPED_ENCODINGS)
    b = latent_bounds(enc["z_mean"])
    for _ in range(2):  # the second run is the one to read (the first warms the allocator)
        t, c = time.perf_counter(), time.process_time()
        g1, g2, m = geometry.magnification(model, b[:2], b[2:], workers=args.workers)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    workers = args.workers or geometry.default_workers()
    print(f"stretch map {len(g1)}x{len(g2)} over z1 {b[:2]}, z2 {b[2:]}: {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"(target <= 5 s wall on 2 idle cores; {torch.get_num_threads()} torch threads x {workers} workers, "
          f"load average {os.getloadavg()[0]:.1f}); magnification {m.min():.3g}..{m.max():.3g}")
    t, c = time.perf_counter(), time.process_time()
    d = geometry.encoded_density(enc["z_mean"])
    print(f"test digits' density (table {geometry.DENSITY_N}^2, levels): {time.perf_counter() - t:.2f} s wall, "
          f"{time.process_time() - c:.2f} s CPU; bandwidth {d.bandwidth[0]:.3f}, {d.bandwidth[1]:.3f}")
    if args.only_maps:
        return
    images, labels = load_mnist("test", args.data_dir, download=False)
    print(f"{args.checkpoint}, {torch.get_num_threads()} threads, K = {explain.K_SAMPLES}, {args.seeds} seeds")
    print(f"{'digit':>8} {'-ELBO':>8} {'-log p(x) (IW)':>15} {'spread':>7} {'integral':>9} {'IW-int':>7} {'slack':>6}")
    spreads, errors, times = [], [], []
    for i in range(args.digits):
        x = images[i, 0]
        ests = []
        for s in range(args.seeds):
            t = time.perf_counter()
            ests.append(explain.digit_loss(model, x, seed=s))
            times.append(time.perf_counter() - t)
        v = np.array([e.neg_log_px for e in ests])
        quad = quadrature_neg_log_px(model, x)
        spreads.append(v.std())
        errors.append(v.mean() - quad)
        print(f"#{i} ({int(labels[i])}) {ests[0].neg_elbo:8.2f} {v.mean():15.3f} {v.std():7.3f} {quad:9.3f} "
              f"{v.mean() - quad:7.3f} {ests[0].neg_elbo - quad:6.2f}")
    print(f"spread over seeds (std): median {np.median(spreads):.3f}, max {max(spreads):.3f} nats; "
          f"mean estimate - integral: median {np.median(errors):.3f}, max {max(errors):.3f} nats")
    print(f"one digit's loss (K = {explain.K_SAMPLES}): median {np.median(times) * 1000:.0f} ms")
    t = time.perf_counter()
    e = explain.test_set_elbos(model, images[:args.test_n])
    print(f"test set's -ELBO ({args.test_n:,} digits, 1 sample each): {time.perf_counter() - t:.1f} s, "
          f"mean {e.mean():.2f}")


if __name__ == "__main__":
    main()
