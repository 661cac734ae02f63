"""Training jobs in a child process, for the app (no Streamlit here).

The trainer (:mod:`cvae.training.hardware`) sets torch's thread count and glibc's malloc
thresholds for its whole process and holds the GIL for most of a step, so it must never run
inside the web server. A
:class:`JobRegistry` starts each run in a process of its own and reads its progress back. The
processes are forked from a clean server of their own (multiprocessing "forkserver", started at
the first run with torch and the trainer imported, ``TRAINER_MODULES``): nothing of the web
server is inherited, and every run after the first starts without importing torch again (2-4 s
of CPU; more on a busy laptop). Where there is no forkserver (not POSIX) each run is spawned.

- The child sends every trainer callback event (``step``, ``epoch``, ``snapshot``, ... as
  dicts) through a one-way pipe; a reader thread in the server turns them into the fields
  the page shows (status, phase, progress, history, steps, snapshots). It keeps data only;
  the sentences a person reads are written by the page (``ui/training.py``).
- Stop is cooperative: a shared Event the child's callback reads after every step, so the
  trainer stops there and keeps its best checkpoint (written atomically after every
  improving epoch). If the child has not ended ``grace_s`` seconds after the request it is
  terminated, then killed; the checkpoint on disk is still the last complete one.
- A child that raises, or dies (a signal, out of memory), ends its job as "failed" with its
  error or exit code; the reader sees the pipe close, so nothing waits for a message that never comes.
- One run at a time per registry (training takes every core); finished jobs beyond the
  ``keep_finished`` most recent are dropped.

The child runs at a lower CPU priority (``CHILD_NICE``) so the server's own work (slider
moves, reruns) comes first whenever both want the cores.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.files import temp_files

if TYPE_CHECKING:  # torch is imported by the child, or by whoever built the config
    from .config import TrainConfig

GRACE_S = 20.0  # a stop request waits this long (a step, or the test-set evaluation) before terminate()
KILL_AFTER_S = 5.0  # then this long after terminate() before kill()
KEEP_FINISHED = 3  # finished jobs a registry keeps (the page reads the last one's result)
CHILD_NICE = 5  # the trainer yields some CPU to the server's sessions: benchmarks/train_priority.py (POSIX only)
STEP_POINTS_PER_EPOCH = 50  # points of the live loss curve per epoch
# What the training processes' forkserver imports once, before its first fork.
TRAINER_MODULES = ["cvae.training.loop", "cvae.core.data"]


def child_nice() -> int:
    """The training child's niceness: ``CHILD_NICE``, or $CVAE_TRAIN_NICE (0..19) where a deployment
    or a benchmark sets it. Read by the server as each run starts (a forked child sees the
    forkserver's environment, which is the server's at the first run)."""
    text = os.environ.get("CVAE_TRAIN_NICE", "").strip()
    try:
        value = int(text) if text else CHILD_NICE
    except ValueError:
        return CHILD_NICE
    return min(max(value, 0), 19)


def training_context():
    """The multiprocessing context the training processes start from: the forkserver (its
    preload set to ``TRAINER_MODULES`` unless it runs already), else "spawn"."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(TRAINER_MODULES)
    return ctx


class JobBusyError(RuntimeError):
    """A registry runs one training at a time."""


# --------------------------------------------------------------------------- the child

def _child_main(cfg: "TrainConfig", out: str, data: str, conn, stop, nice: int = CHILD_NICE) -> None:
    """Entry point of the training process. Every message is a ``(tag, payload)`` tuple:
    ("phase", name), ("event", callback event), then ("result", dict) or ("error", dict).
    ``stop`` is a shared byte the server sets to 1 to ask for a stop; ``nice``, the niceness to
    run at (:func:`child_nice`)."""

    def send(tag: str, payload: Any) -> None:
        # Raises BrokenPipeError once the server is gone: the callback then stops the run,
        # so a killed server never leaves an orphan training.
        conn.send((tag, payload))

    try:
        if nice and hasattr(os, "nice"):
            try:
                os.nice(nice)
            except OSError:
                pass
        send("phase", "loading")
        from ..core import data as cvae_data  # torch and the trainer load here, in the child only
        from .budget import process_started
        from .loop import train

        train_x, _ = cvae_data.load_mnist("train", data, download=False)
        test_x, test_y = cvae_data.load_mnist("test", data, download=False)
        if stop.value:
            send("result", {"stop_reason": "stopped", "message": "training stopped by request before it began",
                            "best_epoch": None})
            return
        send("phase", "training")

        def callback(event: dict) -> bool:
            send("event", event)
            return not stop.value

        # test_y: the film; started: a time budget counts from this process's start (loading included)
        res = train(cfg, train_x, test_x, test_y=test_y, callback=callback, out=out, started=process_started())
        send("result", {"stop_reason": res.stop_reason, "message": res.message, "best_epoch": res.best_epoch,
                        "spread": res.spread})
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the server as a message
        from ..core.checkpoint import CheckpointError
        from ..core.data import DataMissingError

        expected = isinstance(exc, (DataMissingError, CheckpointError, ValueError, OSError))
        message = str(exc) if expected and str(exc) else f"{type(exc).__name__}: {exc}"
        try:
            send("error", {"message": message, "traceback": None if expected else traceback.format_exc()})
        except OSError:
            pass  # the server is gone; nobody to tell
    finally:
        conn.close()


# --------------------------------------------------------------------------- the server side

class TrainJob:
    """One training run in a child process; its fields are written by a reader thread and
    read by any session. Lists only grow (appends are atomic), so reading them needs no lock."""

    def __init__(self, cfg: "TrainConfig", out: str | os.PathLike, data: str | os.PathLike,
                 grace_s: float = GRACE_S):
        self.id = f"{time.time_ns():x}"
        self.cfg, self.out, self.data = cfg, Path(out), str(data)
        self.grace_s = float(grace_s)
        self.status = "running"  # running | done | stopped | failed
        # While running: starting | loading | training | validating (the step's epoch ended).
        self.phase = "starting"
        self.last_step: dict | None = None  # the trainer's latest step event (epoch, step, steps, loss)
        self.progress = 0.0  # 0..1 of all steps
        self.planned_epochs = cfg.epochs  # under a time budget: as the trainer plans it
        self.history: list[dict] = []  # the trainer's epoch records
        self.steps: list[tuple[float, float]] = []  # (fractional epoch, loss), ~50 points an epoch
        self.snapshots: list[dict] = []  # the trainer's {"kind": "snapshot", ...} events, in order
        self.plan: dict | None = None  # a time budget's plan: {"steps", "needed", "seconds", "warning"}
        self.saved = False  # a checkpoint of this run is at ``out``
        self.started = time.time()
        self.finished: float | None = None
        self.exitcode: int | None = None
        # How it ended: the trainer's result ({"stop_reason", "message", "best_epoch"}), or its
        # error ({"message", "traceback"}: the traceback for an unexpected exception only).
        self.result: dict | None = None
        self.error: dict | None = None
        self.forced = False  # ended by terminate/kill after a stop request went unanswered
        self._stop_requested_at: float | None = None
        self._terminated_at: float | None = None
        self._stop_lock = threading.Lock()
        self._hard_stop_timer: threading.Timer | None = None
        self._done = threading.Event()
        # Set once the reader thread has reaped the child. Only that thread waits for the
        # process: two threads joining one process race on waitpid (one may read no exit code).
        self._reaped = threading.Event()
        self._proc = None
        self._conn = None
        self._stop = None
        self._reader: threading.Thread | None = None
        self._on_finish = None  # the registry's pruning, called by the reader thread at the end

    # ---- what the page reads

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested_at is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        """Ask the run to stop after its current step; it is ended by force ``grace_s`` later."""
        with self._stop_lock:
            if not self.running or self._stop is None or self._stop_requested_at is not None:
                return
            self._stop.value = 1
            self._stop_requested_at = time.monotonic()
            # A timer of its own, so the hard stop comes on time whatever the pipe carries.
            self._hard_stop_timer = threading.Timer(self.grace_s, self._hard_stop)
            self._hard_stop_timer.daemon = True
            self._hard_stop_timer.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    # ---- lifecycle

    def _start(self, ctx) -> None:
        reader_end, writer_end = ctx.Pipe(duplex=False)
        # A lock-free shared byte, not an Event: an Event's lock, held by a child that is killed
        # or frozen inside is_set(), would block stop() in the server for ever.
        self._stop = ctx.RawValue("b", 0)
        self._proc = ctx.Process(target=_child_main, name=f"cvae-train-{self.id}", daemon=True,
                                 args=(self.cfg, str(self.out), self.data, writer_end, self._stop, child_nice()))
        try:
            self._proc.start()
        except BaseException:
            reader_end.close()
            raise
        finally:
            # Only the child holds the writing end now: when it ends, for any reason, the
            # reader gets EOF instead of waiting for a message that will never come.
            writer_end.close()
        self._conn = reader_end
        self._reader = threading.Thread(target=self._read, name=f"cvae-train-reader-{self.id}", daemon=True)
        self._reader.start()

    def _fail_to_start(self, exc: BaseException) -> None:
        self.error = {"message": f"could not start the training process: {type(exc).__name__}: {exc}",
                      "traceback": None}
        self.finished = time.time()
        self.status = "failed"
        self._done.set()

    def _read(self) -> None:
        final: tuple[str, dict] | None = None
        try:
            while True:
                try:
                    tag, payload = self._conn.recv()
                except (EOFError, OSError):
                    break  # the child's end is closed: it has ended (or died)
                if tag in ("result", "error"):
                    final = (tag, payload)
                    break
                self._handle(tag, payload)
        except Exception as exc:  # a malformed message must not leave the job "running" forever
            final = ("error", {"message": f"lost the training process's messages: {type(exc).__name__}: {exc}",
                               "traceback": None})
            self._proc.kill()
        finally:
            self._conn.close()
        self._reap()
        self._finish(final)

    def _handle(self, tag: str, payload: Any) -> None:
        if tag == "phase":
            self.phase = str(payload)
            return
        ev = payload
        kind = ev.get("kind")
        e = self.cfg.epochs
        if kind == "step":
            frac = ev["epoch"] - 1 + ev["step"] / ev["steps"]
            self.progress = min(1.0, ev.get("progress", frac / e))
            if "progress" in ev:  # a time budget plans its own steps: how many epochs it comes to
                self.planned_epochs = max(ev["epoch"], math.ceil(frac / max(ev["progress"], 1e-9) - 1e-6))
            if ev["step"] % max(1, ev["steps"] // STEP_POINTS_PER_EPOCH) == 0 or ev["step"] == ev["steps"]:
                self.steps.append((frac, ev["loss"]))
            self.last_step = {k: ev[k] for k in ("epoch", "step", "steps", "loss")}
            self.phase = "validating" if ev["step"] == ev["steps"] else "training"
        elif kind == "epoch":
            self.history.append({k: v for k, v in ev.items() if k != "kind"})
            self.phase = "training"
        elif kind == "snapshot":
            self.snapshots.append(ev)
        elif kind == "plan":
            self.plan = ev

    def _hard_stop(self) -> None:
        """``grace_s`` after a stop request: terminate the child if it still runs, kill it if
        that has not ended it ``KILL_AFTER_S`` later (a stopped or hung process ignores SIGTERM)."""
        if self._done.is_set() or self._reaped.is_set():
            return
        self._terminated_at = time.monotonic()
        self._proc.terminate()
        if not self._reaped.wait(KILL_AFTER_S):
            self._proc.kill()

    def _reap(self) -> None:
        """Wait for the child to exit (it has sent its last message or closed the pipe)."""
        self._proc.join(self.grace_s + KILL_AFTER_S)
        if self._proc.is_alive():  # ended its work but does not exit: not worth waiting for
            self._proc.kill()
            self._proc.join(KILL_AFTER_S)
        self.exitcode = self._proc.exitcode
        self._reaped.set()

    def _written_by_this_run(self) -> bool:
        try:
            return self.out.is_file() and self.out.stat().st_mtime >= self.started - 1
        except OSError:
            return False

    @property
    def best_epoch(self) -> int | None:
        return min(self.history, key=lambda r: r["val_loss"])["epoch"] if self.history else None

    def _finish(self, final: tuple[str, dict] | None) -> None:
        if final is None:  # no last word from the child: it was ended, or it died
            self._remove_partial_writes()
        self.saved = self._written_by_this_run()
        if final is not None and final[0] == "result":
            self.result = final[1]
            self.saved = self.saved and self.result.get("best_epoch") is not None
            status = {"stopped": "stopped", "nan": "failed"}.get(self.result.get("stop_reason"), "done")
        elif final is not None:
            self.error = final[1]
            status = "failed"
        else:
            self.forced = self._terminated_at is not None
            status = "stopped" if self.forced else "failed"
        if status == "done":
            self.progress = 1.0
        if self._hard_stop_timer is not None:
            self._hard_stop_timer.cancel()
        self.finished = time.time()
        self.status = status  # last: a reader that sees it finished sees every other field final
        if self._on_finish is not None:
            self._on_finish()
        self._done.set()

    def _remove_partial_writes(self) -> None:
        """A child ended mid-save leaves its temporary file (never a half checkpoint at ``out``)."""
        for tmp in temp_files(self.out):
            try:
                tmp.unlink()
            except OSError:
                pass


class JobRegistry:
    """The training jobs of one server process; one runs at a time (training takes every core)."""

    def __init__(self, keep_finished: int = KEEP_FINISHED, grace_s: float = GRACE_S):
        if keep_finished < 1:
            raise ValueError(f"keep_finished must be >= 1, got {keep_finished}")
        self.keep_finished = keep_finished
        self.grace_s = grace_s
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainJob] = {}  # in start order
        self._ctx = training_context()

    @property
    def jobs(self) -> list[TrainJob]:
        """The jobs kept, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def active(self) -> TrainJob | None:
        return next((j for j in self.jobs if j.running), None)

    def get(self, job_id: str | None) -> TrainJob | None:
        return self._jobs.get(job_id) if job_id else None

    def start(self, cfg: "TrainConfig", out: str | os.PathLike, data: str | os.PathLike) -> TrainJob:
        """Start a training of ``cfg`` on MNIST in ``data``, saving the best model to ``out``.

        Raises JobBusyError while another job runs, ValueError for an invalid config (it is
        checked again here: a dataclass can be changed after it was validated)."""
        type(cfg)(**cfg.to_dict())  # re-runs TrainConfig's checks before anything starts
        with self._lock:
            if any(j.running for j in self._jobs.values()):
                raise JobBusyError("another training is running (maybe from another tab); wait for it or stop it")
            job = TrainJob(cfg, out, data, grace_s=self.grace_s)
            job._on_finish = self._prune
            self._jobs[job.id] = job
            try:
                job._start(self._ctx)
            except Exception as exc:  # cannot spawn (no memory, too many processes, ...)
                job._fail_to_start(exc)
            return job

    def stop_all(self, timeout: float | None = None) -> bool:
        """Ask every running job to stop and wait up to ``timeout`` s; True when all ended."""
        jobs = self.jobs
        for j in jobs:
            j.stop()
        deadline = None if timeout is None else time.monotonic() + timeout
        return all(j.wait(None if deadline is None else max(0.0, deadline - time.monotonic())) for j in jobs)

    def _prune(self) -> None:
        """Keep the ``keep_finished`` most recent finished jobs (called as each job ends)."""
        with self._lock:
            finished = [j for j in self._jobs.values() if not j.running]
            for j in finished[: max(0, len(finished) - self.keep_finished)]:
                del self._jobs[j.id]
