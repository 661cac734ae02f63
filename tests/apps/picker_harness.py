"""A harness app with only the model picker (ui.models.model_picker_ui), for tests/test_model_link.py:
the runs folder from $CVAE_RUNS, the picked path shown as a caption."""

import streamlit as st

from ui.models import model_picker_ui

path = model_picker_ui()
st.caption(f"picked: {path}")
