"""The latent pad: a 2-D pad whose drag morphs the decoded digit in the browser.

``latent_pad_ui`` mounts an ``st.components.v2`` component (``ui/pad.js``, no build
step) that runs the decoder in JavaScript. Python sends the decoder's weights
(``cvae.webexport.decoder_payload``) and the encodings map once per session; later
reruns send only their hashes. The browser asks again ("need") if it lacks them,
e.g. after the component was remounted in a fresh page.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import streamlit as st

from cvae.webexport import decoder_payload, points_payload

_HERE = Path(__file__).resolve().parent
COMPONENT_NAME = "cvae_latent_pad"

# Why: the payload (base64 of ~65k floats plus a SHA-256) costs a few ms, and a
# rerun happens on every widget change. Keyed weakly by the model object itself
# (so a freed model can never be mistaken for a new one at the same address),
# and revalidated by the parameters' in-place version counters, so a model
# trained in place gets a fresh payload.
_PAYLOADS: "weakref.WeakKeyDictionary[object, tuple[tuple, dict]]" = weakref.WeakKeyDictionary()


@cache
def _component():
    """Register the component once per process (not at import time)."""
    return st.components.v2.component(
        COMPONENT_NAME,
        js=(_HERE / "pad.js").read_text(encoding="utf-8"),
        css=(_HERE / "pad.css").read_text(encoding="utf-8"),
    )


def _weights_payload(model) -> dict:
    params = list(model.decoder.parameters())
    stamp = tuple((p.data_ptr(), p._version) for p in params)
    hit = _PAYLOADS.get(model)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    payload = decoder_payload(model)
    _PAYLOADS[model] = (stamp, payload)
    return payload


# Why: the encodings (10k points) change only with the model; hashing the arrays
# on each rerun is cheaper than re-quantising and base64-encoding them.
@st.cache_data(show_spinner=False, max_entries=8)
def _map_payload(z: np.ndarray, labels: np.ndarray | None, z1_range: tuple, z2_range: tuple) -> dict:
    return points_payload(z, labels, z1_range, z2_range)


def _clean_range(name: str, r: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in r)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with low < high, got {r!r}")
    return lo, hi


def parse_release(value, z1_range, z2_range) -> tuple[float, float] | None:
    """A released point from the browser as (z1, z2) clipped to the ranges, or None if invalid."""
    if not isinstance(value, dict):
        return None
    try:
        z1, z2 = float(value["z1"]), float(value["z2"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(z1) and math.isfinite(z2)):
        return None
    return (min(max(z1, z1_range[0]), z1_range[1]), min(max(z2, z2_range[0]), z2_range[1]))


def latent_pad_ui(model, z: Sequence[float], *, z1_range: Sequence[float], z2_range: Sequence[float],
                  encodings: np.ndarray | None = None, labels: np.ndarray | None = None,
                  on_release: Callable[[float, float], None] | None = None,
                  key: str = "latent_pad", size: int = 220) -> tuple[float, float] | None:
    """Show the latent pad with its handle at ``z``; return the point released in this run, else None.

    ``encodings`` (N, 2) and ``labels`` (N,) draw the faint map (optional).
    ``on_release(z1, z2)`` runs as a widget callback, before the script reruns, so
    it may set other widgets' session-state keys (the sliders). Models whose
    latent space is not 2-D get a note instead of a pad.
    """
    if model.latent_dim != 2:
        st.caption("The latent pad needs a model with a 2-D latent space.")
        return None
    r1, r2 = _clean_range("z1_range", z1_range), _clean_range("z2_range", z2_range)
    sent_key = f"_{key}_sent"  # hashes of assets this session's browser already holds
    sent: set = st.session_state.setdefault(sent_key, set())

    def on_need() -> None:
        need = (st.session_state.get(key) or {}).get("need")
        if isinstance(need, dict):
            sent.difference_update(v for v in need.values() if isinstance(v, str))

    def on_release_cb() -> None:
        point = parse_release((st.session_state.get(key) or {}).get("release"), r1, r2)
        if point is not None and on_release is not None:
            on_release(*point)

    def ref(payload: dict) -> dict:
        out = {"hash": payload["hash"]}
        if payload["hash"] not in sent:
            out["payload"] = payload
            sent.add(payload["hash"])
        return out

    data = {
        "z": [min(max(float(z[0]), r1[0]), r1[1]), min(max(float(z[1]), r2[0]), r2[1])],
        "z1_range": list(r1),
        "z2_range": list(r2),
        "size": int(size),
        "weights": ref(_weights_payload(model)),
        "points": None,
    }
    if encodings is not None:
        enc = np.asarray(encodings, dtype=np.float32)
        lab = None if labels is None else np.asarray(labels)
        data["points"] = ref(_map_payload(enc, lab, r1, r2))
    result = _component()(key=key, data=data, width="stretch", height="content",
                          on_release_change=on_release_cb, on_need_change=on_need)
    return parse_release(result.release, r1, r2)
