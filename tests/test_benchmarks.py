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
