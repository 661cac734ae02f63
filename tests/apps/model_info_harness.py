"""A harness app with the model's checks and summary (ui.models.usable_model_ui, model_info_ui,
latent_spread_ui), for tests/test_model_info.py: the path from session state "path", the
encodings' z_mean from session state "z_mean" (optional)."""

import streamlit as st

from ui.models import latent_spread_ui, model_info_ui, usable_model_ui

path, stamp = usable_model_ui(st.session_state["path"])
st.caption(f"exploring: {path}")
if path is not None:
    model_info_ui(path, stamp)
if "z_mean" in st.session_state:
    latent_spread_ui({"z_mean": st.session_state["z_mean"]})
