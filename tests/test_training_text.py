"""What the training section's progress bar says (ui.training.job_text), from a run's events as the
job receives them: each phase, a step, the validation, an epoch's losses, a time budget's planned
epochs; and how a run ended: its result, saved or not, its error, a forced stop, a process that
died (by which signal, or exit code)."""

from __future__ import annotations

import signal

import pytest

from cvae.training.config import TrainConfig
from cvae.training.jobs import TrainJob
from ui.training import exit_text, job_text


def job(tmp_path, **cfg) -> TrainJob:
    return TrainJob(TrainConfig.from_recipe("fast", **cfg), tmp_path / "run.pt", tmp_path)


def step(j: TrainJob, epoch: int, n: int, steps: int = 10, loss: float = 190.0, **extra) -> None:
    j._handle("event", {"kind": "step", "epoch": epoch, "step": n, "steps": steps, "loss": loss, **extra})


def epoch(j: TrainJob, n: int, loss: float, val_loss: float) -> None:
    j._handle("event", {"kind": "epoch", "epoch": n, "loss": loss, "val_loss": val_loss})


def test_a_run_says_what_it_is_doing(tmp_path):
    j = job(tmp_path, epochs=4)
    assert job_text(j) == "starting the training process..."
    j._handle("phase", "loading")
    assert job_text(j) == "loading MNIST..."
    j._handle("phase", "training")
    assert job_text(j) == "training..."
    step(j, 1, 5, loss=190.123)
    assert job_text(j) == "epoch 1/4, step 5/10, loss 190.12"
    step(j, 1, 10, loss=180.0)  # the epoch's last step: the test set is being scored
    assert job_text(j) == "epoch 1/4: computing val_loss on the test set..."
    epoch(j, 1, 181.256, 176.5)
    assert job_text(j) == "epoch 1/4: loss 181.26, val_loss 176.50"
    step(j, 2, 3, loss=170.0)
    assert job_text(j) == "epoch 2/4, step 3/10, loss 170.00"
    j._handle("phase", "saving")  # a phase without words of its own is named as it is
    j.last_step, j.history = None, []
    assert job_text(j) == "saving"


def test_a_budgeted_run_counts_its_planned_epochs(tmp_path):
    """Under a time budget the epochs are the plan's: a fifth of the way through epoch 1 at 4% of
    the planned steps makes about 5 epochs."""
    j = job(tmp_path, seconds=60)
    step(j, 1, 2, progress=0.04)
    assert job_text(j) == "epoch 1/~5, step 2/10, loss 190.00"


def test_a_stop_request_is_said_at_once(tmp_path):
    j = job(tmp_path, epochs=4)
    step(j, 1, 5)
    j._stop_requested_at = 0.0  # as TrainJob.stop() records it (without a process to signal here)
    assert job_text(j) == "stopping after the current step..."


def ended(j: TrainJob, *, saved: bool, epochs=(), **fields) -> TrainJob:
    for n, v in epochs:
        epoch(j, n, v + 5, v)
    j.saved = saved
    for k, v in fields.items():
        setattr(j, k, v)
    j.status = "stopped"
    return j


def test_how_a_run_ended(tmp_path):
    result = {"message": "finished 3 epochs; best epoch 2 (val_loss 150.00)"}
    assert job_text(ended(job(tmp_path), saved=True, epochs=[(1, 160.0)], result=result)) == result["message"]
    assert job_text(ended(job(tmp_path), saved=False, result={"message": "training stopped by request"})) == \
        "training stopped by request (no epoch finished, nothing was saved)"
    # An error: its message, and what was kept (the best epoch, not the last).
    err = {"message": "out of disk space"}
    assert job_text(ended(job(tmp_path), saved=True, epochs=[(1, 160.0), (2, 150.0), (3, 155.0)], error=err)) == \
        "out of disk space; kept the best checkpoint so far (epoch 2) in run.pt"
    assert job_text(ended(job(tmp_path), saved=False, error=err)) == "out of disk space"
    assert job_text(ended(job(tmp_path), saved=False, error={"message": ""})) == "the training failed"
    # Ended by force after a stop request went unanswered.
    j = ended(job(tmp_path), saved=True, epochs=[(1, 160.0)], forced=True, grace_s=12.5)
    assert job_text(j) == ("the training did not stop within 12.5 s of the request and was ended; kept the best "
                           "checkpoint so far (epoch 1) in run.pt")
    j = ended(job(tmp_path), saved=False, forced=True, grace_s=30.0)
    assert job_text(j) == ("the training did not stop within 30 s of the request and was ended; no epoch had "
                           "finished, so nothing was saved")
    # A process that died without a word.
    j = ended(job(tmp_path), saved=False, exitcode=-signal.SIGKILL)
    assert job_text(j) == ("the training process ended unexpectedly (killed by SIGKILL, perhaps out of memory); "
                           "no epoch had finished, so nothing was saved")
    j = ended(job(tmp_path), saved=True, epochs=[(1, 160.0)], exitcode=3)
    assert job_text(j) == ("the training process ended unexpectedly (exit code 3); kept the best checkpoint so far "
                           "(epoch 1) in run.pt")


@pytest.mark.parametrize("code, words", [
    (None, "exit status unknown"), (0, "exit code 0"), (1, "exit code 1"),
    (-signal.SIGKILL, "killed by SIGKILL, perhaps out of memory"), (-signal.SIGTERM, "killed by SIGTERM"),
    (-signal.SIGSEGV, "killed by SIGSEGV"), (-200, "killed by signal 200"),
])
def test_how_a_process_ended(code, words):
    assert exit_text(code) == words


def test_a_run_that_died_before_its_first_save_claims_no_checkpoint(tmp_path):
    """An epoch finished, but the process died (or was ended) before its checkpoint was written:
    nothing was kept, whatever the best epoch so far."""
    for fields in ({"exitcode": -signal.SIGKILL}, {"forced": True, "grace_s": 30.0}):
        text = job_text(ended(job(tmp_path), saved=False, epochs=[(1, 160.0)], **fields))
        assert "nothing was saved" in text and "kept" not in text and "run.pt" not in text, text
