"""The analysis script in benchmarks/ runs on the shipped model and says something true."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import DATA_DIR, has_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not has_data(), reason="needs MNIST in ../shared/mnist")
def test_amortization_gap_reports_a_positive_gap_on_both_splits():
    r = subprocess.run([sys.executable, "benchmarks/amortization_gap.py", "assets/cvae_mnist.pt",
                        "--data-dir", str(DATA_DIR), "--images", "24", "--steps", "30", "--samples", "8"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = dict(re.findall(r"^(train|test): encoder ([\d.]+)", r.stdout, re.M))
    optima = dict(re.findall(r"^(train|test): .*per-image optimum ([\d.]+)", r.stdout, re.M))
    assert set(rows) == set(optima) == {"train", "test"}, r.stdout
    for split in rows:
        # Optimising each image's z_mean / z_log_var can only beat the encoder's answer.
        assert float(optima[split]) < float(rows[split]) - 1.0, r.stdout
    gap = re.search(r"GAP test - train ([-\d.]+): decoder \(per-image optima\) ([-\d.]+), "
                    r"encoder \(amortization gaps\) ([-\d.]+)", r.stdout)
    assert gap, r.stdout
    total, dec, enc = map(float, gap.groups())
    assert total == pytest.approx(dec + enc, abs=0.02)


@pytest.mark.skipif(not has_data(), reason="needs MNIST in ../shared/mnist")
def test_train_speed_prints_both_trainers_and_their_ratio():
    """One short round: the script runs the reference loop and the project's trainer (as
    configured and on the stock layers) and prints images/s and ratios that agree."""
    r = subprocess.run([sys.executable, "benchmarks/train_speed.py", "--data-dir", str(DATA_DIR),
                        "--rounds", "1", "--images", "320"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"THROUGHPUT reference (\d+) img/s .*project (\d+) img/s \(\d+ us/img; (.+?), (\d+) worker\(s\)\), "
                  r"ratio ([\d.]+)x; project on the stock layers (\d+) img/s \(\d+ us/img, \d+ workers\), "
                  r"ratio ([\d.]+)x; project at batch 32 (\d+) img/s, ratio ([\d.]+)x$", r.stdout, re.M)
    assert m, r.stdout
    ref, proj, arithmetic, workers, ratio, stock, stock_ratio, b32, b32_ratio = m.groups()
    assert float(ratio) == pytest.approx(int(proj) / int(ref), abs=0.01)
    assert float(stock_ratio) == pytest.approx(int(stock) / int(ref), abs=0.01)
    # The default recipe's batch (64) is not the reference's, so the same trainer at 32 is shown too.
    assert float(b32_ratio) == pytest.approx(int(b32) / int(ref), abs=0.01)
    assert re.search(r"^round 1: reference +\d+ img/s   project +\d+ img/s   project, batch 32 +\d+ img/s   "
                     r"project, stock layers +\d+ img/s$", r.stdout, re.M), r.stdout
    assert arithmetic in ("bfloat16 matrix products (cvae.gemm)", "float32, PyTorch's stock layers (cpu)")
    assert "native bfloat16: " in r.stdout
