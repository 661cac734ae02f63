"""A harness app that renders only the latent pad, for the browser tests and the benchmark.

Environment: CVAE_PAD_CKPT (checkpoint path, required), CVAE_PAD_ENC (optional .npz with
z_mean and label, drawn as the map). The page shows one line the tests read:
``runs=N z=(z1, z2) released=...``; ``runs`` counts script runs, so a test can tell
whether a rerun happened.
"""

import os

import streamlit as st

import cvae
from ui.pad import latent_pad_ui

Z1_RANGE, Z2_RANGE = (-4.0, 4.0), (-4.0, 4.0)


@st.cache_resource  # why: load the checkpoint once per server, not per rerun
def _model(path):
    return cvae.load_checkpoint(path)


@st.cache_data  # why: the map's arrays are read from disk once
def _encodings(path):
    from cvae.assets import read_encodings
    enc = read_encodings(path)
    return enc["z_mean"], enc["label"]


def _set(z1, z2):
    st.session_state.z = (z1, z2)


st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.session_state.setdefault("z", (0.0, 0.0))
model = _model(os.environ["CVAE_PAD_CKPT"])
enc, lab = _encodings(os.environ["CVAE_PAD_ENC"]) if os.environ.get("CVAE_PAD_ENC") else (None, None)
released = latent_pad_ui(model, st.session_state.z, z1_range=Z1_RANGE, z2_range=Z2_RANGE,
                         encodings=enc, labels=lab, on_release=_set)
if st.button("move to (1, -1)"):  # stands in for a slider / scatter click in the app
    _set(1.0, -1.0)
    st.rerun()
z = st.session_state.z
st.text(f"runs={st.session_state.runs} z=({z[0]:.4f}, {z[1]:.4f}) released={released}")
