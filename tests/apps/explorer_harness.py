"""The explorer alone (no sidebar, no training) for browser tests: ``streamlit run``.

$CVAE_EXPLORER_CKPT / $CVAE_EXPLORER_ENC: a checkpoint and an encodings .npz (default: the
shipped model and its encodings). Prints the committed point, the selection and how many
times each fragment ran, as the app's state a test reads (Streamlit's e2e style).
"""

import os

import streamlit as st

from cvae import assets
from cvae.plots import latent_bounds
from ui.common import file_stamp
import ui.explore
from ui.explore import explorer_page_ui
from ui.latent import BOUNDS_KEY, current_latent, point_from_url, set_latent
from ui.models import data_dir

st.set_page_config(layout="wide")
if "status" not in ui.explore.FRAGMENTS:  # a commit reruns the status line too
    ui.explore.FRAGMENTS.append("status")
ckpt = os.environ.get("CVAE_EXPLORER_CKPT") or str(assets.SHIPPED_CHECKPOINT)
enc = assets.read_encodings(os.environ.get("CVAE_EXPLORER_ENC") or assets.SHIPPED_ENCODINGS)
enc["source"] = "harness"
st.session_state[BOUNDS_KEY] = latent_bounds(enc["z_mean"])
point_from_url()
set_latent(*current_latent())
st.session_state["_full_runs"] = st.session_state.get("_full_runs", 0) + 1
explorer_page_ui(ckpt, file_stamp(ckpt), enc, data_dir())


@st.fragment(key="status")
def status() -> None:
    z1, z2 = current_latent()
    st.text(f"full_runs={st.session_state['_full_runs']} z1={z1:.4f} z2={z2:.4f} "
            f"selected={st.session_state.get('selected_index')}")


status()
