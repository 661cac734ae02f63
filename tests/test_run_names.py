"""The file a run from the app's form saves to (ui.training.new_run_path): two runs started in
the same second with the same settings (two tabs one after the other, two replicas sharing a
runs volume) get two files, and a name already on disk or promised to a running job is never
given again; the name still says when and with which settings."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from ui import training
from ui.training import new_run_path

NOW = dt.datetime(2026, 12, 7, 6, 15, 42)


def test_two_runs_in_the_same_second_with_the_same_settings_get_two_files(tmp_path):
    """Two replicas: neither sees the other's run (not on disk yet, not in its registry)."""
    paths = {new_run_path(tmp_path, "60s", NOW) for _ in range(50)}
    assert len(paths) == 50
    for p in paths:
        assert p.parent == tmp_path and p.suffix == ".pt"
        assert re.fullmatch(r"cvae_20261207-061542-[0-9a-f]+_60s\.pt", p.name), p.name


def test_a_name_on_disk_or_promised_to_a_job_is_not_given_again(tmp_path, monkeypatch):
    """Even when the random part repeats: the file there, or the job's file to come, is skipped."""
    tags = itertools.chain(["aaaaaa"] * 3, itertools.cycle(["bbbbbb"]))
    monkeypatch.setattr(training.secrets, "token_hex", lambda n: next(tags))
    first = new_run_path(tmp_path, "e5_b64", NOW)
    first.write_bytes(b"a finished run")
    second = new_run_path(tmp_path, "e5_b64", NOW, taken=set())
    assert second != first and not second.exists()
    tags = itertools.chain(["cccccc"] * 2, itertools.cycle(["dddddd"]))
    third = new_run_path(tmp_path, "e5_b64", NOW)
    fourth = new_run_path(tmp_path, "e5_b64", NOW, taken={third})  # third: a running job's, not saved yet
    assert fourth != third
    assert first.read_bytes() == b"a finished run"


def test_the_name_says_when_and_with_which_settings(tmp_path):
    p = new_run_path(tmp_path, "e3_b128")
    when = dt.datetime.strptime(p.name.split("_")[1][:15], "%Y%m%d-%H%M%S")
    assert abs((dt.datetime.now() - when).total_seconds()) < 60
    assert p.name.endswith("_e3_b128.pt")
