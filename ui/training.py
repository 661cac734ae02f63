"""The sidebar's training section: a form that starts a run, and the run's progress.

The run itself is a :class:`cvae.jobs.TrainJob` in a child process, so no session waits
for it and the server keeps its threads. Any tab sees the run in progress (and may stop
it); the tab that started it switches to the new model when it is saved.

Session state: "train_job_id" (the run this session started), "_acknowledged_job" (its end
was handled), "_watched_job_id" (a run from another tab this one followed); on success "_pending_model" (the saved checkpoint's path, for the model
picker) and "_train_notice" (shown once).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import streamlit as st

import cvae
from cvae import plots
from cvae.data import has_mnist
from cvae.jobs import JobBusyError, JobRegistry, TrainJob
from ui.film import live_film_ui

TRAIN_POLL_S = 1.0  # the tab that started the run
WATCH_POLL_S = 5.0  # tabs following a run started elsewhere (ten of them must not keep a small server busy)
LABELS = {"running": "Training", "done": "Finished", "stopped": "Stopped", "failed": "Failed"}


# Why: one registry per server process, shared by every session and tab, so a run outlives
# reruns, any tab can follow or stop it, and "one run at a time" holds across tabs.
@st.cache_resource
def job_registry() -> JobRegistry:
    return JobRegistry()


def train_form_ui(data: str, runs: Path) -> None:
    """The form (the default recipe's values); a valid submit starts a run saving into ``runs``."""
    reg = job_registry()
    with st.form("train_form", border=False):
        c1, c2 = st.columns(2)
        recipe = cvae.RECIPES[cvae.DEFAULT_RECIPE]  # defaults: the recipe that reaches the tutorial's quality
        epochs = c1.number_input("Epochs", 1, 200, recipe["epochs"], key="train_epochs",
                                 help="After a short warm-up (2% of the steps) the learning rate decays to zero "
                                      "over these epochs (cosine).")
        batch = c2.number_input("Batch size", 1, 4096, recipe["batch_size"], key="train_batch")
        lr = c1.number_input("Learning rate", 1e-5, 1.0, recipe["lr"], format="%.4f", step=1e-4, key="train_lr")
        seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
        limit = st.number_input("Training images (0 = all 60,000)", 0, 60000, 0, step=1000, key="train_limit",
                                help="Train on the first N images only: much faster, a rougher model.")
        go = st.form_submit_button("Train", type="primary", disabled=reg.active() is not None)
    if not go:
        return
    if not has_mnist(data):
        st.error(f"Training needs MNIST in {Path(data) / 'MNIST' / 'raw'} (set CVAE_DATA to a folder "
                 "that holds MNIST/raw/, or run `python -m cvae train ...` once online to download it).")
        return
    try:
        cfg = cvae.TrainConfig.from_recipe(cvae.DEFAULT_RECIPE, epochs=int(epochs), batch_size=int(batch),
                                           lr=float(lr), seed=int(seed), limit=int(limit) or None, patience=0,
                                           device="cpu")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        job = reg.start(cfg, Path(runs) / f"cvae_{stamp}_e{int(epochs)}_b{int(batch)}.pt", data)
    except (ValueError, JobBusyError) as exc:  # a bad value, or a run started from another tab just now
        st.error(str(exc))
        return
    st.session_state["train_job_id"] = job.id
    st.rerun()  # redraw with the Train button disabled and the progress polling


def _followed_job() -> TrainJob | None:
    """This session's run if the registry still has it, else whichever run is going, else the
    run from another tab this session last watched (so it sees how that one ended)."""
    reg = job_registry()
    return (reg.get(st.session_state.get("train_job_id")) or reg.active()
            or reg.get(st.session_state.get("_watched_job_id")))


def training_ui(data: str) -> None:
    """The run in progress or just ended (progress, live loss and film, Stop), polled while it runs."""
    job_id = st.session_state.get("train_job_id")
    job = _followed_job()
    mine = job is not None and job.id == job_id
    unacknowledged = mine and st.session_state.get("_acknowledged_job") != job.id
    polling = job is not None and (job.running or unacknowledged)
    # The tab that started the run polls often, others slowly; with no run, a plain fragment.
    every = (TRAIN_POLL_S if mine else WATCH_POLL_S) if polling else None
    st.fragment(_training_status_ui, run_every=every)()
    notice = st.session_state.pop("_train_notice", None)
    if notice:
        st.success(notice)


def _stop(job: TrainJob) -> None:
    job.stop()
    st.toast("Stopping after the current step...")


def _training_status_ui() -> None:
    job = _followed_job()
    if job is None:
        return
    mine = job.id == st.session_state.get("train_job_id")
    st.progress(job.progress, text=f"{LABELS[job.status]}: {job.message}")
    if job.history or job.steps:
        st.plotly_chart(plots.history_figure(job.history, live_steps=job.steps, height=220),
                        key="train_live_chart", config={"displaylogo": False})
    if job.running:
        live_film_ui(job.snapshots)
        # A callback, so the rerun it triggers already draws the button disabled.
        st.button("Stop training", key="stop_training", disabled=job.stop_requested, on_click=_stop, args=(job,),
                  help="Stops after the current step and keeps the best epoch so far.")
        if not mine:
            st.session_state["_watched_job_id"] = job.id
            st.caption("Started from another tab or session.")
        return
    if job.status == "failed":
        st.error(job.message)
    if not mine and job.saved:
        st.caption(f"Saved {job.out.name}: pick it under Model to explore.")
    if mine and st.session_state.get("_acknowledged_job") != job.id:
        st.session_state["_acknowledged_job"] = job.id
        if job.saved:
            st.session_state["_pending_model"] = str(job.out)
            st.session_state["_train_notice"] = f"Saved {job.out.name} and switched to it."
        st.rerun()  # the whole page: the new model fills the scatter, decoder and sidebar
