"""cvae.training.jobs: trainings in a child process, through small real runs on MNIST.

MNIST comes from $CVAE_DATA (or ../shared/mnist beside the repo); without it these tests
skip, except under CI=true, where they fail. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import dataclasses

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import cvae
from cvae import load_checkpoint
from cvae.core.data import fingerprint
from cvae.training.jobs import JobBusyError, JobRegistry, TrainJob
from ui.training import job_text

from devkit import REPO

cvae_hardware = importlib.import_module("cvae.training.hardware")
TIMEOUT = 240  # a whole small run on a busy 2-core machine
LONG = 500  # epochs of a run the test stops: far more than can pass before it does (8 steps and 1,000 test images each)


@pytest.fixture(scope="module")
def data(small_mnist) -> str:
    """MNIST's first 1,024 training and 1,000 test images (conftest): the runs here use 256."""
    return str(small_mnist)  # skips without MNIST; fails under CI=true


def config(**kw) -> cvae.TrainConfig:
    """A few steps of the app's recipe on a few hundred images, on the CPU."""
    values = dict(epochs=2, batch_size=64, limit=256, patience=0, device="cpu")
    values.update(kw)
    return cvae.TrainConfig.from_recipe(cvae.DEFAULT_RECIPE, **values)


def wait_for(cond, timeout: float, what: str, job: TrainJob | None = None):
    """Poll ``cond()`` until it is true; fail with ``what`` (and the job's state) at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            state = f" (job: {job.status}, {job_text(job)!r})" if job is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f} s{state}")
        if job is not None:
            job.wait(0.05)  # returns at once when the job ends
        else:
            time.sleep(0.05)


def finished(job: TrainJob, timeout: float = TIMEOUT) -> TrainJob:
    assert job.wait(timeout), f"the job did not end within {timeout} s: {job.status}, {job_text(job)!r}"
    assert job.status != "running"
    return job


# --------------------------------------------------------------------------- a whole run

@pytest.fixture(scope="module")
def completed(data, tmp_path_factory):
    """One 2-epoch run, watched while it runs, with spies on what train() changes process-wide.

    ``torch.set_num_threads`` and ``cvae.training.hardware.keep_freed_memory`` (glibc's malloc settings)
    are wrapped in this, the server's, process: a trainer running here would call them."""
    out = tmp_path_factory.mktemp("jobs") / "run.pt"
    calls: list[str] = []
    seen = {"progress": [], "threads": set()}
    real_set_threads, real_keep = torch.set_num_threads, cvae_hardware.keep_freed_memory
    threads_before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "set_num_threads", lambda n: (calls.append(f"set_num_threads({n})"), real_set_threads(n)))
        mp.setattr(cvae_hardware, "keep_freed_memory", lambda: (calls.append("keep_freed_memory"), real_keep())[1])
        # workers=2 on the stock layers: the trainer sets one thread per shard during steps.
        job = JobRegistry().start(config(workers=2, precision="fp32"), out, data)
        deadline = time.monotonic() + TIMEOUT
        while not job.wait(0.05):
            seen["progress"].append(job.progress)
            seen["threads"].add(torch.get_num_threads())
            assert time.monotonic() < deadline, f"the run did not end within {TIMEOUT} s: {job_text(job)!r}"
    return job, out, calls, seen, threads_before


@pytest.mark.slow  # a two-epoch run in a child process
def test_a_run_reports_progress_history_and_saves_its_checkpoint(completed, data):
    job, out, _, seen, _ = completed
    assert job.status == "done", job_text(job)
    assert "finished 2 epochs" in job_text(job) and job.saved and job.out == out
    assert job.progress == 1.0 and job.exitcode == 0
    # Progress was seen between 0 and 1 while it ran, and never went back.
    assert any(0 < p < 1 for p in seen["progress"]), seen["progress"][-5:]
    assert seen["progress"] == sorted(seen["progress"])
    # 256 images in batches of 64: 4 steps an epoch, each a point of the live curve.
    assert [round(f, 4) for f, _ in job.steps] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert all(np.isfinite(loss) and loss > 0 for _, loss in job.steps)
    assert [r["epoch"] for r in job.history] == [1, 2]
    assert all("kind" not in r and r["images"] == 256 for r in job.history)
    model = load_checkpoint(out)
    assert [r["val_loss"] for r in model.meta["history"]] == pytest.approx([r["val_loss"] for r in job.history])
    assert model.meta["train_config"]["limit"] == 256
    assert model.meta["extra"]["stop_reason"] == "completed"
    # It trained on the first 256 images of the training split, not of the test split.
    train_x, test_x = (cvae.load_mnist(split, data, download=False)[0][:256] for split in ("train", "test"))
    assert model.meta["extra"]["train_images_sha256"] == fingerprint(train_x) != fingerprint(test_x)
    # The job keeps data; the page writes the sentence.
    assert job.result["stop_reason"] == "completed" and job.result["best_epoch"] == job.best_epoch == 2
    assert job.error is None and not job.forced and job.phase == "training"


@pytest.mark.slow  # a two-epoch run in a child process
def test_a_run_forwards_the_trainers_film_snapshots(completed):
    job = completed[0]
    snaps = job.snapshots
    # At the start, during the first epoch, after each epoch (cvae.film decides how many).
    assert len(snaps) >= 3 and all(s["kind"] == "snapshot" for s in snaps)
    assert snaps[0]["step"] == 0 and snaps[-1]["epoch"] == 2.0
    assert [s["step"] for s in snaps] == sorted(s["step"] for s in snaps)
    assert all(s["z"].dtype == np.float16 and s["z"].shape == (len(s["labels"]), 2) for s in snaps)


@pytest.mark.slow  # a two-epoch run in a child process
def test_the_server_process_keeps_its_threads_and_allocator(completed):
    job, _, calls, seen, threads_before = completed
    assert job.status == "done", job_text(job)
    assert job.pid != os.getpid()
    assert calls == [], f"the trainer changed this process: {calls}"
    assert seen["threads"] == {threads_before} and torch.get_num_threads() == threads_before


def test_every_event_kind_reaches_its_field():
    """The reader's routing, with events shaped as the trainer sends them."""
    job = TrainJob(config(epochs=4), "/nonexistent/never-written.pt", "unused")
    snap = {"kind": "snapshot", "step": 3, "epoch": 1, "z": np.zeros((2000, 2), np.float16),
            "labels": np.arange(2000) % 10, "loss": 200.0, "val_loss": None}
    job._handle("event", {"kind": "step", "epoch": 2, "step": 5, "steps": 10, "loss": 180.0})
    job._handle("event", snap)
    job._handle("event", {"kind": "epoch", "epoch": 2, "loss": 170.0, "val_loss": 175.0})
    job._handle("event", {"kind": "something-new", "epoch": 2})  # unknown kinds are ignored
    assert job.progress == pytest.approx(1.5 / 4) and job.steps == [(1.5, 180.0)]
    assert job.snapshots == [snap] and job.snapshots[0]["z"].dtype == np.float16
    assert job.history == [{"epoch": 2, "loss": 170.0, "val_loss": 175.0}]
    assert "val_loss 175.00" in job_text(job)


# --------------------------------------------------------------------------- stop

@pytest.mark.slow  # a run in a child process, stopped after its first epoch
def test_stop_ends_the_run_early_and_keeps_the_best_checkpoint(data, tmp_path):
    """LONG epochs of 8 steps asked for; Stop after the first epoch ends it there, cooperatively."""
    out = tmp_path / "stopped.pt"
    job = JobRegistry().start(config(epochs=LONG, batch_size=32), out, data)
    wait_for(lambda: job.history, TIMEOUT, "the first epoch", job)
    job.stop()
    assert job.stop_requested and job.running
    finished(job, 120)
    assert job.status == "stopped", job_text(job)
    assert job_text(job).startswith("training stopped by request"), job_text(job)
    assert job.exitcode == 0, "the child should have ended by itself, not by the hard stop"
    assert len(job.history) < LONG and job.steps[-1][0] < LONG and job.progress < 1
    assert len(job.steps) < LONG * 8
    assert job.saved and out.is_file()
    model = load_checkpoint(out)
    assert model.meta["extra"]["stop_reason"] == "stopped"
    assert len(model.meta["history"]) == len(job.history)
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file of the atomic write was left behind"


def test_a_child_that_does_not_stop_is_ended_after_the_grace_period(data, tmp_path):
    """grace 0: the stop request cannot be honoured while the child still loads torch and MNIST,
    so the hard stop ends it; the job says so and is never left running."""
    reg = JobRegistry(grace_s=0.0)
    job = reg.start(config(epochs=LONG), tmp_path / "never.pt", data)
    job.stop()
    finished(job, 60)
    assert job.status == "stopped", job_text(job)
    assert "did not stop within 0 s" in job_text(job) and "nothing was saved" in job_text(job), job_text(job)
    assert job.exitcode is not None and job.exitcode < 0
    assert not job.saved and not (tmp_path / "never.pt").exists()
    assert reg.active() is None


@pytest.mark.slow  # a child process and its grace period
def test_a_hung_child_is_terminated_then_killed_after_the_grace_period(data, tmp_path):
    """A child frozen mid-training (SIGSTOP: it reads no stop flag and SIGTERM waits until it
    would continue) is ended by the hard stop: terminate after the grace period, then kill."""
    reg = JobRegistry(grace_s=0.5)
    job = reg.start(config(epochs=LONG, batch_size=32), tmp_path / "hung.pt", data)
    wait_for(lambda: job.steps, TIMEOUT, "the first steps", job)
    os.kill(job.pid, signal.SIGSTOP)
    asked = time.monotonic()
    job.stop()
    assert job.running and job.stop_requested
    try:
        finished(job, 60)
    finally:
        if job.running:  # the hard stop failed: clean up, or the frozen child blocks pytest's exit
            os.kill(job.pid, signal.SIGKILL)
    assert time.monotonic() - asked >= 0.5
    assert job.status == "stopped", job_text(job)
    assert "did not stop within 0.5 s of the request and was ended" in job_text(job), job_text(job)
    assert job.exitcode == -signal.SIGKILL
    assert reg.active() is None


# --------------------------------------------------------------------------- failures

@pytest.mark.slow  # a training child process
def test_missing_mnist_is_a_failed_job_with_the_reason(tmp_path):
    job = finished(JobRegistry().start(config(), tmp_path / "x.pt", tmp_path / "no-mnist-here"), 120)
    assert job.status == "failed"
    assert "MNIST was not found" in job_text(job) and str(tmp_path / "no-mnist-here") in job_text(job), job_text(job)
    assert job.error["traceback"] is None and not job.saved  # an error a person can fix: no traceback


@pytest.mark.slow  # a training child process
def test_a_config_the_trainer_refuses_is_a_failed_job_with_the_reason(data, tmp_path):
    job = finished(JobRegistry().start(config(device="tpu"), tmp_path / "x.pt", data), 120)
    assert job.status == "failed" and job_text(job) == "unknown device 'tpu'; use auto, cpu, cuda or mps"
    assert not job.saved and not (tmp_path / "x.pt").exists()


def test_an_invalid_config_is_refused_before_anything_starts(tmp_path):
    reg = JobRegistry()
    cfg = config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 0  # checked once, on creation, and never changed after
    object.__setattr__(cfg, "epochs", 0)  # forced past the freeze: the registry checks again
    with pytest.raises(ValueError, match="epochs must be 1..10000"):
        reg.start(cfg, tmp_path / "x.pt", "unused")
    assert reg.jobs == []


@pytest.mark.slow  # a training child process, killed
def test_a_killed_child_is_a_failed_job_not_a_hang(data, tmp_path):
    out = tmp_path / "killed.pt"
    job = JobRegistry().start(config(epochs=LONG, batch_size=32), out, data)
    wait_for(lambda: job.steps, TIMEOUT, "the first steps", job)
    os.kill(job.pid, signal.SIGKILL)
    finished(job, 60)
    assert job.status == "failed"
    assert "ended unexpectedly (killed by SIGKILL" in job_text(job), job_text(job)
    assert "nothing was saved" in job_text(job) and not job.saved
    assert job.exitcode == -signal.SIGKILL


ORPHAN_SCRIPT = """
import sys
import cvae
from cvae.training.jobs import JobRegistry
cfg = cvae.TrainConfig.from_recipe(cvae.DEFAULT_RECIPE, epochs=500, batch_size=32, limit=256, device="cpu")
job = JobRegistry().start(cfg, sys.argv[1], sys.argv[2])
print(job.pid, flush=True)
while not job.steps and job.running:
    job.wait(0.05)
print(job.status, flush=True)
sys.stdin.read()  # until killed
"""


def _alive(pid: int) -> bool:
    """A process that has not exited (a zombie waiting for its reaper counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc (Linux)")
@pytest.mark.slow  # a server and its training child, killed
def test_a_killed_server_leaves_no_training_behind(data, tmp_path):
    """The server dies (SIGKILL: no clean-up runs); its training child notices at its next
    message (the pipe is broken) and exits instead of training on, unseen, for ever."""
    server = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path / "orphan.pt"), data],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child = int(server.stdout.readline())
        assert server.stdout.readline().strip() == "running", "the run did not reach its first steps"
        assert _alive(child)
    finally:
        server.kill()
        server.wait()
    try:
        wait_for(lambda: not _alive(child), 60, f"the training process {child} to exit after its server died")
    finally:
        if _alive(child):  # do not leave it training for the rest of the session
            os.kill(child, signal.SIGKILL)


# --------------------------------------------------------------------------- the registry

def test_one_run_at_a_time(data, tmp_path):
    reg = JobRegistry(grace_s=0.0)
    first = reg.start(config(epochs=LONG), tmp_path / "a.pt", data)
    with pytest.raises(JobBusyError, match="another training is running"):
        reg.start(config(), tmp_path / "b.pt", data)
    assert reg.jobs == [first] and reg.active() is first and reg.get(first.id) is first
    first.stop()
    finished(first, 60)
    assert reg.active() is None
    second = reg.start(config(epochs=LONG), tmp_path / "c.pt", data)  # free again once it ended
    assert reg.active() is second
    second.stop()
    finished(second, 60)


def test_finished_jobs_are_pruned_to_the_most_recent(tmp_path):
    reg = JobRegistry(keep_finished=2, grace_s=0.0)
    started = []
    for i in range(4):
        job = reg.start(config(), tmp_path / f"{i}.pt", tmp_path / "no-mnist-here")
        started.append(job)
        job.stop()  # ended at once: the hard stop, with no grace
        finished(job, 60)
        assert reg.jobs == started[-2:], i
    assert reg.get(started[0].id) is None and reg.get(started[-1].id) is started[-1]


@pytest.mark.slow  # a training child process
def test_the_training_child_runs_at_the_chosen_niceness(data, tmp_path, monkeypatch):
    """CHILD_NICE as measured by benchmarks/train_priority.py (docs/performance.md): the run keeps most of
    its pace beside other programs and the class's commits stay quick; $CVAE_TRAIN_NICE overrides it,
    as the server reads it when a run starts (here set after a first run started the forkserver,
    whose own environment is the one it had then)."""
    from cvae.training.jobs import CHILD_NICE, child_nice

    assert CHILD_NICE == 5
    base = os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.delenv("CVAE_TRAIN_NICE", raising=False)
    reg = JobRegistry()
    for value, want in ((None, CHILD_NICE), ("9", 9)):
        if value is not None:
            monkeypatch.setenv("CVAE_TRAIN_NICE", value)
        job = reg.start(config(epochs=50), tmp_path / "n.pt", data)
        try:
            wait_for(lambda job=job: job.phase != "starting", TIMEOUT, "the child's first message", job)
            assert os.getpriority(os.PRIO_PROCESS, job.pid) == min(base + want, 19), value
        finally:
            job.stop()
            finished(job)
    for value, want in (("12", 12), ("0", 0), ("40", 19), ("-3", 0), ("fast", CHILD_NICE), ("", CHILD_NICE)):
        monkeypatch.setenv("CVAE_TRAIN_NICE", value)
        assert child_nice() == want, value
