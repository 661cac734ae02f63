"""The current latent point: session-state keys "z1"/"z2", the page URL, the selected digit.

``set_latent(z1, z2)`` is the one way to move the point (clamped to the explorer's
bounds); the browser's commits, a click on a test digit, "Explore from here" and a link
all go through it. The committed point is mirrored in the URL (``?z1=..&z2=..``) by the
browser (cvae/web/explorer.js), so a link opens the explorer there: :func:`point_from_url` reads
it once per session; bad values in a URL are ignored or clamped.
"""

from __future__ import annotations

import math

import streamlit as st

DEFAULT_BOUNDS = (-4.0, 4.0, -4.0, 4.0)
BOUNDS_KEY = "_latent_bounds"


def _finite_or(value, default: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def bounds() -> tuple[float, float, float, float]:
    return st.session_state.get(BOUNDS_KEY, DEFAULT_BOUNDS)


def set_latent(z1: float, z2: float) -> tuple[float, float]:
    """Move the current latent point, clamped to the bounds; sets keys "z1" and "z2".
    NaN, inf or junk (session state, a URL) goes to the middle."""
    lo1, hi1, lo2, hi2 = bounds()
    z1 = min(max(_finite_or(z1, (lo1 + hi1) / 2), lo1), hi1)
    z2 = min(max(_finite_or(z2, (lo2 + hi2) / 2), lo2), hi2)
    st.session_state["z1"] = z1
    st.session_state["z2"] = z2
    return z1, z2


def current_latent() -> tuple[float, float]:
    return _finite_or(st.session_state.get("z1"), 0.0), _finite_or(st.session_state.get("z2"), 0.0)


def point_from_url() -> None:
    """Once per session: start at the point in the URL, if it names one (junk is ignored)."""
    if st.session_state.get("_url_read"):
        return
    st.session_state["_url_read"] = True
    z1, z2 = st.query_params.get("z1"), st.query_params.get("z2")
    if z1 is None and z2 is None:
        return
    here = current_latent()
    set_latent(_finite_or(z1, here[0]), _finite_or(z2, here[1]))


def apply_selection(z_mean) -> None:
    """When "selected_index" changed (a click, or code setting it), jump to that digit."""
    idx = st.session_state.get("selected_index")
    if idx is None or idx == st.session_state.get("_applied_selection"):
        return
    st.session_state["_applied_selection"] = idx
    if not 0 <= int(idx) < len(z_mean):
        st.session_state["selected_index"] = None
        st.warning(f"There is no test digit #{idx}; the test set has {len(z_mean)}.")
        return
    z = z_mean[int(idx)]
    set_latent(float(z[0]), float(z[1]))
