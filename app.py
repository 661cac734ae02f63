"""CVAE Latent Explorer: ``streamlit run app.py``.

The page's outline; each section lives in ``ui/`` and every number comes from ``cvae``:

- sidebar: the model to explore (``ui.models``), opening one's own model file
  (``ui.open_model``) and training a new one (``ui.training``: a child process, so no session
  waits for it);
- the explorer (``ui.explore``): the scatter of the encoded test digits and the manifold,
  beside the decoder column, whose canvas, sliders and pad decode in the browser
  (``ui.explorer``); the feature panels below;
- how it works (``ui.how``).

Extension points: ``ui.latent.set_latent(z1, z2)`` moves the current point (session-state
keys "z1"/"z2"); ``ui.features.feature_traces`` adds layers drawn over the scatter.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cvae.core.data import has_mnist
from cvae.core.latent import latent_bounds
from cvae.core.shipped import SHIPPED_CHECKPOINT
from ui.common import part
from ui.explore import NO_ENCODINGS, explorer_page_ui, film_ui
from ui.how import how_it_works_ui
from ui.latent import BOUNDS_KEY, current_latent, point_from_url, set_latent
from ui.models import (configure_torch_threads, data_dir, latent_spread_ui, load_encodings, model_info_ui,
                       model_picker_ui, runs_dir, usable_model_ui)
from ui.open_model import open_model_ui
from ui.publish import publish_ui
from ui.training import TRAIN_FORM_KEY, train_form_ui, training_ui


def sidebar_ui(data: str) -> tuple[str | None, tuple | None]:
    """The model to explore (path, file stamp), or (None, None); the training form; opening a model."""
    with st.sidebar:
        st.header("Model")
        path = stamp = None
        with part("The model"):
            if notice := st.session_state.pop("_open_notice", None):
                st.success(notice)
            path = model_picker_ui()
            if path:
                path, stamp = usable_model_ui(path)
            if path:
                model_info_ui(path, stamp)
                publish_ui(path, stamp, data)
        with part("Training"):
            # Collapsed, the form is only its label (its inputs cost every browser that opens
            # the page their drawing); open at once when there is no model yet.
            with st.expander("Train a new model", expanded=not path, key=TRAIN_FORM_KEY, on_change="rerun",
                             icon=":material/model_training:") as section:
                if section.open:
                    train_form_ui(data, runs_dir())
            training_ui(data)
        with part("Opening a model"):
            if opened := open_model_ui(runs_dir()):
                st.session_state["_pending_model"] = opened  # the picker switches to it
                st.rerun()
    return path, stamp


def encodings_ui(path: str, stamp: tuple, data: str) -> dict | None:
    """The test set's encodings for the model, or None with a message saying why not."""
    with part("The encodings"):
        if not has_mnist(data) and Path(path).resolve() != SHIPPED_CHECKPOINT.resolve():
            return NO_ENCODINGS  # nothing to encode here: the decoder and the manifold still open
        enc = load_encodings(path, stamp, data)
        dim = enc["z_mean"].shape[1]
        if dim != 2:
            st.error(f"The encodings of this model have a {dim}-D latent space; the explorer needs 2-D.")
            return None
        return enc
    if not has_mnist(data):
        st.info("Models trained here have no shipped encodings; they need the MNIST test set "
                f"in {Path(data) / 'MNIST' / 'raw'}. The shipped model works offline.")
    return None


def main() -> None:
    st.set_page_config(page_title="CVAE Latent Explorer", page_icon="🔢", layout="wide")
    st.title("CVAE Latent Explorer")
    st.caption("A convolutional VAE on MNIST with a 2-D latent space: drag the sliders, or hover and drag on "
               "the scatter, and watch one digit morph into another.")
    configure_torch_threads()
    data = data_dir()
    path, stamp = sidebar_ui(data)
    if not path:
        st.info("There is no model to explore yet. Train one in the sidebar (needs MNIST).")
    elif (enc := encodings_ui(path, stamp, data)) is not None:
        if len(enc["z_mean"]):
            latent_spread_ui(enc)
        st.session_state[BOUNDS_KEY] = latent_bounds(enc["z_mean"])
        point_from_url()
        # Every full run clamps the point into this model's bounds (a point from another
        # model, or NaN/junk put in session state).
        set_latent(*current_latent())
        explorer_page_ui(path, stamp, enc, data)
        film_ui(path, stamp)
    how_it_works_ui()


if __name__ == "__main__":  # `streamlit run` runs the script as __main__
    main()
