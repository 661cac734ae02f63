"""The sidebar's training section (ui.training) through streamlit.testing.v1.AppTest.

Runs tests/apps/training_harness.py (the section alone, as app.py draws it) with small real
trainings on MNIST ($CVAE_DATA, or ../shared/mnist; without it these tests skip, and fail
under CI=true). The runs are child processes (cvae.jobs); the tests wait on the job itself,
reached through the section's registry, and rerun the page once it changed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from cvae import load_checkpoint
from cvae.training.jobs import TrainJob
from ui.training import job_text

from devkit import REPO

from streamlit.testing.v1 import AppTest

HARNESS = str(REPO / "tests" / "apps" / "training_harness.py")
SCRIPT_TIMEOUT = 120  # one rerun of the harness (imports torch the first time) on a busy 2-core machine
RUN_TIMEOUT = 240  # a whole small run
LONG = 200  # epochs (the form's most) of 8 steps: a run the test stops, far too long to end first


@pytest.fixture
def env(monkeypatch, tmp_path, small_mnist):
    # MNIST's first 1,024 training and 1,000 test images (conftest); skips without MNIST, fails under CI=true
    monkeypatch.setenv("CVAE_DATA", str(small_mnist))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    yield tmp_path
    # A test that failed half-way must not leave its run going into the next test.
    assert registry().stop_all(timeout=60), "a training from this test did not end"


def page(**state) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=SCRIPT_TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def registry():
    """The section's registry (one per process, like the server's), reached from outside a
    script run, which Streamlit's cache logs a warning about for every call: silenced here."""
    from ui.training import job_registry

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    return job_registry()


def job_of(at: AppTest) -> TrainJob:
    """The run this page started."""
    job = registry().get(at.session_state["train_job_id"])
    assert job is not None, "the page's run is not in the registry"
    return job


def start(at: AppTest, *, epochs: int, batch: int, limit: int) -> TrainJob:
    at.sidebar.radio(key="train_length").set_value("Epochs").run()
    at.sidebar.number_input(key="train_epochs").set_value(epochs)
    at.sidebar.number_input(key="train_batch").set_value(batch)
    at.sidebar.number_input(key="train_limit").set_value(limit)
    train_button(at).click()
    at.run()
    no_errors(at)
    return job_of(at)


def train_button(at: AppTest):
    (button,) = [b for b in at.sidebar.button if b.label == "Train"]
    return button


def stop_button(at: AppTest):
    buttons = [b for b in at.sidebar.button if b.key == "stop_training"]
    return buttons[0] if buttons else None


def progress_text(at: AppTest) -> str:
    texts, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "type", None) == "progress":
            texts.append(node.proto.text)
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    assert len(texts) <= 1, texts
    return texts[0] if texts else ""


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def wait_until(job: TrainJob, cond, timeout: float, what: str) -> None:
    """Wait for ``cond(job)``, waking when the job ends or every 0.1 s; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond(job):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (job {job.status}: {job_text(job)!r})")
        job.wait(0.1)


def ended(at: AppTest, job: TrainJob, timeout: float = RUN_TIMEOUT) -> None:
    """Wait for the run to end, then rerun the page (as its polling does) so it shows the end."""
    assert job.wait(timeout), f"the run did not end within {timeout} s: {job_text(job)!r}"
    at.run()


@pytest.mark.slow  # a training child process
def test_a_run_from_the_form_finishes_and_switches_to_the_new_model(env):
    at = page()
    no_errors(at)
    assert not train_button(at).disabled and stop_button(at) is None and progress_text(at) == ""
    job = start(at, epochs=1, batch=128, limit=256)
    # While it runs: Train is disabled, Stop is offered, the progress says what happens.
    assert job.running, job_text(job)
    assert train_button(at).disabled and stop_button(at) is not None
    assert progress_text(at).startswith("Training: ")
    assert not any("another tab" in c.value for c in at.sidebar.caption)
    ended(at, job)
    no_errors(at)
    assert job.status == "done", job_text(job)
    assert progress_text(at).startswith("Finished: finished 1 epoch;"), progress_text(at)
    saved = Path(at.session_state["_pending_model"])
    assert saved == job.out and saved.parent == env / "runs" and saved.is_file()
    assert [s.value for s in at.sidebar.success] == [f"Saved {saved.name} and switched to it."]
    model = load_checkpoint(saved)
    assert model.meta["train_config"]["limit"] == 256 and len(model.meta["history"]) == 1
    assert stop_button(at) is None and not train_button(at).disabled
    # The notice is shown once; the end is handled once.
    at.run()
    assert not at.sidebar.success and at.session_state["_acknowledged_job"] == job.id


@pytest.mark.slow  # a run in a child process, stopped after its first epoch
def test_the_stop_button_stops_the_run_early_and_keeps_its_best_epoch(env):
    at = page()
    job = start(at, epochs=LONG, batch=32, limit=256)
    wait_until(job, lambda j: j.history or not j.running, RUN_TIMEOUT, "the first epoch")
    assert job.running, job_text(job)
    at.run()
    stop_button(at).click()
    at.run()
    no_errors(at)
    assert job.stop_requested
    # Until the run ends (it may already have), the button shows it was pressed.
    assert stop_button(at) is None or stop_button(at).disabled
    ended(at, job, 120)
    no_errors(at)
    assert job.status == "stopped" and job.exitcode == 0, (job.status, job_text(job), job.exitcode)
    assert progress_text(at).startswith("Stopped: training stopped by request"), progress_text(at)
    assert len(job.history) < LONG and job.steps[-1][0] < LONG
    # It kept the best epoch so far, and the page switched to it.
    model = load_checkpoint(at.session_state["_pending_model"])
    assert model.meta["extra"]["stop_reason"] == "stopped" and len(model.meta["history"]) == len(job.history)
    assert stop_button(at) is None and not train_button(at).disabled


@pytest.mark.slow  # two runs in child processes, one after the other
def test_another_tab_follows_the_run_and_can_stop_it(env):
    mine = page()
    job = start(mine, epochs=LONG, batch=32, limit=256)
    other = page()  # a second session of the same server process
    no_errors(other)
    assert job.running, job_text(job)
    assert progress_text(other).startswith("Training: ")
    assert train_button(other).disabled
    assert any("Started from another tab or session." in c.value for c in other.sidebar.caption)
    stop_button(other).click()
    other.run()
    ended(other, job, 120)
    assert job.status == "stopped", job_text(job)
    assert progress_text(other).startswith("Stopped: ")  # it sees how the run it followed ended
    assert "_pending_model" not in other.session_state  # only the tab that started it switches
    assert not any("another tab" in c.value for c in other.sidebar.caption)
    assert not train_button(other).disabled
    mine.run()
    assert progress_text(mine).startswith("Stopped: ")
    # Now the other tab starts a run: the first one shows that run, not its own old one.
    second = start(other, epochs=LONG, batch=32, limit=256)
    mine.run()
    assert second.running, job_text(second)
    assert progress_text(mine).startswith("Training: ") and train_button(mine).disabled
    assert any("Started from another tab or session." in c.value for c in mine.sidebar.caption)
    stop_button(mine).click()
    mine.run()
    ended(mine, second, 120)
    assert second.status == "stopped", job_text(second)
    assert progress_text(mine).startswith("Stopped: ")
    assert mine.session_state["_acknowledged_job"] == job.id  # its own run's end was handled once


@pytest.mark.slow  # a training child process
def test_a_failed_run_shows_its_reason(env):
    (env / "runs").write_text("a file where the runs folder should be")
    at = page()
    job = start(at, epochs=1, batch=128, limit=256)
    ended(at, job)
    assert job.status == "failed", job_text(job)
    assert job.steps == [] and job.history == []  # said before the first step, not after an epoch
    assert progress_text(at).startswith("Failed: ")
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "cannot write here" in errors[0] and str(env / "runs") in errors[0], errors
    assert "_pending_model" not in at.session_state and not at.sidebar.success
    assert not train_button(at).disabled


def test_a_finished_run_that_collapsed_says_so(env):
    """The page writes what the job's data says: a run whose z2 collapsed gets the warning."""
    import cvae

    job = TrainJob(cvae.TrainConfig.from_recipe("quick"), env / "runs" / "q.pt", env)
    job.status, job.saved, job.history = "done", False, [{"epoch": 1, "val_loss": 190.0, "loss": 200.0}]
    job.result = {"stop_reason": "completed", "message": "finished 1 epochs", "best_epoch": 1,
                  "spread": [1.1, 0.03]}
    registry()._jobs[job.id] = job
    try:
        at = page(train_job_id=job.id, _acknowledged_job=job.id)
        warnings = [w.value for w in at.sidebar.warning]
        assert len(warnings) == 1 and warnings[0].startswith("Posterior collapse in z2 (spread 0.030)"), warnings
        job.result["spread"] = [1.1, 0.8]
        at.run()
        assert not at.sidebar.warning
    finally:
        registry()._jobs.pop(job.id, None)


def test_a_running_budget_too_short_to_spread_says_so_above_the_film(env):
    """The budget's plan event, a second into the run, reaches the page: its sentence as a warning while
    the run goes on; no warning for a plan that fits."""
    import cvae

    job = TrainJob(cvae.TrainConfig.from_recipe("quick"), env / "runs" / "q.pt", env)
    job.phase = "training"
    job._handle("event", {"kind": "plan", "steps": 250, "needed": 700, "seconds": 60.0,
                          "warning": "This budget fits about 250 training steps in 60 s ..."})
    registry()._jobs[job.id] = job
    try:
        at = page(train_job_id=job.id)
        assert [w.value for w in at.sidebar.warning] == ["This budget fits about 250 training steps in 60 s ..."]
        job._handle("event", {"kind": "plan", "steps": 2500, "needed": 700, "seconds": 60.0, "warning": None})
        at.run()
        assert not at.sidebar.warning
    finally:
        job.status = "stopped"
        registry()._jobs.pop(job.id, None)


@pytest.mark.slow  # a timed training child process
def test_the_quick_form_trains_for_the_seconds_given(env):
    at = page()
    at.sidebar.number_input(key="train_seconds").set_value(90)
    train_button(at).click()
    at.run()
    no_errors(at)
    job = job_of(at)
    try:
        assert job.cfg.recipe == "quick" and job.cfg.seconds == 90
        assert job.out.name.endswith("_90s.pt")
    finally:
        job.stop()
        ended(at, job)


@pytest.mark.slow  # a training child process
def test_the_form_starts_a_one_minute_quick_run_by_default(env):
    at = page()
    assert at.sidebar.radio(key="train_length").value == "Quick: a time budget"
    train_button(at).click()
    at.run()
    no_errors(at)
    job = job_of(at)
    try:
        assert job.cfg.recipe == "quick" and job.cfg.seconds == 60 and job.cfg.batch_size == 32
        assert job.out.name.endswith("_60s.pt")
    finally:
        job.stop()
        ended(at, job)


def test_every_tab_sees_the_latest_snapshot_and_curves_of_a_run(env):
    """The live film and curves (built once per change for every tab following the run) show
    the newest snapshot and epoch after each rerun."""
    import numpy as np

    from cvae.training.config import TrainConfig
    from test_app import plotly_array, plotly_spec

    reg = registry()
    job = TrainJob(TrainConfig.from_recipe("fast", epochs=4), "/nonexistent/never-written.pt", "unused")
    job.status = "running"  # as the reader thread sets it; no process behind it
    reg._jobs[job.id] = job
    rng = np.random.default_rng(0)

    def snapshot(step):
        z = rng.normal(size=(2000, 2)).astype(np.float16)
        job._handle("event", {"kind": "snapshot", "step": step, "epoch": step / 10, "z": z,
                              "labels": np.arange(2000) % 10, "loss": 200.0 - step, "val_loss": None})
        return z

    try:
        snapshot(1)
        job._handle("event", {"kind": "step", "epoch": 1, "step": 5, "steps": 10, "loss": 190.0})
        at = page()
        for k in range(2, 5):
            z = snapshot(k)
            job._handle("event", {"kind": "step", "epoch": 1, "step": 10, "steps": 10, "loss": 180.0 - k})
            job._handle("event", {"kind": "epoch", "epoch": k - 1, "loss": 170.0 - k, "val_loss": 175.0 - k})
            at.run()
            film = plotly_spec(at, "film_live")
            xs = np.concatenate([plotly_array(t["x"]) for t in film["data"] if t.get("type") == "scattergl"])
            assert sorted(xs.astype(np.float32)) == sorted(z[:, 0].astype(np.float32))  # the newest snapshot
            curves = plotly_spec(at, "train_live_chart")
            val = next(t for t in curves["data"] if "val" in (t.get("name") or ""))
            assert list(plotly_array(val["y"]))[-1] == pytest.approx(175.0 - k)  # the newest epoch
    finally:
        job.status = "done"
        reg._jobs.pop(job.id, None)
