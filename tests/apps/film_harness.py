"""A harness app that shows only the training film's UI, for the film tests.

Environment: CVAE_FILM_CKPT (checkpoint, default the shipped one). With CVAE_FILM_LIVE=N it
instead draws the live view of the checkpoint's first N snapshots (as a run in progress would).
"""

import os

import streamlit as st

import cvae
from cvae.core.shipped import SHIPPED_CHECKPOINT
from ui.film import film_replay_ui, live_film_ui


@st.cache_resource  # why: load the checkpoint once per server, not per rerun
def _model(path):
    return cvae.load_checkpoint(path)


model = _model(os.environ.get("CVAE_FILM_CKPT") or SHIPPED_CHECKPOINT)
live = os.environ.get("CVAE_FILM_LIVE")
if live:
    film = model.meta["film"]
    live_film_ui([film.snapshot(i) for i in range(min(int(live), len(film)))])
else:
    film_replay_ui(model)
