"""A training job as the app's sidebar sees it (cvae.training.jobs), in milliseconds: the real
JobRegistry, TrainJob, pipe, stop flag and child process, with a stand-in trainer in the child.

The registry's children are forked here from this test's process, not from the app's forkserver
(which imports the real trainer and torch): a child forked here inherits this test's stand-ins for
``load_mnist`` and ``train``, which send the events a real run sends, wait on gates the test
opens, honour the stop flag or not, raise, hang or die, as each test needs. The child never runs
torch. What a job reports (status, phase, progress, history, steps, plan, result, error, exit
code, saved) is checked against what the stand-in did. tests/test_jobs.py runs real trainings."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import cvae
from cvae.core import data as cvae_data
from cvae.core.checkpoint import CheckpointError
from cvae.core.data import DataMissingError
from cvae.training import jobs, loop
from cvae.training.jobs import CHILD_NICE, JobBusyError, JobRegistry, TrainJob, child_nice

FORK = mp.get_context("fork")
TIMEOUT = 30

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forks its stand-in children (POSIX)")


def config(**kw) -> cvae.TrainConfig:
    values = dict(epochs=2, batch_size=8, patience=0, device="cpu", film=False)
    values.update(kw)
    return cvae.TrainConfig(**values)


MADE: list[JobRegistry] = []


def registry(**kw) -> JobRegistry:
    reg = JobRegistry(**kw)
    reg._ctx = FORK  # see the module's docstring
    MADE.append(reg)
    return reg


def finished(job: TrainJob, timeout: float = TIMEOUT) -> TrainJob:
    assert job.wait(timeout), f"the job did not end within {timeout} s: {job.status}"
    assert job.status != "running"
    return job


def wait_for(cond, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.005)


def hang() -> None:
    """In the child: do nothing until killed; gone by itself TIMEOUT s on, or once its parent is
    (a broken job must not leave a process behind, nor one that ignores SIGTERM at exit)."""
    parent, deadline = os.getppid(), time.monotonic() + TIMEOUT
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(9)


def result(reason="completed", best=2, message="finished") -> SimpleNamespace:
    return SimpleNamespace(stop_reason=reason, message=message, best_epoch=best, spread=[1.5, 0.5])


def step(epoch, s, steps, loss=100.0, **kw) -> dict:
    return {"kind": "step", "epoch": epoch, "step": s, "steps": steps, "loss": loss, "images": 8, **kw}


@pytest.fixture
def child(monkeypatch):
    """What the forked child does: ``child.load()`` while "loading" (default: nothing) and
    ``child.run(cfg, callback, out)`` in place of the trainer, which returns its result."""
    state = SimpleNamespace(load=lambda: None, run=None, calls=[])

    def load_mnist(split, data, download=True):
        assert download is False, "a training child never downloads MNIST"
        state.load()
        return f"{split} images of {data}", f"{split} labels"

    def train(cfg, train_x, test_x, *, test_y, callback, out, started):
        assert isinstance(cfg, cvae.TrainConfig) and cfg.batch_size == 8
        assert (train_x, test_x, test_y) == ("train images of data-dir", "test images of data-dir", "test labels")
        assert started > 0 and out.endswith("run.pt")
        return state.run(cfg, callback, out)

    monkeypatch.setattr(cvae_data, "load_mnist", load_mnist)
    monkeypatch.setattr(loop, "train", train)
    yield state
    for reg in MADE:  # a test that failed may leave its child running: end it
        for job in reg.jobs:
            if job.running and job.pid is not None:
                try:
                    os.kill(job.pid, signal.SIGKILL)
                except OSError:
                    pass
    MADE.clear()


def epochs_run(epochs, steps, *, write=True, best=2, reason="completed", losses=(3.0, 1.0, 2.0)):
    def run(cfg, callback, out):
        for e in range(1, epochs + 1):
            for s in range(1, steps + 1):
                callback(step(e, s, steps, loss=100.0 * e + s))
            callback({"kind": "epoch", "epoch": e, "loss": 10.0 * e, "val_loss": losses[e - 1]})
        if write:
            Path(out).write_bytes(b"a checkpoint")
        return result(reason, best)
    return run


def test_a_finished_run_reports_its_history_steps_and_result(child, tmp_path):
    child.run = epochs_run(2, 4)
    job = registry().start(config(epochs=2), tmp_path / "run.pt", "data-dir")
    finished(job)
    assert job.status == "done" and job.progress == 1.0 and not job.running
    assert job.result == {"stop_reason": "completed", "message": "finished", "best_epoch": 2, "spread": [1.5, 0.5]}
    assert job.error is None and job.exitcode == 0 and not job.forced and job.saved
    assert job.history == [{"epoch": 1, "loss": 10.0, "val_loss": 3.0}, {"epoch": 2, "loss": 20.0, "val_loss": 1.0}]
    assert job.best_epoch == 2
    assert job.steps == [(e - 1 + s / 4, 100.0 * e + s) for e in (1, 2) for s in (1, 2, 3, 4)]
    assert job.last_step == {"epoch": 2, "step": 4, "steps": 4, "loss": 204.0}
    assert job.planned_epochs == 2 and job.plan is None and job.snapshots == []
    assert job.started <= job.finished <= time.time()


def test_the_best_epoch_is_the_lowest_test_loss_so_far(child, tmp_path):
    child.run = epochs_run(3, 1, losses=(3.0, 1.0, 2.0))
    job = finished(registry().start(config(epochs=3), tmp_path / "run.pt", "data-dir"))
    assert job.best_epoch == 2
    assert TrainJob(config(), tmp_path / "x.pt", "data-dir").best_epoch is None


@pytest.mark.parametrize("steps, points", [(101, 51), (100, 50), (7, 7)])
def test_the_loss_curve_keeps_about_50_points_an_epoch_and_the_last_step(child, tmp_path, steps, points):
    child.run = epochs_run(1, steps)
    job = finished(registry().start(config(epochs=1), tmp_path / "run.pt", "data-dir"))
    assert len(job.steps) == points and job.steps[-1] == (1.0, 100.0 + steps)


def test_progress_and_phases_while_it_runs(child, tmp_path):
    """Gates the test opens one by one: loading, a first step (an eighth of two epochs of four
    steps), the epoch's last step (validating), the epoch's record (training again)."""
    gates = [FORK.Event() for _ in range(4)]
    child.load = lambda: gates[0].wait(TIMEOUT)

    def run(cfg, callback, out):
        callback(step(1, 1, 4))
        gates[1].wait(TIMEOUT)
        callback(step(1, 4, 4, loss=90.0))
        gates[2].wait(TIMEOUT)
        callback({"kind": "epoch", "epoch": 1, "val_loss": 5.0})
        gates[3].wait(TIMEOUT)
        return result()

    child.run = run
    job = registry().start(config(epochs=2), tmp_path / "run.pt", "data-dir")
    try:
        assert job.running and not job.wait(0) and job.pid not in (None, os.getpid())
        wait_for(lambda: job.phase == "loading", "loading")
        assert job.progress == 0.0 and job.last_step is None
        gates[0].set()
        wait_for(lambda: job.last_step is not None, "the first step")
        assert job.phase == "training" and job.progress == pytest.approx(1 / 8)
        assert job.last_step == {"epoch": 1, "step": 1, "steps": 4, "loss": 100.0}
        gates[1].set()
        wait_for(lambda: job.last_step["step"] == 4, "the last step")
        assert job.phase == "validating" and job.progress == pytest.approx(1 / 2)
        gates[2].set()
        wait_for(lambda: job.history, "the epoch's record")
        assert job.phase == "training" and job.running
    finally:
        for g in gates:
            g.set()
    finished(job)
    assert job.status == "done" and job.progress == 1.0


def test_a_time_budget_plans_its_epochs_from_the_progress_it_reports(child, tmp_path):
    """Half an epoch done at a quarter of the plan: two epochs planned (not three); then the
    plan moves; progress is the budget's, never past 1."""
    seen = []
    gate = FORK.Event()

    def run(cfg, callback, out):
        callback(step(1, 5, 10, progress=0.25))
        callback({"kind": "plan", "steps": 40, "needed": 700, "seconds": 60, "warning": None})
        gate.wait(TIMEOUT)
        callback(step(2, 10, 10, progress=2 / 3))
        gate.wait(TIMEOUT)
        callback(step(3, 1, 10, progress=1.5))
        return result("stopped")

    child.run = run
    job = registry().start(config(epochs=30), tmp_path / "run.pt", "data-dir")
    try:
        wait_for(lambda: job.plan is not None, "the plan")
        seen.append((job.progress, job.planned_epochs))
        assert job.plan == {"kind": "plan", "steps": 40, "needed": 700, "seconds": 60, "warning": None}
    finally:
        gate.set()
    finished(job)
    assert seen == [(0.25, 2)]
    assert job.planned_epochs == 3 and job.progress == 1.0


def test_a_budgets_planned_epochs_follow_each_step(child, tmp_path):
    gates = [FORK.Event() for _ in range(2)]

    def run(cfg, callback, out):
        callback(step(2, 10, 10, progress=2 / 3))
        gates[0].wait(TIMEOUT)
        callback(step(3, 1, 10, progress=0.5))
        gates[1].wait(TIMEOUT)
        return result(reason="stopped")

    child.run = run
    job = registry().start(config(epochs=30), tmp_path / "run.pt", "data-dir")
    try:
        wait_for(lambda: job.last_step is not None, "the first step")
        assert (job.progress, job.planned_epochs) == (pytest.approx(2 / 3), 3)
        gates[0].set()
        wait_for(lambda: job.last_step["epoch"] == 3, "the second step")
        assert (job.progress, job.planned_epochs) == (0.5, 5)
    finally:
        for g in gates:
            g.set()
    finished(job)
    assert job.status == "stopped" and job.progress == 0.5  # only a run that is done is at 100%


def test_snapshots_and_plans_reach_the_job_and_other_kinds_are_ignored(child, tmp_path):
    def run(cfg, callback, out):
        callback({"kind": "snapshot", "epoch": 0, "step": 0, "z": [[0.0, 1.0]]})
        callback({"kind": "something-new", "epoch": 9})
        callback({"kind": "snapshot", "epoch": 1, "step": 4, "z": [[1.0, 0.0]]})
        return result(best=None)

    child.run = run
    job = finished(registry().start(config(), tmp_path / "run.pt", "data-dir"))
    assert [(s["epoch"], s["step"]) for s in job.snapshots] == [(0, 0), (1, 4)]
    assert job.history == [] and job.steps == [] and job.plan is None and job.last_step is None


@pytest.mark.parametrize("reason, status", [("completed", "done"), ("early_stopping", "done"),
                                            ("stopped", "stopped"), ("nan", "failed")])
def test_how_the_trainer_ended_is_the_jobs_status(child, tmp_path, reason, status):
    child.run = epochs_run(1, 2, reason=reason, best=1)
    job = finished(registry().start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.status == status and job.result["stop_reason"] == reason and job.saved
    assert job.progress == (1.0 if status == "done" else 0.5)


def test_a_run_without_a_best_epoch_or_without_a_write_saved_nothing(child, tmp_path):
    out = tmp_path / "run.pt"
    child.run = epochs_run(1, 1, best=None)
    assert not finished(registry().start(config(), out, "data-dir")).saved  # written, but no best epoch
    out.write_bytes(b"an older checkpoint")
    old = time.time() - 100
    os.utime(out, (old, old))
    child.run = epochs_run(1, 1, write=False, best=1)
    assert not finished(registry().start(config(), out, "data-dir")).saved  # the file is an older run's
    child.run = epochs_run(1, 1, write=True, best=1)
    assert finished(registry().start(config(), out, "data-dir")).saved


def test_a_stop_is_asked_of_the_trainer_which_ends_the_run(child, tmp_path):
    """The child's callback answers False once Stop is pressed; the trainer then ends the run
    itself (exit code 0, not the hard stop)."""
    def run(cfg, callback, out):
        callback(step(1, 1, 4))
        while callback({"kind": "heartbeat"}):
            time.sleep(0.002)
        return result("stopped", 1, "training stopped by request")

    child.run = run
    job = registry(grace_s=TIMEOUT).start(config(), tmp_path / "run.pt", "data-dir")
    wait_for(lambda: job.last_step is not None, "the first step")
    assert not job.stop_requested
    job.stop()
    job.stop()  # a second press changes nothing
    assert job.stop_requested
    finished(job)
    assert job.status == "stopped" and job.exitcode == 0 and not job.forced
    assert job.result["message"] == "training stopped by request"
    job.stop()  # after the end: nothing
    assert job.status == "stopped"


def test_a_stop_while_loading_ends_the_run_before_it_begins(child, tmp_path):
    gate = FORK.Event()
    child.load = lambda: gate.wait(TIMEOUT)
    child.run = epochs_run(1, 1)
    job = registry(grace_s=TIMEOUT).start(config(), tmp_path / "run.pt", "data-dir")
    try:
        wait_for(lambda: job.phase == "loading", "loading")
        job.stop()
    finally:
        gate.set()
    finished(job)
    assert job.status == "stopped" and job.exitcode == 0 and not job.saved
    assert job.result == {"stop_reason": "stopped", "message": "training stopped by request before it began",
                          "best_epoch": None}
    assert job.history == [] and job.phase == "loading"


def stopped_after_first_step(child, run, grace_s: float, tmp_path):
    """A job of stand-in ``run`` asked to stop once its first step is in; the job when it has
    ended, and the seconds from the request to its end."""
    child.run = run
    job = registry(grace_s=grace_s).start(config(), tmp_path / "run.pt", "data-dir")
    wait_for(lambda: job.last_step is not None, "the first step")
    asked = time.time()
    job.stop()
    finished(job)
    return job, job.finished - asked


def test_a_child_that_ignores_the_stop_is_terminated_after_the_grace_period(child, tmp_path):
    def run(cfg, callback, out):
        callback(step(1, 1, 4))
        hang()

    job, waited = stopped_after_first_step(child, run, 0.3, tmp_path)
    assert waited >= 0.3
    assert job.status == "stopped" and job.forced and job.exitcode == -signal.SIGTERM
    assert job.result is None and job.error is None and not job.saved


def test_a_child_that_ignores_terminate_is_killed(child, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "KILL_AFTER_S", 0.3)

    def run(cfg, callback, out):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        callback(step(1, 1, 4))
        hang()

    job, waited = stopped_after_first_step(child, run, 0.2, tmp_path)
    assert waited >= 0.5
    assert job.status == "stopped" and job.forced and job.exitcode == -signal.SIGKILL


def test_a_child_that_dies_fails_its_job_and_leaves_no_temporary_file(child, tmp_path):
    out = tmp_path / "run.pt"
    tmp = tmp_path / ".run.pt.x1y2.tmp"

    def run(cfg, callback, out):
        callback(step(1, 1, 4))
        tmp.write_bytes(b"half a checkpoint")
        os._exit(3)

    child.run = run
    job = finished(registry().start(config(), out, "data-dir"))
    assert job.status == "failed" and job.exitcode == 3 and not job.forced
    assert job.error is None and job.result is None and not job.saved
    assert not tmp.exists() and list(tmp_path.iterdir()) == []


def test_a_child_that_answers_but_does_not_exit_is_killed_and_its_answer_kept(child, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "KILL_AFTER_S", 2.0)  # also the wait for the killed child to be reaped

    def run(cfg, callback, out):
        threading.Thread(target=hang, daemon=False).start()  # keeps the process alive
        return result(best=None)

    child.run = run
    asked = time.time()
    job = finished(registry(grace_s=0.1).start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.finished - asked >= 2.1  # waited grace_s + KILL_AFTER_S for it to exit
    assert job.status == "done" and job.exitcode == -signal.SIGKILL and job.result["stop_reason"] == "completed"


@pytest.mark.parametrize("exc, message, traced", [
    (ValueError("batch size too big"), "batch size too big", False),
    (OSError("disk full"), "disk full", False),
    (CheckpointError("run.pt", "cannot write"), "run.pt: cannot write", False),
    (ValueError(), "ValueError: ", False),
    (RuntimeError("boom"), "RuntimeError: boom", True),
    (KeyboardInterrupt(), "KeyboardInterrupt: ", True),
], ids=["value", "os", "checkpoint", "empty", "runtime", "interrupt"])
def test_an_exception_in_the_child_fails_the_job_with_its_reason(child, tmp_path, exc, message, traced):
    def run(cfg, callback, out):
        raise exc

    child.run = run
    job = finished(registry().start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.status == "failed" and job.exitcode == 0 and job.result is None
    assert job.error["message"] == message
    if traced:
        assert "Traceback" in job.error["traceback"] and type(exc).__name__ in job.error["traceback"]
    else:
        assert job.error["traceback"] is None


def test_missing_data_fails_the_job_with_its_reason(child, tmp_path):
    def load():
        raise DataMissingError("MNIST is not in data-dir")

    child.load = load
    job = finished(registry().start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.status == "failed" and job.error == {"message": "MNIST is not in data-dir", "traceback": None}
    assert job.phase == "loading"


def test_a_message_the_server_cannot_read_fails_the_job_and_ends_the_child(child, tmp_path):
    def run(cfg, callback, out):
        callback(["not", "an", "event"])
        hang()

    child.run = run
    job = finished(registry(grace_s=TIMEOUT).start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.status == "failed" and job.exitcode == -signal.SIGKILL
    assert job.error == {"message": "lost the training process's messages: AttributeError: "
                                    "'list' object has no attribute 'get'", "traceback": None}


def test_the_child_runs_at_the_chosen_niceness(child, tmp_path, monkeypatch):
    def run(cfg, callback, out):
        callback({"kind": "plan", "nice": os.getpriority(os.PRIO_PROCESS, 0)})
        return result()

    child.run = run
    base = os.getpriority(os.PRIO_PROCESS, 0)
    job = finished(registry().start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.plan["nice"] == min(base + CHILD_NICE, 19)
    monkeypatch.setenv("CVAE_TRAIN_NICE", "0")
    job = finished(registry().start(config(), tmp_path / "run.pt", "data-dir"))
    assert job.plan["nice"] == base


@pytest.mark.parametrize("value, want", [("12", 12), (" 7 ", 7), ("0", 0), ("19", 19), ("40", 19), ("-3", 0),
                                         ("fast", CHILD_NICE), ("", CHILD_NICE), (None, CHILD_NICE)])
def test_the_niceness_setting(monkeypatch, value, want):
    if value is None:
        monkeypatch.delenv("CVAE_TRAIN_NICE", raising=False)
    else:
        monkeypatch.setenv("CVAE_TRAIN_NICE", value)
    assert child_nice() == want
    assert CHILD_NICE == 5


def test_one_run_at_a_time_and_the_registry_finds_its_jobs(child, tmp_path):
    gate = FORK.Event()

    def run(cfg, callback, out):
        gate.wait(TIMEOUT)
        return result()

    child.run = run
    reg = registry()
    first = reg.start(config(), tmp_path / "run.pt", "data-dir")
    try:
        with pytest.raises(JobBusyError) as err:
            reg.start(config(), tmp_path / "run.pt", "data-dir")
        assert str(err.value) == "another training is running (maybe from another tab); wait for it or stop it"
        assert reg.jobs == [first] and reg.active() is first and reg.get(first.id) is first
        assert reg.get(None) is None and reg.get("nope") is None
    finally:
        gate.set()
    finished(first)
    assert reg.active() is None
    second = finished(reg.start(config(), tmp_path / "run.pt", "data-dir"))
    assert reg.jobs == [first, second] and second.id != first.id


def test_finished_jobs_are_pruned_to_the_most_recent(child, tmp_path):
    child.run = epochs_run(1, 1)
    reg = registry(keep_finished=2)
    done = []
    for i in range(4):
        done.append(finished(reg.start(config(), tmp_path / "run.pt", "data-dir")))
        assert reg.jobs == done[-2:], i
    assert reg.get(done[0].id) is None


@pytest.mark.parametrize("keep", [0, -1])
def test_a_registry_keeps_at_least_one_finished_job(keep):
    with pytest.raises(ValueError) as err:
        JobRegistry(keep_finished=keep)
    assert str(err.value) == f"keep_finished must be >= 1, got {keep}"
    assert JobRegistry(keep_finished=1).keep_finished == 1


def test_the_registrys_defaults(tmp_path):
    reg = JobRegistry()
    assert reg.keep_finished == 3 and reg.grace_s == 20.0
    assert TrainJob(config(), tmp_path / "run.pt", "data-dir").grace_s == 20.0


def test_stop_all_asks_every_run_and_says_whether_they_ended(child, tmp_path):
    def run(cfg, callback, out):
        callback(step(1, 1, 4))
        while callback({"kind": "heartbeat"}):
            time.sleep(0.002)
        time.sleep(0.5)  # a slow end
        return result("stopped")

    child.run = run
    reg = registry(grace_s=TIMEOUT)
    job = reg.start(config(), tmp_path / "run.pt", "data-dir")
    wait_for(lambda: job.last_step is not None, "the first step")
    assert reg.stop_all(timeout=0.05) is False and job.stop_requested
    assert reg.stop_all(timeout=TIMEOUT) is True and job.status == "stopped"
    assert reg.stop_all() is True


def test_an_invalid_config_is_refused_before_anything_starts(child, tmp_path):
    cfg = config()
    object.__setattr__(cfg, "epochs", 0)  # changed after it was checked
    reg = registry()
    with pytest.raises(ValueError, match="epochs"):
        reg.start(cfg, tmp_path / "run.pt", "data-dir")
    assert reg.jobs == []


def test_a_process_that_cannot_start_is_a_failed_job(tmp_path):
    class NoProcesses:
        def __getattr__(self, name):
            return getattr(FORK, name)

        def Process(self, **kw):  # noqa: N802 - multiprocessing's name
            return SimpleNamespace(start=lambda: (_ for _ in ()).throw(OSError("no more processes")), pid=None)

    reg = JobRegistry()
    reg._ctx = NoProcesses()
    job = reg.start(config(), tmp_path / "run.pt", "data-dir")
    assert job.wait(0) and job.status == "failed" and not job.running
    assert job.error == {"message": "could not start the training process: OSError: no more processes",
                         "traceback": None}
    assert job.finished is not None and reg.active() is None and reg.jobs == [job]


def test_a_new_job_is_starting(tmp_path):
    job = TrainJob(config(epochs=7), tmp_path / "run.pt", "data-dir", grace_s=3)
    assert (job.status, job.phase, job.progress, job.planned_epochs, job.pid) == ("running", "starting", 0.0, 7, None)
    assert job.running and not job.stop_requested and job.grace_s == 3.0 and job.out == tmp_path / "run.pt"
    job.stop()  # not started: nothing to stop
    assert not job.stop_requested


# --------------------------------------------------------------------------- the child's side, in this process
# What a training process sends, read from the pipe: the same function the child runs, called here
# (mutmut sees only what runs in the test's own process), with the stand-ins above.

def child_messages(monkeypatch, nice=7, stop_first=False, close_first=False):
    niced = []
    monkeypatch.setattr(os, "nice", lambda n: niced.append(n) or 0)
    reader, writer = FORK.Pipe(duplex=False)
    stop = FORK.RawValue("b", 1 if stop_first else 0)
    if close_first:
        reader.close()
    jobs._child_main(config(), "/somewhere/run.pt", "data-dir", writer, stop, nice)
    out = []
    if not close_first:
        while reader.poll(0):
            try:
                out.append(reader.recv())
            except EOFError:
                break
    return out, niced, stop


def test_the_child_sends_its_phases_events_and_result(child, monkeypatch):
    seen = []

    def run(cfg, callback, out):
        seen.append((callback(step(1, 1, 2)), callback({"kind": "epoch", "epoch": 1, "val_loss": 2.0})))
        return result("completed", 1)

    child.run = run
    msgs, niced, _ = child_messages(monkeypatch)
    assert msgs == [("phase", "loading"), ("phase", "training"), ("event", step(1, 1, 2)),
                    ("event", {"kind": "epoch", "epoch": 1, "val_loss": 2.0}),
                    ("result", {"stop_reason": "completed", "message": "finished", "best_epoch": 1,
                                "spread": [1.5, 0.5]})]
    assert seen == [(True, True)] and niced == [7]


def test_the_child_answers_false_once_a_stop_is_asked(child, monkeypatch):
    answers = []

    def run(cfg, callback, out):
        answers.append(callback(step(1, 1, 2)))
        stop_flag.value = 1
        answers.append(callback(step(1, 2, 2)))
        return result("stopped", None)

    stop_flag = None
    child.run = run
    real_value = FORK.RawValue

    def keep(*a):
        nonlocal stop_flag
        stop_flag = real_value(*a)
        return stop_flag

    monkeypatch.setattr(FORK, "RawValue", keep)
    msgs, _, _ = child_messages(monkeypatch)
    assert answers == [True, False] and msgs[-1][0] == "result"


@pytest.mark.parametrize("nice", [0, None])
def test_the_child_keeps_its_niceness_at_0_or_where_it_cannot_change_it(child, monkeypatch, nice):
    child.run = epochs_run(1, 1, write=False)
    if nice is None:  # os.nice refused: the run goes on
        def refuse(n):
            raise PermissionError("not allowed")
        reader, writer = FORK.Pipe(duplex=False)
        monkeypatch.setattr(os, "nice", refuse)
        jobs._child_main(config(), "/somewhere/run.pt", "data-dir", writer, FORK.RawValue("b", 0), 3)
        assert reader.recv() == ("phase", "loading")
    else:
        msgs, niced, _ = child_messages(monkeypatch, nice=0)
        assert niced == [] and msgs[-1][0] == "result"


def test_a_child_asked_to_stop_while_loading_sends_that_it_never_began(child, monkeypatch):
    child.run = epochs_run(1, 1, write=False)
    msgs, _, _ = child_messages(monkeypatch, stop_first=True)
    assert msgs == [("phase", "loading"), ("result", {"stop_reason": "stopped", "message":
                                                      "training stopped by request before it began",
                                                      "best_epoch": None})]


@pytest.mark.parametrize("exc, message, traced", [
    (ValueError("bad"), "bad", False), (DataMissingError("no MNIST"), "no MNIST", False),
    (OSError("disk full"), "disk full", False), (CheckpointError("run.pt", "cannot write"), "run.pt: cannot write", False),
    (ValueError(), "ValueError: ", False), (RuntimeError("boom"), "RuntimeError: boom", True),
], ids=["value", "data", "os", "checkpoint", "empty", "runtime"])
def test_the_child_sends_its_error(child, monkeypatch, exc, message, traced):
    def run(cfg, callback, out):
        raise exc

    child.run = run
    msgs, _, _ = child_messages(monkeypatch)
    assert msgs[:2] == [("phase", "loading"), ("phase", "training")] and len(msgs) == 3
    tag, payload = msgs[2]
    assert tag == "error" and payload["message"] == message
    if traced:
        assert "Traceback" in payload["traceback"] and "RuntimeError: boom" in payload["traceback"]
    else:
        assert payload["traceback"] is None


def test_a_child_whose_server_is_gone_ends_quietly(child, monkeypatch):
    child.run = epochs_run(1, 1, write=False)
    msgs, _, _ = child_messages(monkeypatch, close_first=True)  # no exception escapes
    assert msgs == []


def test_the_child_closes_its_end_of_the_pipe(child, monkeypatch):
    child.run = epochs_run(1, 1, write=False)
    reader, writer = FORK.Pipe(duplex=False)
    monkeypatch.setattr(os, "nice", lambda n: 0)
    jobs._child_main(config(), "/somewhere/run.pt", "data-dir", writer, FORK.RawValue("b", 0), 0)
    assert writer.closed
