"""The explorer alone (no sidebar, no training) for browser tests: ``streamlit run``.

$CVAE_EXPLORER_CKPT / $CVAE_EXPLORER_ENC: a checkpoint and an encodings .npz (default: the
shipped model and its encodings). Prints the committed point, the selection and how many
times each fragment ran, as the app's state a test reads (Streamlit's e2e style).
"""

import os

import streamlit as st

from cvae.core import shipped
from cvae.core.encodings import read_encodings
from cvae.core.latent import latent_bounds
from ui.common import file_stamp
import ui.explore
import ui.explorer
from ui.explore import explorer_page_ui
from ui.latent import BOUNDS_KEY, current_latent, point_from_url, set_latent
from ui.models import data_dir

st.set_page_config(layout="wide")
# The status line is printed inside the decoder column, so the app's own commit path (the
# component's fragment, nothing added) shows Python's state after each commit.
if not getattr(ui.explore.selection_ui, "with_status", False):
    _selection_ui = ui.explore.selection_ui

    def _selection_ui_with_status(*args):
        z1, z2 = current_latent()
        st.text(f"full_runs={st.session_state['_full_runs']} z1={z1:.4f} z2={z2:.4f} "
                f"selected={st.session_state.get('selected_index')}")
        _selection_ui(*args)

    _selection_ui_with_status.with_status = True
    ui.explore.selection_ui = _selection_ui_with_status
# $CVAE_HARNESS_SLOW_COMMIT (seconds): a server slow to apply each commit, so that reruns of
# earlier commits reach the browser while later ones are still on their way.
if os.environ.get("CVAE_HARNESS_SLOW_COMMIT") and not getattr(ui.explore.commit, "slowed", False):
    import time

    _commit, _delay = ui.explore.commit, float(os.environ["CVAE_HARNESS_SLOW_COMMIT"])

    def _slow_commit(*args):
        time.sleep(_delay)
        _commit(*args)

    _slow_commit.slowed = True
    ui.explore.commit = _slow_commit
# $CVAE_HARNESS_LOSE_FIRST_COMMIT=1: the first commit of the server is lost on its way (as if
# its message never arrived), so the browser must send it again.
if os.environ.get("CVAE_HARNESS_LOSE_FIRST_COMMIT") and not getattr(ui.explorer.parse_commit, "lossy", False):
    _parse, _lost = ui.explorer.parse_commit, []

    def _lossy_parse(*args):
        if not _lost:
            _lost.append(True)
            return None
        return _parse(*args)

    _lossy_parse.lossy = True
    ui.explorer.parse_commit = _lossy_parse
# A test switches (the toggle below) to a decoder payload cut short, as a broken or tampered
# model would reach the browser: the page must say so and draw the server's digit again.
if not getattr(ui.explorer._weights, "cut", False):
    _weights = ui.explorer._weights

    def _weights_maybe_cut(model):
        payload = _weights(model)
        if not st.session_state.get("harness_cut_weights"):
            return payload
        return {**payload, "b64": payload["b64"][: len(payload["b64"]) // 2], "hash": payload["hash"] + "-cut"}

    _weights_maybe_cut.cut = True
    ui.explorer._weights = _weights_maybe_cut
st.toggle("Cut the decoder's weights short", key="harness_cut_weights")
ckpt = os.environ.get("CVAE_EXPLORER_CKPT") or str(shipped.SHIPPED_CHECKPOINT)
enc = read_encodings(os.environ.get("CVAE_EXPLORER_ENC") or shipped.SHIPPED_ENCODINGS)
enc["source"] = "harness"
st.session_state[BOUNDS_KEY] = latent_bounds(enc["z_mean"])
point_from_url()
set_latent(*current_latent())
st.session_state["_full_runs"] = st.session_state.get("_full_runs", 0) + 1
# A test takes the explorer off the page and puts it back (a real unmount and a new mount).
if st.toggle("Show the explorer", value=True, key="harness_show"):
    explorer_page_ui(ckpt, file_stamp(ckpt), enc, data_dir())

