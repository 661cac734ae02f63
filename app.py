"""CVAE Latent Explorer: ``streamlit run app.py``.

UI only: every number comes from the ``cvae`` package. The page is a scatter of the
encoded test digits beside a live decoder driven by two sliders (one fragment, so a
slider move reruns only that part), the tutorial's manifold, a "how it works" section,
and a sidebar to pick, inspect and train models. Training runs on a background thread
(one job object shared by all sessions), so no tab or session ever waits for it.

Extension points for other parts of the app:
- ``set_latent(z1, z2)`` moves the current latent point (session-state keys "z1", "z2").
  Call it before the sliders are drawn in a run (e.g. in a widget callback, or in the
  ``# -- latent pad --`` block, which runs before the sliders).
- ``cvae.plots.latent_scatter(..., extra_traces=[...])``: add traces to the scatter by
  appending to ``st.session_state["scatter_extra_traces"]`` (a list of Plotly traces).
- ``# -- latent pad --`` (decoder column) and ``# -- features --`` (below the manifold).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import math
import os
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

import cvae
from cvae import assets as cvae_assets
from cvae import latent as cvae_latent
from cvae import model as cvae_model
from cvae import plots
from cvae.data import has_mnist, resolve_data_dir
from cvae.summary import part_text, summarize
from ui import features
from ui.pad import latent_pad_ui

REPO = Path(__file__).resolve().parent
LOG = logging.getLogger("cvae.app")
DIGIT_PX = 280  # the decoder canvas: 28 px x 10, nearest neighbour
DEFAULT_BOUNDS = (-4.0, 4.0, -4.0, 4.0)
SLIDER_STEP = 0.01
TRAIN_POLL_S = 1.0
WATCH_POLL_S = 5.0  # tabs following a training started elsewhere


# --------------------------------------------------------------------------- paths

def runs_dir() -> Path:
    """Where models trained in the app go: $CVAE_RUNS, else runs/ next to app.py (git-ignored)."""
    return Path(os.environ.get("CVAE_RUNS") or REPO / "runs")


def data_dir() -> Path:
    """MNIST folder: $CVAE_DATA, else cvae's per-user default."""
    return resolve_data_dir(None)


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size): part of every cache key, so a replaced file is read again."""
    st_ = Path(path).stat()
    return st_.st_mtime_ns, st_.st_size


def list_models() -> dict[str, str]:
    """{path: label}: the shipped model first, then runs/*.pt, newest first."""
    out: dict[str, str] = {}
    shipped = Path(cvae_assets.SHIPPED_CHECKPOINT)
    if shipped.is_file():
        out[str(shipped)] = "Shipped model"
    folder = runs_dir()
    if folder.is_dir():
        runs = [p for p in folder.glob("*.pt") if not p.name.startswith(".")]
        for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True):
            out[str(p)] = f"Trained here: {p.name}"
    return out


# --------------------------------------------------------------------------- caches

# Why: reading and checking a checkpoint costs ~100 ms and the model is read-only at
# inference, so one copy serves every session; the stamp reloads a replaced file.
@st.cache_resource(show_spinner=False, max_entries=8)
def load_model(path: str, stamp: tuple) -> cvae.CVAE:
    return cvae.load_checkpoint(path)


# Why: encoding 10,000 test digits takes seconds on a CPU; the shipped model's encodings
# are read from assets/ (works offline), others are computed once per model file.
@st.cache_data(show_spinner="Encoding the test digits...", max_entries=8)
def load_encodings(path: str, stamp: tuple, data: str) -> dict:
    shipped_ckpt = Path(cvae_assets.SHIPPED_CHECKPOINT)
    shipped_enc = Path(cvae_assets.SHIPPED_ENCODINGS)
    if Path(path) == shipped_ckpt and shipped_enc.is_file():
        stale = shipped_enc.stat().st_mtime_ns < shipped_ckpt.stat().st_mtime_ns
        if not (stale and has_mnist(data)):
            enc = cvae_assets.read_encodings(shipped_enc)
            enc["source"] = "assets/test_encodings.npz"
            return enc
    model = load_model(path, stamp)
    images, labels = cvae.load_mnist("test", data, download=False)
    z_mean, z_log_var = cvae.encode_dataset(model, images)
    return {"z_mean": z_mean, "z_log_var": z_log_var, "label": labels.numpy(), "source": "MNIST test set"}


# Why: one original test digit for the selection panel; the data set itself stays in
# cvae's per-process cache, so this keeps only the small uint8 picture per index.
@st.cache_data(show_spinner=False, max_entries=256)
def test_digit(data: str, index: int):
    images, labels = cvae.load_mnist("test", data, download=False)
    return cvae_latent.to_uint8(images[index, 0].numpy()), int(labels[index])


# Why: the manifold is n*n decodes (225 by default); the same ranges are asked for again
# on every slider move, so the image is computed once per model and settings.
@st.cache_data(show_spinner="Decoding the manifold...", max_entries=16)
def manifold_image(path: str, stamp: tuple, n: int, z1_range: tuple, z2_range: tuple):
    return cvae_latent.to_uint8(cvae.decode_grid(load_model(path, stamp), n, z1_range, z2_range))


# Why: the summary runs the model once with hooks; it depends only on the file.
@st.cache_data(show_spinner=False, max_entries=8)
def model_summary(path: str, stamp: tuple) -> dict:
    parts = summarize(load_model(path, stamp))
    return {k: {"text": part_text(p), "total": p.total_params} for k, p in parts.items()}


# Why: torch's default of one intra-op thread per core makes a 1-image decode 10-50x
# slower when the cores are busy (a training, other sessions): threads spin-wait on each
# other. Half the cores (at least one) keeps a decode at milliseconds and leaves a core
# free for the page while a model trains here. $CVAE_TORCH_THREADS overrides.
@st.cache_resource
def configure_torch_threads() -> int:
    import torch  # only to size its thread pool; no tensor maths here

    try:
        n = max(1, int(os.environ.get("CVAE_TORCH_THREADS") or (os.cpu_count() or 2) // 2))
    except ValueError:
        n = 1
    torch.set_num_threads(n)
    return n


# --------------------------------------------------------------------------- errors

@contextmanager
def part(what: str):
    """Failures inside show one clear message where the part would be, never a traceback."""
    try:
        yield
    except (cvae.CheckpointError, cvae.DataMissingError, ValueError, OSError) as exc:
        st.error(f"{what}: {exc}")
    except Exception as exc:  # the page must stay usable; the console keeps the details
        LOG.error("%s failed:\n%s", what, traceback.format_exc())
        st.error(f"{what} failed: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- latent point

def set_latent(z1: float, z2: float) -> tuple[float, float]:
    """Move the current latent point, clamped to the slider range; sets keys "z1" and "z2".

    Call before the sliders are drawn in this run (in a callback or the latent-pad block).
    """
    lo1, hi1, lo2, hi2 = st.session_state.get("_latent_bounds", DEFAULT_BOUNDS)
    # NaN, inf or junk (session state, a query) goes to the middle; the rest is clamped.
    z1 = min(max(_finite_or(z1, (lo1 + hi1) / 2), lo1), hi1)
    z2 = min(max(_finite_or(z2, (lo2 + hi2) / 2), lo2), hi2)
    st.session_state["z1"] = z1
    st.session_state["z2"] = z2
    return z1, z2


def _finite_or(value, default: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def current_latent() -> tuple[float, float]:
    return _finite_or(st.session_state.get("z1"), 0.0), _finite_or(st.session_state.get("z2"), 0.0)


def _apply_selection(enc: dict) -> None:
    """When "selected_index" changed (a click, or code setting it), jump to that digit."""
    idx = st.session_state.get("selected_index")
    if idx is None or idx == st.session_state.get("_applied_selection"):
        return
    st.session_state["_applied_selection"] = idx
    if not 0 <= int(idx) < len(enc["z_mean"]):
        st.session_state["selected_index"] = None
        st.warning(f"There is no test digit #{idx}; the test set has {len(enc['z_mean'])}.")
        return
    z = enc["z_mean"][int(idx)]
    set_latent(float(z[0]), float(z[1]))


def _on_scatter_select() -> None:
    state = st.session_state.get("scatter")
    points = (state or {}).get("selection", {}).get("points", []) if state else []
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            st.session_state["selected_index"] = int(cd)
            return


# --------------------------------------------------------------------------- training job

class TrainJob:
    """One training run on a background thread. Read by any session; written by its thread."""

    def __init__(self, cfg: cvae.TrainConfig, out: Path, data: str):
        self.id = f"{time.time_ns():x}"
        self.cfg, self.out, self.data = cfg, Path(out), data
        self.status = "running"  # running | done | stopped | failed
        self.message = "loading MNIST..."
        self.history: list[dict] = []
        self.steps: list[tuple[float, float]] = []  # (fractional epoch, loss)
        self.progress = 0.0
        self.saved = False
        self.started = time.time()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"cvae-train-{self.id}", daemon=True)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def _callback(self, ev: dict) -> bool:
        e = self.cfg.epochs
        if ev["kind"] == "step":
            frac = (ev["epoch"] - 1 + ev["step"] / ev["steps"])
            self.progress = min(1.0, frac / e)
            if ev["step"] % max(1, ev["steps"] // 50) == 0 or ev["step"] == ev["steps"]:
                self.steps.append((frac, ev["loss"]))
            self.message = f"epoch {ev['epoch']}/{e}, step {ev['step']}/{ev['steps']}, loss {ev['loss']:.2f}"
            if ev["step"] == ev["steps"]:
                self.message = f"epoch {ev['epoch']}/{e}: computing val_loss on the test set..."
        else:
            self.history.append({k: v for k, v in ev.items() if k != "kind"})
            self.message = f"epoch {ev['epoch']}/{e}: loss {ev['loss']:.2f}, val_loss {ev['val_loss']:.2f}"
        return not self.stop_event.is_set()

    def _run(self) -> None:
        try:
            train_x, _ = cvae.load_mnist("train", self.data, download=False)
            test_x, _ = cvae.load_mnist("test", self.data, download=False)
            self.message = "training..."
            res = cvae.train(self.cfg, train_x, test_x, callback=self._callback, out=self.out)
            self.saved = res.best_epoch is not None and self.out.is_file()
            self.status = {"stopped": "stopped", "nan": "failed"}.get(res.stop_reason, "done")
            self.message = res.message + ("" if self.saved else " (no epoch finished, nothing was saved)")
        except (cvae.DataMissingError, cvae.CheckpointError, ValueError, OSError) as exc:
            self.status, self.message = "failed", str(exc)
        except Exception as exc:  # a thread has nobody above it to report to
            LOG.error("training failed:\n%s", traceback.format_exc())
            self.status, self.message = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if self.status == "running":
                self.status = "failed"
            self.progress = 1.0 if self.status == "done" else self.progress


class JobRegistry:
    """All training jobs of this server process; one runs at a time (CPU is shared)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.jobs: dict[str, TrainJob] = {}

    def active(self) -> TrainJob | None:
        return next((j for j in self.jobs.values() if j.running), None)

    def get(self, job_id: str | None) -> TrainJob | None:
        return self.jobs.get(job_id) if job_id else None

    def start(self, cfg: cvae.TrainConfig, out: Path, data: str) -> TrainJob:
        with self.lock:
            if self.active() is not None:
                raise RuntimeError("another training is running (maybe from another tab); wait or stop it")
            job = TrainJob(cfg, out, data)
            self.jobs[job.id] = job
            job.thread.start()
            return job


# Why: one registry per server process, shared by every session and tab, so a run
# outlives reruns and any tab can follow or stop it.
@st.cache_resource
def job_registry() -> JobRegistry:
    return JobRegistry()


# --------------------------------------------------------------------------- sidebar

def model_picker_ui() -> str | None:
    """The model to explore (a path), or None when there is none yet."""
    models = list_models()
    pending = st.session_state.pop("_pending_model", None)
    if pending and pending in models:
        st.session_state["model_path"] = pending
    if st.session_state.get("model_path") not in models:
        st.session_state.pop("model_path", None)
    if not models:
        st.warning("No model yet: the shipped one is missing. Train one below.")
        return None
    return st.selectbox("Model to explore", list(models), format_func=models.get, key="model_path")


def usable_model(path: str) -> tuple[str | None, tuple | None]:
    """The picked model if it loads and is 2-D; else one clear message and the model we had."""
    try:
        stamp = file_stamp(Path(path))
        model = load_model(path, stamp)
        if model.latent_dim != 2:
            raise cvae.CheckpointError(path, f"a {model.latent_dim}-D latent space; the explorer needs 2-D")
    except (cvae.CheckpointError, OSError) as exc:
        msg = str(exc) if isinstance(exc, cvae.CheckpointError) else f"{path}: {exc.strerror or exc}"
        good = st.session_state.get("_good_model") or str(cvae_assets.SHIPPED_CHECKPOINT)
        if good and good != path and Path(good).is_file():
            st.error(f"{msg}. Still exploring {Path(good).name}.")
            return good, file_stamp(Path(good))
        st.error(msg)
        return None, None
    st.session_state["_good_model"] = path
    return path, stamp


def model_info_ui(path: str, stamp: tuple) -> None:
    model = load_model(path, stamp)
    meta = model.meta
    extra, hist, tc = meta.get("extra", {}), meta.get("history", []), meta.get("train_config", {})
    bits = [f"latent_dim {model.latent_dim}", f"{cvae.count_parameters(model):,} parameters"]
    if hist:
        bits.append(f"{len(hist)} epoch{'s' if len(hist) != 1 else ''}")
    if extra.get("best_val_loss") is not None:
        bits.append(f"best val_loss {extra['best_val_loss']:.2f} (epoch {extra.get('best_epoch')})")
    if tc:
        bits.append(f"batch {tc.get('batch_size')}, lr {tc.get('lr')}, seed {tc.get('seed')}"
                    + (f", {tc['limit']} training images" if tc.get("limit") else ""))
    st.caption(" · ".join(bits))
    with st.expander("Model summary"):
        for name, p in model_summary(path, stamp).items():
            st.markdown(f"**{name.capitalize()}**: {p['total']:,} parameters")
            st.code(p["text"], language=None)  # Keras' layout: monospace, scrolls sideways
    with st.expander("Training curves"):
        if hist:
            st.plotly_chart(plots.history_figure(hist), key="history_chart", config={"displaylogo": False})
        else:
            st.info("This checkpoint carries no training history.")


def train_form_ui(data: str) -> None:
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
    if go:
        if not has_mnist(data):
            st.error(f"Training needs MNIST in {Path(data) / 'MNIST' / 'raw'} (set CVAE_DATA to a folder "
                     "that holds MNIST/raw/, or run `python -m cvae train ...` once online to download it).")
            return
        try:
            cfg = cvae.TrainConfig.from_recipe(cvae.DEFAULT_RECIPE, epochs=int(epochs), batch_size=int(batch), lr=float(lr),
                                               seed=int(seed), limit=int(limit) or None, patience=0, device="cpu")
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = runs_dir() / f"cvae_{stamp}_e{int(epochs)}_b{int(batch)}.pt"
            job = reg.start(cfg, out, data)
            st.session_state["train_job_id"] = job.id
        except (ValueError, RuntimeError) as exc:
            st.error(str(exc))
            return
        st.rerun()  # redraw with the Train button disabled and the progress polling


def _training_status(job_id: str | None) -> None:
    reg = job_registry()
    job = reg.get(job_id) or reg.active()
    if job is None:
        return
    mine = job.id == st.session_state.get("train_job_id")
    label = {"running": "Training", "done": "Finished", "stopped": "Stopped", "failed": "Failed"}[job.status]
    st.progress(job.progress, text=f"{label}: {job.message}")
    if job.history or job.steps:
        st.plotly_chart(plots.history_figure(job.history, live_steps=job.steps, height=220),
                        key="train_live_chart", config={"displaylogo": False})
    if job.running:
        if st.button("Stop training", key="stop_training"):
            job.stop_event.set()
            st.toast("Stopping after the current step...")
        if not mine:
            st.caption("Started from another tab or session.")
        return
    if job.status == "failed":
        st.error(job.message)
    if mine and st.session_state.get("_acknowledged_job") != job.id:
        st.session_state["_acknowledged_job"] = job.id
        if job.saved:
            st.session_state["_pending_model"] = str(job.out)
            st.session_state["_train_notice"] = f"Saved {job.out.name} and switched to it."
        st.rerun()  # the whole page: the new model fills the scatter, decoder and sidebar


def training_ui(data: str) -> None:
    reg = job_registry()
    job_id = st.session_state.get("train_job_id")
    job = reg.get(job_id) or reg.active()
    mine_unacked = job is not None and job.id == job_id and st.session_state.get("_acknowledged_job") != job.id
    poll = job is not None and (job.running or mine_unacked)
    # Polls the job while one runs (the tab that started it often, others watching slowly,
    # so ten watching tabs do not keep a small server busy); otherwise a plain fragment.
    every = (TRAIN_POLL_S if job is not None and job.id == job_id else WATCH_POLL_S) if poll else None
    st.fragment(_training_status, run_every=every)(job_id)
    notice = st.session_state.pop("_train_notice", None)
    if notice:
        st.success(notice)


def sidebar_ui(data: str) -> tuple[str | None, tuple | None]:
    with st.sidebar:
        st.header("Model")
        path = stamp = None
        with part("The model"):
            path = model_picker_ui()
            if path:
                path, stamp = usable_model(path)
            if path:
                model_info_ui(path, stamp)
        st.header("Train a new model")
        with part("Training"):
            train_form_ui(data)
            training_ui(data)
    return path, stamp


# --------------------------------------------------------------------------- explorer

def latent_bounds(enc: dict) -> tuple[float, float, float, float]:
    return plots.latent_bounds(enc["z_mean"])


def decoder_ui(path: str, stamp: tuple, enc: dict | None = None) -> tuple[float, float]:
    """The decoded digit at the current point, the two sliders under it, and the latent pad."""
    lo1, hi1, lo2, hi2 = st.session_state["_latent_bounds"]
    st.subheader("Decoder")
    digit_box = st.container()
    slider_box = st.container()
    pad_box = st.container()
    with pad_box:
        # -- latent pad --
        # Decodes in the browser while dragging; on release set_latent runs as the
        # widget callback, so the sliders and the scatter marker follow.
        latent_pad_ui(load_model(path, stamp), current_latent(), z1_range=(lo1, hi1), z2_range=(lo2, hi2),
                      encodings=None if enc is None else enc["z_mean"],
                      labels=None if enc is None else enc["label"], on_release=set_latent, size=200)
        st.caption("Drag on the pad: the digit beside it is decoded in your browser as you move.")
    with slider_box:
        z1 = st.slider("z1", lo1, hi1, step=SLIDER_STEP, format="%.2f", key="z1")
        z2 = st.slider("z2", lo2, hi2, step=SLIDER_STEP, format="%.2f", key="z2")
    with digit_box:
        with part("The decoder"):
            digit = cvae.decode_point(load_model(path, stamp), z1, z2)
            st.image(plots.pixelate(digit, DIGIT_PX // 28), width=DIGIT_PX, output_format="PNG",
                     caption=f"decoded at z = ({z1:.3f}, {z2:.3f})")
    return z1, z2


def scatter_ui(enc: dict, z: tuple[float, float], extra: list | None = None) -> None:
    st.subheader("Encoded test digits")
    fig = plots.latent_scatter(enc["z_mean"], enc["label"], z,
                               extra_traces=[*(st.session_state.get("scatter_extra_traces") or []), *(extra or [])])
    st.plotly_chart(fig, key="scatter", on_select=_on_scatter_select, selection_mode="points",
                    config={"displaylogo": False, "scrollZoom": True})
    st.caption(f"z_mean of {len(enc['z_mean']):,} test digits ({enc['source']}). Click a point to jump "
               "to it; click a digit in the legend to hide it, double-click to show only it.")


def selection_ui(path: str, stamp: tuple, enc: dict, data: str) -> None:
    idx = st.session_state.get("selected_index")
    if idx is None:
        return
    idx = int(idx)
    label = int(enc["label"][idx])
    z = enc["z_mean"][idx]
    st.subheader(f"Selected: test digit #{idx}, a {label}")
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        with part("The original"):
            if has_mnist(data):
                original, _ = test_digit(data, idx)
                st.image(plots.pixelate(original, 5), width=140, output_format="PNG", caption=f"original #{idx} (label {label})")
            else:
                st.info("The original needs the MNIST test set, which is not on this machine. "
                        f"Put the four MNIST files in {Path(data) / 'MNIST' / 'raw'} (or point CVAE_DATA at "
                        "a folder holding MNIST/raw/); `python -m cvae evaluate assets/cvae_mnist.pt` "
                        "downloads them when online.")
    with c2:
        with part("The reconstruction"):
            recon = cvae.decode_point(load_model(path, stamp), float(z[0]), float(z[1]))
            st.image(plots.pixelate(recon, 5), width=140, output_format="PNG", caption=f"reconstruction at z_mean = "
                                                                  f"({z[0]:.2f}, {z[1]:.2f})")
    with c3:
        if st.button("Clear selection", key="clear_selection"):
            st.session_state["selected_index"] = None
            st.session_state["_applied_selection"] = None
            st.rerun(scope="fragment")


def manifold_ui(path: str, stamp: tuple, z: tuple[float, float]) -> None:
    st.subheader("Manifold")
    st.caption("Digits decoded on an n x n grid of latent points (the tutorial's figure); "
               "the red ring is the current point when it lies inside.")
    c1, c2, c3 = st.columns(3)
    n = c1.slider("n", 2, cvae_latent.MAX_GRID_N, cvae_latent.GRID_N, key="grid_n")
    z1r = c2.slider("z1 range", -6.0, 6.0, cvae_latent.GRID_Z1, step=0.1, key="grid_z1")
    z2r = c3.slider("z2 range", -6.0, 6.0, cvae_latent.GRID_Z2, step=0.1, key="grid_z2")
    if z1r[0] >= z1r[1] or z2r[0] >= z2r[1]:
        st.warning("Each range needs its low end below its high end.")
        return
    with part("The manifold"):
        grid = manifold_image(path, stamp, int(n), tuple(z1r), tuple(z2r))
        st.plotly_chart(plots.manifold_figure(grid, int(n), z1r, z2r, z), key="manifold",
                        config={"displaylogo": False})


@st.fragment
def explorer(path: str, stamp: tuple, enc: dict, data: str) -> None:
    """Everything that depends on the latent point: reruns alone when a slider moves."""
    _apply_selection(enc)
    model = load_model(path, stamp)
    left, right = st.columns([3, 2], gap="large")
    with right:  # first, so the new digit reaches the browser before anything slower
        z = decoder_ui(path, stamp, enc)
    with left:
        with part("The scatter"):
            # The drawn star, morph path and posterior: read from the feature widgets' state.
            feature_traces = features.feature_traces(model, enc, z, st.session_state.get("selected_index"))
            scatter_ui(enc, z, feature_traces)
    selection_ui(path, stamp, enc, data)
    manifold_ui(path, stamp, z)
    # -- features --
    with part("The feature panels"):
        st.subheader("Draw, morph, uncertainty, downloads")
        features.features_ui(
            model, enc, z, set_latent,
            test_image=lambda i: test_digit(data, i)[0] if has_mnist(data) else None,
            selected_index=st.session_state.get("selected_index"),
            grid=lambda: manifold_image(path, stamp, int(st.session_state["grid_n"]),
                                        tuple(st.session_state["grid_z1"]), tuple(st.session_state["grid_z2"])),
            model_key=f"{path}:{stamp}")


# --------------------------------------------------------------------------- how it works

def how_it_works_ui() -> None:
    with st.expander("How it works", expanded=False):
        st.markdown("The **encoder** maps a digit x to a Gaussian q(z|x) = N(mu, sigma^2) over the 2-D latent "
                    "space; the **decoder** maps a latent point z back to 784 pixel probabilities. Training "
                    "samples z with the *reparameterisation trick*, so gradients flow through mu and sigma:")
        steps = [
            (r"z = \mu + \sigma \odot \varepsilon,\quad \sigma = e^{\frac{1}{2}\log\sigma^2},"
             r"\quad \varepsilon \sim \mathcal{N}(0, I)", cvae_model.reparameterize,
             "The loss is the negative evidence lower bound (-ELBO) per image: a reconstruction term "
             "(784 x the mean binary cross-entropy over pixels) plus the KL divergence of q(z|x) "
             "from the prior N(0, I):"),
            (r"-\mathrm{ELBO}(x) = \underbrace{784\cdot\overline{\mathrm{BCE}}(x, \hat x)}_{\text{reconstruction}}"
             r" + \underbrace{D_{\mathrm{KL}}\big(q(z\mid x)\,\|\,\mathcal{N}(0, I)\big)}_{\text{KL}}",
             cvae_model.vae_loss, "For a diagonal Gaussian the KL term has a closed form:"),
            (r"D_{\mathrm{KL}} = -\tfrac{1}{2}\sum_{j=1}^{d}\left(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\right)",
             cvae_model.kl_divergence, None),
        ]
        # Each formula beside the package code that computes it (read from cvae, never copied here).
        for formula, fn, then in steps:
            c1, c2 = st.columns(2)
            c1.latex(formula)
            c2.code(inspect.getsource(fn), language="python")
            if then:
                st.markdown(then)


# --------------------------------------------------------------------------- page

def main() -> None:
    st.set_page_config(page_title="CVAE Latent Explorer", page_icon="🔢", layout="wide")
    st.title("CVAE Latent Explorer")
    st.caption("A convolutional VAE on MNIST with a 2-D latent space: drag the sliders to move through it and "
               "watch one digit morph into another.")
    configure_torch_threads()
    data = str(data_dir())
    path, stamp = sidebar_ui(data)
    if not path:
        st.info("There is no model to explore yet. Train one in the sidebar (needs MNIST).")
        how_it_works_ui()
        return
    enc = None
    with part("The encodings"):
        enc = load_encodings(path, stamp, data)
        if enc["z_mean"].shape[1] != 2:
            raise ValueError(f"this model has a {enc['z_mean'].shape[1]}-D latent space; the explorer needs 2-D")
    if enc is None:
        if not has_mnist(data):
            st.info("Models trained here have no shipped encodings; they need the MNIST test set "
                    f"in {Path(data) / 'MNIST' / 'raw'}. The shipped model works offline.")
        how_it_works_ui()
        return
    bounds = latent_bounds(enc)
    st.session_state["_latent_bounds"] = bounds
    # Every full run: clamps a point from another model, or any out-of-range/NaN value
    # put in session state, into the slider range (a slider refuses a value outside it).
    set_latent(*current_latent())
    explorer(path, stamp, enc, data)
    how_it_works_ui()


if __name__ == "__main__":  # `streamlit run` runs the script as __main__
    main()
