"""The floor for the explorer's benchmarks: a bare Streamlit page holding only a cached
10,000-point Plotly scatter (the shipped encodings, the same figure the app draws), a slider
and an image. ``streamlit run benchmarks/bare_page.py``.

It shows what Streamlit itself spends to open a page with that chart and to rerun it on a
slider move, so benchmarks/interaction_cost.py and benchmarks/load_test.py can set the app's
figures beside it, measured in the same run on the same machine.
"""

import numpy as np
import streamlit as st

from cvae.core import shipped

from cvae.draw import figures
from cvae.draw.images import pixelate


# Why: the floor must not rebuild the 10k-point figure per rerun (the app caches it too).
@st.cache_resource
def figure():
    enc = shipped.shipped_encodings()
    return figures.latent_scatter(enc["z_mean"], enc["label"])


st.set_page_config(page_title="bare page", layout="wide")
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(figure(), key="scatter")
with right:
    z1 = st.slider("z1", -4.0, 4.0, 0.0, step=0.01, key="z1")
    # A 280 px image that changes with the slider (no model: only Streamlit's own cost).
    img = (np.add.outer(np.arange(28), np.arange(28)) * (z1 + 4.0) * 37 % 256).astype(np.uint8)
    st.image(pixelate(img, 10), width=280, caption=f"z1 = {z1:.2f}", output_format="PNG")
