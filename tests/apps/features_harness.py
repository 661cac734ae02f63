"""A harness app that renders the feature panels over a latent scatter, for the feature tests.

Environment: CVAE_FEAT_CKPT (checkpoint, default the shipped one), CVAE_FEAT_ENC (encodings
.npz, default the shipped one), CVAE_FEAT_DATA (an MNIST folder: test digits' images, and the
first CVAE_FEAT_TEST_N of them as the test set the loss panel compares with; default none). It keeps the current point in st.session_state["z1"/"z2"]
like the app and prints one line the tests read: ``feat: z=(z1, z2) traces=[names]``.
"""

import os

import streamlit as st

import cvae
from cvae.core.encodings import read_encodings
from cvae.core.shipped import SHIPPED_CHECKPOINT, SHIPPED_ENCODINGS
from cvae.draw.figures import latent_scatter
from ui.features import feature_traces, features_ui


@st.cache_resource  # why: load the checkpoint once per server, not per rerun
def _model(path):
    return cvae.load_checkpoint(path)


@st.cache_data  # why: the encodings are read from disk once
def _encodings(path):
    return read_encodings(path)


def set_latent(z1, z2):
    st.session_state["z1"], st.session_state["z2"] = float(z1), float(z2)


model = _model(os.environ.get("CVAE_FEAT_CKPT") or SHIPPED_CHECKPOINT)
enc = _encodings(os.environ.get("CVAE_FEAT_ENC") or SHIPPED_ENCODINGS)
st.session_state.setdefault("z1", 0.0)
st.session_state.setdefault("z2", 0.0)
current = (st.session_state["z1"], st.session_state["z2"])
selected = st.session_state.get("selected_index")
traces = feature_traces(model, enc, current, selected)
st.plotly_chart(latent_scatter(enc["z_mean"], enc["label"], extra_traces=traces, height=420),
                key="scatter")
st.text(f"feat: z=({current[0]:.4f}, {current[1]:.4f}) traces={[t.name for t in traces]}")
data = os.environ.get("CVAE_FEAT_DATA")
test_n = int(os.environ.get("CVAE_FEAT_TEST_N") or 10000)


def test_image(i):
    return cvae.load_mnist("test", data, download=False)[0][i, 0].numpy()


def test_set():
    return cvae.load_mnist("test", data, download=False)[0][:test_n].numpy()


features_ui(model, enc, current, set_latent, test_image if data else None, selected,
            test_set=test_set if data else None)
