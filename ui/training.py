"""The sidebar's training section: a form that starts a run, and the run's progress.

The run itself is a :class:`cvae.training.jobs.TrainJob` in a child process, so no session waits
for it and the server keeps its threads. Any tab sees the run in progress (and may stop
it); the tab that started it switches to the new model when it is saved.

Session state: "train_job_id" (the run this session started) and "_acknowledged_job" (its end
was handled); "_watched_job_id" and "_acknowledged_watch", the same for a run from another
tab this one followed; when a run of this session saved a model, "_pending_model" (its path,
for the model picker) and "_train_notice" (shown once).
"""

from __future__ import annotations

import datetime as _dt
import secrets
import signal
from pathlib import Path

import streamlit as st

import cvae
from cvae.core.data import has_mnist
from cvae.core.latent import collapse_message
from cvae.draw import figures
from cvae.training.jobs import JobBusyError, JobRegistry, TrainJob
from ui.film import live_film_ui

TRAIN_POLL_S = 1.0  # the tab that started the run
WATCH_POLL_S = 5.0  # tabs following a run started elsewhere (ten of them must not keep a small server busy)
LABELS = {"running": "Training", "done": "Finished", "stopped": "Stopped", "failed": "Failed"}


# Why: one registry per server process, shared by every session and tab, so a run outlives
# reruns, any tab can follow or stop it, and "one run at a time" holds across tabs.
@st.cache_resource
def job_registry() -> JobRegistry:
    return JobRegistry()


TRAIN_FORM_KEY = "train_form_open"  # the app's expander around the form


LENGTH_KEY = "train_length"
QUICK, EPOCHS = "Quick: a time budget", "Epochs"


def new_run_path(runs: str | Path, settings: str, now: _dt.datetime | None = None,
                 taken: set[Path] = frozenset()) -> Path:
    """Where a new run saves: ``cvae_<date>-<time>-<tag>_<settings>.pt`` in ``runs``. The tag is
    random, so runs started in the same second (another tab, another replica on the same runs
    volume) never share a file; a name on disk or in ``taken`` (the outs of this process's jobs,
    not written yet) is never given again."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    while True:
        path = Path(runs) / f"cvae_{stamp}-{secrets.token_hex(3)}_{settings}.pt"
        if not path.exists() and path not in taken:
            return path


def train_form_ui(data: str, runs: Path) -> None:
    """How long to train (a one-minute run of the quick recipe, or epochs of the default recipe)
    and its settings; a valid submit starts a run saving into ``runs``."""
    reg = job_registry()
    length = st.radio("How long", [QUICK, EPOCHS], key=LENGTH_KEY, horizontal=True,
                      help="Quick: the quick recipe, fitted to the seconds you give it on this machine (loading "
                           "the data and the film included); a minute is enough for both latent dimensions to "
                           "spread, and the run says so at once when the machine is too busy for that. Epochs: "
                           "the default recipe, which reaches the tutorial's quality in about 5 epochs.")
    quick = length == QUICK
    recipe = cvae.RECIPES["quick" if quick else cvae.DEFAULT_RECIPE]
    with st.form("train_form", border=False):
        c1, c2 = st.columns(2)
        if quick:
            epochs, batch, lr = None, recipe["batch_size"], recipe["lr"]
            seconds = c1.number_input("Seconds", 10, 3600, int(recipe["seconds"]), step=10, key="train_seconds",
                                      help="Wall time of the whole run, loading the data and the film included.")
            st.caption(f"Batch {batch}, Adam {lr:g}, warm-up then cosine, fitted to {seconds:g} s.")
        else:
            epochs = c1.number_input("Epochs", 1, 200, recipe["epochs"], key="train_epochs",
                                     help="After a short warm-up (2% of the steps) the learning rate decays to "
                                          "zero over these epochs (cosine).")
            batch = c2.number_input("Batch size", 1, 4096, recipe["batch_size"], key="train_batch")
            lr = c1.number_input("Learning rate", 1e-5, 1.0, recipe["lr"], format="%.4f", step=1e-4, key="train_lr")
        seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
        limit = st.number_input("Training images (0 = all 60,000)", 0, 60000, 0, step=1000, key="train_limit",
                                help="Train on the first N images only: a rougher model.")
        go = st.form_submit_button("Train", type="primary", disabled=reg.active() is not None)
    if not go:
        return
    if not has_mnist(data):
        st.error(f"Training needs MNIST in {Path(data) / 'MNIST' / 'raw'} (set CVAE_DATA to a folder "
                 "that holds MNIST/raw/, or run `python -m cvae train ...` once online to download it).")
        return
    try:
        cfg = cvae.TrainConfig.from_recipe("quick" if quick else cvae.DEFAULT_RECIPE,
                                           epochs=None if quick else int(epochs), batch_size=int(batch),
                                           seconds=int(seconds) if quick else None,
                                           lr=float(lr), seed=int(seed), limit=int(limit) or None, patience=0,
                                           device="cpu")
        settings = f"{int(cfg.seconds)}s" if quick else f"e{int(epochs)}_b{int(batch)}"
        job = reg.start(cfg, new_run_path(runs, settings, taken={j.out for j in reg.jobs}), data)
    except (ValueError, JobBusyError) as exc:  # a bad value, or a run started from another tab just now
        st.error(str(exc))
        return
    st.session_state["train_job_id"] = job.id
    st.rerun()  # redraw with the Train button disabled and the progress polling


def _followed_job() -> TrainJob | None:
    """The run this section shows: this session's own while it runs or its end is not handled
    yet, else whichever run is going (maybe from another tab), else this session's last run,
    else the run from another tab it last watched (so it sees how that one ended)."""
    reg = job_registry()
    mine = reg.get(st.session_state.get("train_job_id"))
    if mine is not None and (mine.running or _end_unhandled(mine)):
        return mine
    return reg.active() or mine or reg.get(st.session_state.get("_watched_job_id"))


def _ack_key(job: TrainJob) -> str | None:
    """Where this session records that it handled the end of ``job``: its own run, or the
    run from another tab it watched (None: neither)."""
    if job.id == st.session_state.get("train_job_id"):
        return "_acknowledged_job"
    if job.id == st.session_state.get("_watched_job_id"):
        return "_acknowledged_watch"
    return None


def _end_unhandled(job: TrainJob) -> bool:
    """This session followed ``job`` (started or watched it) and has not reacted to its end."""
    key = _ack_key(job)
    return key is not None and st.session_state.get(key) != job.id


def training_ui(data: str) -> None:
    """The run in progress or just ended (progress, live loss and film, Stop), polled while it runs."""
    job = _followed_job()
    polling = job is not None and (job.running or _end_unhandled(job))
    # The tab that started the run polls often, others slowly; with no run, a plain fragment.
    mine = job is not None and job.id == st.session_state.get("train_job_id")
    every = (TRAIN_POLL_S if mine else WATCH_POLL_S) if polling else None
    st.fragment(_training_status_ui, run_every=every)()
    notice = st.session_state.pop("_train_notice", None)
    if notice:
        st.success(notice)


PHASES = {"starting": "starting the training process...", "loading": "loading MNIST...",
          "training": "training..."}


def job_text(job: TrainJob) -> str:
    """What a run is doing, or how it ended, in one sentence (from the job's status data)."""
    if job.running:
        return "stopping after the current step..." if job.stop_requested else _progress_text(job)
    best = job.best_epoch
    kept = (f"; kept the best checkpoint so far (epoch {best}) in {job.out.name}" if job.saved and best
            else "; no epoch had finished, so nothing was saved")
    if job.result is not None:
        return job.result.get("message", "") + ("" if job.saved else " (no epoch finished, nothing was saved)")
    if job.error is not None:
        return (job.error.get("message") or "the training failed") + (kept if job.saved else "")
    if job.forced:
        return f"the training did not stop within {job.grace_s:g} s of the request and was ended" + kept
    return f"the training process ended unexpectedly ({exit_text(job.exitcode)})" + kept


def _progress_text(job: TrainJob) -> str:
    step, last = job.last_step, job.history[-1] if job.history else None
    e = f"~{job.planned_epochs}" if job.cfg.seconds else job.cfg.epochs
    if job.phase == "validating" and step is not None:
        return f"epoch {step['epoch']}/{e}: computing val_loss on the test set..."
    if step is not None and (last is None or step["epoch"] > last["epoch"]):
        return f"epoch {step['epoch']}/{e}, step {step['step']}/{step['steps']}, loss {step['loss']:.2f}"
    if last is not None:
        return f"epoch {last['epoch']}/{e}: loss {last['loss']:.2f}, val_loss {last['val_loss']:.2f}"
    return PHASES.get(job.phase, job.phase)


def exit_text(code: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ", perhaps out of memory" if -code == getattr(signal, "SIGKILL", 9) else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


def _stop(job: TrainJob) -> None:
    job.stop()
    st.toast("Stopping after the current step...")


# Why: every tab following the run reruns this every few seconds; the curves change only when
# a step point or an epoch arrives: built once per change, for every tab.
@st.cache_resource(show_spinner=False, max_entries=8)
def _history_figure(run_id: str, epochs: int, steps: int, _history: list, _steps: list):
    return figures.history_figure(_history[:epochs], live_steps=_steps[:steps], height=220)


def _training_status_ui() -> None:
    job = _followed_job()
    if job is None:
        return
    mine = job.id == st.session_state.get("train_job_id")
    st.progress(job.progress, text=f"{LABELS[job.status]}: {job_text(job)}")
    if job.history or job.steps:
        st.plotly_chart(_history_figure(job.id, len(job.history), len(job.steps), job.history, job.steps),
                        key="train_live_chart", config={"displaylogo": False})
    if job.running:
        if job.plan and job.plan.get("warning"):  # the budget's plan, a second into the run
            st.warning(job.plan["warning"])
        live_film_ui(job.snapshots, run_id=job.id)
        # A callback, so the rerun it triggers already draws the button disabled.
        st.button("Stop training", key="stop_training", disabled=job.stop_requested, on_click=_stop, args=(job,),
                  help="Stops after the current step and keeps the best epoch so far.")
        if not mine:
            st.session_state["_watched_job_id"] = job.id
            st.caption("Started from another tab or session.")
        return
    if job.status == "failed":
        st.error(job_text(job))
    spread = (job.result or {}).get("spread")
    if spread and (warning := collapse_message(spread)):
        st.warning(warning)
    if not mine and job.saved:
        st.caption(f"Saved {job.out.name}: pick it under Model to explore.")
    if _end_unhandled(job):
        st.session_state[_ack_key(job)] = job.id
        if mine and job.saved:
            st.session_state["_pending_model"] = str(job.out)
            st.session_state["_train_notice"] = f"Saved {job.out.name} and switched to it."
        # Once, the whole page: the Train button comes back, the polling ends, the model list
        # has the new file, and in the tab that started the run the new model fills the page.
        st.rerun()
