"""A harness app with only the sidebar's training section (ui.training), for tests/test_training_ui.py.

MNIST from $CVAE_DATA and the runs folder from $CVAE_RUNS, read as app.py reads them. Like the
app's model picker, it shows the model a finished run switched to (session state "_pending_model").
"""

import streamlit as st

from ui.common import part
from ui.models import data_dir, runs_dir
from ui.training import train_form_ui, training_ui

with st.sidebar:
    st.header("Train a new model")
    with part("Training"):
        train_form_ui(data_dir(), runs_dir())
        training_ui(data_dir())
    pending = st.session_state.get("_pending_model")
    if pending:
        st.caption(f"Exploring {pending}")
