"""Which model the page explores: the picker, the caches that load it, its summary."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

import cvae
from cvae.core import latent as cvae_latent
from cvae.core import shipped as cvae_shipped
from cvae.core.data import resolve_data_dir
from cvae.core.importer import imported_from
from cvae.core.summary import part_text, summarize
from cvae.draw import figures
from ui.common import file_stamp

REPO = Path(__file__).resolve().parents[1]


def runs_dir() -> Path:
    """Where models trained or opened in the app go: $CVAE_RUNS, else runs/ next to app.py (git-ignored)."""
    return Path(os.environ.get("CVAE_RUNS") or REPO / "runs")


def data_dir() -> str:
    """MNIST folder: $CVAE_DATA, else cvae's per-user default."""
    return str(resolve_data_dir(None))


def list_models() -> dict[str, str]:
    """{path: label}: the shipped model first, then runs/*.pt (trained or opened here), newest first."""
    out: dict[str, str] = {}
    shipped = Path(cvae_shipped.SHIPPED_CHECKPOINT)
    if shipped.is_file():
        out[str(shipped)] = "Shipped model"
    folder = runs_dir()
    if folder.is_dir():
        runs = [p for p in folder.glob("*.pt") if not p.name.startswith(".") and p.is_file()]
        for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True):
            out[str(p)] = f"{'Opened here' if opened_here(str(p), file_stamp(p)) else 'Trained here'}: {p.name}"
    return out


# Why: telling a model opened from a person's file from a trained one reads the checkpoint's
# metadata (tens of ms); the list is built on every full run, so once per file version.
@st.cache_data(show_spinner=False, max_entries=1024)
def opened_here(path: str, stamp: tuple) -> bool:
    return imported_from(path) is not None


# Why: reading and checking a checkpoint costs ~100 ms and the model is read-only at
# inference, so one copy serves every session; the stamp reloads a replaced file.
@st.cache_resource(show_spinner=False, max_entries=8)
def load_model(path: str, stamp: tuple) -> cvae.CVAE:
    return cvae.load_checkpoint(path)


# Why: encoding 10,000 test digits takes seconds on a CPU; the shipped model's encodings
# are read from assets/ (works offline), others are computed once per model file.
@st.cache_data(show_spinner="Encoding the test digits...", max_entries=8)
def load_encodings(path: str, stamp: tuple, data: str) -> dict:
    return cvae_shipped.encodings_for(path, data, lambda: load_model(path, stamp))


# Why: one original test digit for the selection panel; the data set itself stays in
# cvae's per-process cache, so this keeps only the small uint8 picture per index.
@st.cache_data(show_spinner=False, max_entries=256)
def test_digit(data: str, index: int):
    images, labels = cvae.load_mnist("test", data, download=False)
    return cvae_latent.to_uint8(images[index, 0].numpy()), int(labels[index])


# Why: the manifold is n*n decodes (225 by default), asked for again on every full run.
@st.cache_data(show_spinner="Decoding the manifold...", max_entries=16)
def manifold_image(path: str, stamp: tuple, n: int, z1_range: tuple, z2_range: tuple):
    return cvae_latent.to_uint8(cvae.decode_grid(load_model(path, stamp), n, z1_range, z2_range))


# Why: the summary runs the model once with hooks; it depends only on the file.
@st.cache_data(show_spinner=False, max_entries=8)
def model_summary(path: str, stamp: tuple) -> dict:
    parts = summarize(load_model(path, stamp))
    return {k: {"text": part_text(p), "total": p.total_params} for k, p in parts.items()}


# Why: building a Plotly figure (validation) costs tens of ms on every full run, and the
# training curves depend only on the file.
@st.cache_resource(show_spinner=False, max_entries=8)
def history_chart(path: str, stamp: tuple):
    return figures.history_figure(load_model(path, stamp).meta.get("history", []))


# Why: torch's default of one intra-op thread per core makes a 1-image decode 10-50x
# slower when the cores are busy (other sessions, a training): threads spin-wait on each
# other. Half the cores (at least one) keeps a decode at milliseconds. $CVAE_TORCH_THREADS
# overrides. Once per process.
@st.cache_resource
def configure_torch_threads() -> int:
    import torch  # only to size its thread pool; no tensor maths here

    n = app_torch_threads()
    torch.set_num_threads(n)
    return n


def app_torch_threads() -> int:
    """The app server's torch threads: $CVAE_TORCH_THREADS, else half the cores (at least one)."""
    try:
        return max(1, int(os.environ.get("CVAE_TORCH_THREADS") or (os.cpu_count() or 2) // 2))
    except ValueError:
        return 1


MODEL_PARAM = "model"  # ?model=NAME in the page's URL: "shipped", or a run in runs/ (its file name)
SHIPPED_NAME = "shipped"


def model_name(path: str) -> str:
    """The name a link uses for a model: "shipped", or the run's file name without ".pt"."""
    return SHIPPED_NAME if Path(path) == Path(cvae_shipped.SHIPPED_CHECKPOINT) else Path(path).stem


def model_from_link(name: str, models: dict[str, str]) -> str | None:
    """The path of the model a link names, if it is in the list."""
    return next((p for p in models if model_name(p) in (name, name.removesuffix(".pt"))), None)


def model_picker_ui() -> str | None:
    """The model to explore (a path), or None when there is none yet. It follows the page's URL
    (``?model=NAME``) when a session starts, and writes the URL when the model changes, so a
    reload or a link opens the same model."""
    models = list_models()
    pending = st.session_state.pop("_pending_model", None)
    if pending and pending in models:
        st.session_state["model_path"] = pending
    elif "model_path" not in st.session_state and (name := st.query_params.get(MODEL_PARAM)):
        path = model_from_link(name, models)
        if path:
            st.session_state["model_path"] = path
        else:
            st.caption(f"The link names a model, “{name}”, that is not here; showing the "
                       f"{'shipped model' if models else 'page without a model'} instead.")
    if st.session_state.get("model_path") not in models:
        st.session_state.pop("model_path", None)
    if not models:
        st.warning("No model yet: the shipped one is missing. Train one below.")
        return None
    path = st.selectbox("Model to explore", list(models), format_func=models.get, key="model_path")
    if st.query_params.get(MODEL_PARAM) != model_name(path):
        st.query_params[MODEL_PARAM] = model_name(path)
    return path


def usable_model_ui(path: str) -> tuple[str | None, tuple | None]:
    """The picked model if it loads and is 2-D; else one clear message and the model we had."""
    try:
        stamp = file_stamp(Path(path))
        model = load_model(path, stamp)
        if model.latent_dim != 2:
            raise cvae.CheckpointError(path, f"a {model.latent_dim}-D latent space; the explorer needs 2-D")
    except (cvae.CheckpointError, OSError) as exc:
        msg = str(exc) if isinstance(exc, cvae.CheckpointError) else f"{path}: {exc.strerror or exc}"
        good = st.session_state.get("_good_model") or str(cvae_shipped.SHIPPED_CHECKPOINT)
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
    if isinstance(origin := extra.get("imported_from"), dict):
        bits.append(f"opened from {origin.get('file')} ({origin.get('description')})")
    if hist:
        bits.append(f"{len(hist)} epoch{'s' if len(hist) != 1 else ''}")
    if extra.get("best_val_loss") is not None:
        bits.append(f"best val_loss {extra['best_val_loss']:.2f} (epoch {extra.get('best_epoch')})")
    if tc:
        bits.append(f"batch {tc.get('batch_size')}, lr {tc.get('lr')}, seed {tc.get('seed')}"
                    + (f", {tc['limit']} training images" if tc.get("limit") else ""))
    st.caption(" · ".join(bits))
    model_details_ui(path, stamp)


SUMMARY_KEY, CURVES_KEY = "summary_open", "curves_open"


# A fragment: opening or closing a section reruns only this function. Collapsed, each section
# is only its label (a chart in a closed expander still costs the browser its drawing).
@st.fragment
def model_details_ui(path: str, stamp: tuple) -> None:
    """The layer tables and the training curves, each drawn when its section is opened."""
    with st.expander("Model summary", key=SUMMARY_KEY, on_change="rerun") as section:
        if section.open:
            for name, p in model_summary(path, stamp).items():
                st.markdown(f"**{name.capitalize()}**: {p['total']:,} parameters")
                st.code(p["text"], language=None)  # Keras' layout: monospace, scrolls sideways
    with st.expander("Training curves", key=CURVES_KEY, on_change="rerun") as section:
        if not section.open:
            return
        if load_model(path, stamp).meta.get("history"):
            st.plotly_chart(history_chart(path, stamp), key="history_chart", config={"displaylogo": False})
        else:
            st.info("This checkpoint carries no training history.")


def latent_spread_ui(enc: dict) -> None:
    """How far the test digits spread along each latent dimension; a warning when one collapsed."""
    spreads = cvae_latent.spread(enc["z_mean"])
    with st.sidebar:
        st.caption("Spread of z_mean over the test digits (standard deviation): "
                   + ", ".join(f"z{k + 1} {v:.2f}" for k, v in enumerate(spreads)))
        if (warning := cvae_latent.collapse_message(spreads)) is not None:
            st.warning(warning, icon=":material/warning:")
