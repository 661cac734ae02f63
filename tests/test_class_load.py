"""The class load test's short form: 10 Locust users that speak Streamlit's websocket protocol
open the app within 5 s, then each commits a move every 1-3 s for 30 s. Fails if a session
does not open, a commit is lost (not echoed with its number and point) or the server logs a
traceback (benchmarks/class_load.py; the full form is a benchmark, docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from devkit import REPO, needs_data

pytestmark = [needs_data, pytest.mark.load]


def test_ten_users_for_thirty_seconds_lose_nothing():
    r = subprocess.run([sys.executable, "benchmarks/class_load.py", "--users", "10", "--ramp", "5", "--minutes", "0.5",
                        "--no-floor"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    row = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("app"))
    users, opened, total, *_ = re.findall(r"\d+", row.split("app", 1)[1])
    assert (users, opened, total) == ("10", "10", "10"), row
    nums = row.split()
    commits, lost = int(nums[5]), int(nums[6])
    assert commits >= 10 * 30 / 3 * 0.8 and lost == 0, row  # a commit every 1-3 s each, none lost
    assert "LOST" not in r.stdout
