"""The scripts in benchmarks/ run on the shipped model and say something true.

The checks read the figures the scripts print and hold them to what can be worked out
independently: the gap arithmetic from the per-split rows, the encoder's figure against this
test's own measurement of the model's loss, the ratios and us/img from the throughputs, the
summary from the last round's running figures. The wording around the numbers is free.
"""

import math
import re
import subprocess
import sys

import pytest
import torch

from devkit import DATA_DIR, REPO, needs_data

NUM = r"(-?\d+(?:\.\d+)?)"


def run(*args) -> str:
    r = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


HELP_ALL = """
import contextlib, io, runpy, sys
sys.path.insert(0, "benchmarks")
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            assert e.code == 0, (script, e.code)
    print(script, out.getvalue().startswith("usage: "), flush=True)
"""


def test_every_benchmark_script_imports_and_answers_help():
    """Each script's imports resolve (tests/devkit.py through benchmarks/_common.py among them) and
    its options parse: all of them in one process, so torch is imported once."""
    scripts = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "benchmarks").glob("*.py")
                     if 'if __name__ == "__main__":' in p.read_text())
    assert len(scripts) >= 8, scripts
    out = run("-c", HELP_ALL, *scripts)
    assert out.splitlines() == [f"{s} True" for s in scripts], out


@needs_data
@pytest.mark.slow  # runs the benchmark script whole
def test_amortization_gap_figures_add_up_and_match_the_models_loss():
    images = 24
    out = run("benchmarks/amortization_gap.py", "assets/cvae_mnist.pt", "--data-dir", str(DATA_DIR),
              "--images", str(images), "--steps", "30", "--samples", "8")
    rows = {}
    for split in ("train", "test"):
        line = next((ln for ln in out.splitlines() if ln.startswith(f"{split}:")), None)
        assert line, out
        rows[split] = [float(v) for v in re.findall(NUM, line)[:3]]  # encoder, optimum, gap
    for split, (enc, opt, gap) in rows.items():
        # Optimising each image's z_mean / z_log_var, starting from the encoder's, can only do better.
        assert opt < enc - 1.0, (split, out)
        assert gap == pytest.approx(enc - opt, abs=0.011), (split, out)
    summary = next((ln for ln in out.splitlines() if ln.startswith("GAP")), None)
    assert summary, out
    total, dec, enc_part = (float(v) for v in re.findall(NUM, summary)[-3:])
    (tr_enc, tr_opt, _), (te_enc, te_opt, _) = rows["train"], rows["test"]
    assert total == pytest.approx(te_enc - tr_enc, abs=0.011)
    assert dec == pytest.approx(te_opt - tr_opt, abs=0.011)
    assert enc_part == pytest.approx((te_enc - te_opt) - (tr_enc - tr_opt), abs=0.03)

    # The encoder's figure is the model's loss on `images` random test images: within sampling
    # noise of the model's loss, measured here on the first 2,000 test digits (its own sampling
    # error, ~1 nat, is far inside the 24 images' ~30).
    from cvae import load_checkpoint, load_mnist

    model = load_checkpoint(REPO / "assets" / "cvae_mnist.pt").eval()
    x, _ = load_mnist("test", DATA_DIR, download=False, limit=2000)
    with torch.no_grad():
        per_image = torch.cat([model.loss(b, generator=torch.Generator().manual_seed(0)).per_image
                               for b in x.split(1000)])
    mean, std = per_image.mean().item(), per_image.std().item()
    assert abs(te_enc - mean) < 4 * std / math.sqrt(images) + 1.0, (te_enc, mean, std)


LABEL = r"(reference|project(?:,? (?:at |on the )?(?:batch 32|stock layers))?)\s+(\d+) img/s"


def _key(label: str) -> str:
    return "stock layers" if "stock" in label else "batch 32" if "batch 32" in label else label


def _figures(text: str) -> dict[str, float]:
    """{label: img/s} for 'reference', 'project', 'batch 32' and 'stock layers' in a line."""
    return {_key(label): float(value) for label, value in re.findall(LABEL, text)}


@needs_data
@pytest.mark.slow  # runs the benchmark script whole
def test_train_speed_figures_are_consistent():
    """One short round: the summary's throughputs are the round's running figures, each ratio
    is the throughput before it over the reference's, each us/img is 1e6 / img/s."""
    out = run("benchmarks/train_speed.py", "--data-dir", str(DATA_DIR), "--rounds", "1", "--images", "320")
    lines = out.splitlines()
    rounds = [ln for ln in lines if re.match(r"round \d+:", ln)]
    summary = next((ln for ln in lines if ln.startswith("THROUGHPUT")), None)
    assert len(rounds) == 1 and summary, out
    last, final = _figures(rounds[-1]), _figures(summary)
    assert {"reference", "project", "stock layers"} <= set(final), summary
    assert set(final) == set(last), (final, last)
    for key, ips in final.items():
        assert ips > 0
        assert ips == pytest.approx(last[key], abs=1.0), (key, summary, rounds[-1])
    ratios, current = 0, None
    for m in re.finditer(LABEL + r"|ratio ([\d.]+)x", summary):
        if m.group(3) is None:
            current = _key(m.group(1))
        else:
            ratios += 1
            ips, ref = final[current], final["reference"]
            # The printed img/s are rounded to whole numbers; the ratio is of the unrounded ones.
            slack = ips / ref * (0.5 / ips + 0.5 / ref) + 0.006
            assert float(m.group(3)) == pytest.approx(ips / ref, abs=slack), (current, summary)
    assert ratios == len(final) - 1, summary  # one per trainer beside the reference
    for ips, us in re.findall(r"(\d+) img/s \((\d+) us/img", summary):
        assert int(us) == pytest.approx(1e6 / int(ips), rel=0.5 / int(ips) + 1e-3, abs=1), summary


# benchmarks/site.py, its own process, with the shipped model's site parts of this pytest session
# (devkit.shipped_site_parts) in place of its call of cvae.site.site_parts: the same parts, not
# computed again (the 10,000 test digits' losses); tests/test_site.py checks site_parts itself.
SITE_ON_SHARED_PARTS = """
import runpy, sys
sys.path[:0] = ["benchmarks", "tests"]
from devkit import shipped_site_parts
from cvae.core.shipped import SHIPPED_CHECKPOINT
def parts(checkpoint, data_dir):
    assert checkpoint == SHIPPED_CHECKPOINT, checkpoint
    return shipped_site_parts()
main = runpy.run_path("benchmarks/site.py", run_name="site_benchmark")["main"]
main.__globals__["site_parts"] = parts
sys.exit(main(sys.argv[1:]))
"""


@needs_data
@pytest.mark.slow  # runs the benchmark script whole
@pytest.mark.browser  # the script drives Chromium itself
def test_site_benchmark_sizes_are_the_files_it_writes():
    """benchmarks/site.py: its sizes are those of the shipped model's site (the files `python -m
    cvae site` writes: cvae.site.site_files), it opens the page with no request outside it, and
    the repaint rows are there."""
    from devkit import shipped_site

    out = run("-c", SITE_ON_SHARED_PARTS, "--data-dir", str(DATA_DIR), "--opens", "1", "--seconds", "1")
    site = shipped_site(hooks=False)
    for name, data in site.items():
        assert re.search(rf"^\s+{re.escape(name)}\s+{len(data):,} bytes$", out, re.M), (name, out)
    total = sum(len(data) for data in site.values())
    assert re.search(rf"total\s+{total:,} bytes", out), out
    assert "requests outside the folder: 0" in out
    for what in ("dragging the z1 slider", "hovering the scatter", "dragging on the scatter"):
        events, paints = (float(v) for v in re.search(rf"{what}\s+{NUM}\s+{NUM}", out).groups())
        assert events > 0 and paints > 0, out
