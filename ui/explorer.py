"""The latent explorer's browser side: the live decoder canvas, the z1/z2 sliders, the pad,
and the hooks that make the scatter a 2-D slider and move the manifold's ring.

One ``st.components.v2`` component. Its inline JavaScript is only a small loader
(``ui/explorer_boot.js``); the explorer's code (one bundle of the modules in ``cvae/web``,
which the static site shares, with this page's host adapter ``ui/explorer_host.js``), its
styles, the decoder's weights and the encodings are content-addressed assets: each rerun
sends their hashes. The browser keeps the payloads in IndexedDB across reloads and names them in a
cookie; a new session gets up front what the browser lacks, and anything still missing is
asked for ("need"). The browser decodes while anything moves; Python hears only commits
("commit": a release, a key-up, a click; numbered, and the number echoed back) and the
caller's ``on_commit`` decides what reruns. A commit also says whether the browser decodes
(and "failed" says when it stopped): until it does, the caller draws the server's digit
(:func:`browser_decodes`).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import streamlit as st

from cvae.core.payloads import decoder_payload, digest, points_payload
from cvae.draw.palette import DIGIT_COLORS
from cvae.web import DIGIT_PX, HINT, PAD_PX, WEB_DIR, bundle

_HERE = Path(__file__).resolve().parent
COMPONENT = "cvae_explorer"
OVERLAY_COMPONENT = "cvae_overlays"
FALLBACK_KEY = "cvae_fallback"  # explorer.js hides this container while it decodes
# Test and benchmark hooks on the page's globalThis, only when asked for.
HOOKS_ENV = "CVAE_TEST_HOOKS"

# Why: the weights payload (base64 of ~65k floats and a SHA-256) costs a few ms and every
# commit reruns this code. Keyed weakly by the model object (a freed model is never taken
# for a new one at the same address) and revalidated by the parameters' version counters,
# so a model changed in place gets a fresh payload.
_WEIGHTS: "weakref.WeakKeyDictionary[object, tuple[tuple, dict]]" = weakref.WeakKeyDictionary()


def _text_asset(name: str, text: str) -> dict:
    return {"text": text, "hash": digest({"file": name}, text.encode())}


# Why: the bundle and the styles are read from disk and hashed once per process; every rerun
# sends their hashes.
@cache
def _code_assets(hooks: bool) -> tuple[dict, dict]:
    entries = [_HERE / "explorer_host.js"] + ([WEB_DIR / "hooks.js"] if hooks else [])
    return (_text_asset("explorer", bundle(entries)),
            _text_asset("explorer.css", (WEB_DIR / "explorer.css").read_text(encoding="utf-8")))


def _compact(js: str) -> str:
    """The loader travels with every rerun: without its comment lines and indentation."""
    return "\n".join(ln.strip() for ln in js.splitlines() if ln.strip() and not ln.strip().startswith("//"))


@cache
def _components():
    """Register the two components once per process (not at import time)."""
    boot = _compact((_HERE / "explorer_boot.js").read_text(encoding="utf-8"))
    # The feature layers reach the explorer through the page: kept on <html> (the explorer may
    # load later) and announced with an event (it may be there already).
    feed = ("export default function ({ data }) {"
            " document.documentElement.dataset.cvaeOverlays = JSON.stringify(data);"
            " document.dispatchEvent(new CustomEvent('cvae:overlays', { detail: data })); }")
    return (st.components.v2.component(COMPONENT, js=boot),
            st.components.v2.component(OVERLAY_COMPONENT, js=feed))


def _weights(model) -> dict:
    params = list(model.decoder.parameters())
    stamp = tuple((p.data_ptr(), p._version) for p in params)
    hit = _WEIGHTS.get(model)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    payload = decoder_payload(model)
    _WEIGHTS[model] = (stamp, payload)
    return payload


# Why: the points payload (10k points quantised and base64-encoded, a few ms) is asked for on
# every commit. A fragment's rerun gets the same encodings object as the run before it, so the
# payload is kept by that object (its z_mean array, by identity, checked through a weak
# reference: a freed array is never taken for a new one at the same address) and the bounds,
# with no hashing of the arrays (which cost ~1 ms a commit).
_POINTS: dict[int, tuple[weakref.ref, tuple, dict]] = {}
_POINTS_LOCK = threading.Lock()  # every session's script thread reads and prunes it


def _points(enc: dict, bounds: tuple) -> dict:
    z = enc["z_mean"]
    hit = _POINTS.get(id(z))
    if hit is not None and hit[0]() is z and hit[1] == bounds:
        return hit[2]
    payload = points_payload(np.asarray(z, np.float32), np.asarray(enc["label"]), bounds[:2], bounds[2:])
    try:
        ref = weakref.ref(z)
    except TypeError:  # not an object a weak reference can follow (a list): not kept
        return payload
    with _POINTS_LOCK:
        for k in [k for k, v in _POINTS.items() if v[0]() is None]:  # arrays freed since
            del _POINTS[k]
        _POINTS[id(z)] = (ref, bounds, payload)
    return payload


def parse_commit(value, bounds: Sequence[float], n_points: int) -> tuple[float, float, int | None] | None:
    """A commit from the browser as (z1, z2, selected index or None), clamped to the bounds;
    None when it is not a commit (junk, NaN, missing keys). An index outside the test set
    is dropped, the point kept."""
    if not isinstance(value, dict):
        return None
    try:
        z1, z2 = float(value["z1"]), float(value["z2"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(z1) and math.isfinite(z2)):
        return None
    lo1, hi1, lo2, hi2 = bounds
    sel = value.get("select")
    sel = sel if isinstance(sel, int) and not isinstance(sel, bool) and 0 <= sel < n_points else None
    return min(max(z1, lo1), hi1), min(max(z2, lo2), hi2), sel


def overlay_layers(traces: Sequence) -> list[dict]:
    """Plotly scatter traces (the feature layers of cvae.draw.overlays) as plain shapes for the
    browser's overlay: points, mode, colour, width, dash, marker size and symbol."""
    out = []
    for t in traces:
        x = [float(v) for v in (t.x if t.x is not None else ())]
        y = [float(v) for v in (t.y if t.y is not None else ())]
        if not x or len(x) != len(y):
            continue
        marker, line = t.marker, t.line
        color = (marker.color if isinstance(marker.color, str) else None) or line.color
        out.append({
            "name": t.name or "", "x": x, "y": y, "mode": t.mode or "lines",
            "color": color, "width": line.width, "dash": line.dash,
            "size": marker.size if isinstance(marker.size, (int, float)) else None,
            "symbol": (marker.symbol or "").split("-")[0] or None,
            "line": marker.line.color if marker.line is not None else None,
            "opacity": t.opacity, "fill": t.fill in ("toself",),
        })
    return out


def overlays_ui(traces: Sequence, key: str = "cvae_overlays") -> None:
    """Send the feature layers to the explorer's scatter overlay (a few hundred bytes)."""
    _components()[1](key=key, data={"layers": overlay_layers(traces)}, height=0)


def browser_decodes(key: str = "explorer") -> bool:
    """Whether the browser of this session said it decodes (with its last commit, and has not
    reported a failure since): then the server's fallback digit is not needed."""
    return st.session_state.get(f"_{key}_decodes") is True


def explorer_ui(model, enc: dict, z: Sequence[float], bounds: Sequence[float], *,
                on_commit: Callable[[float, float, int | None], None], selected: int | None = None,
                manifold: dict | None = None, step: float = 0.01, key: str = "explorer",
                scatter_key: str = "scatter", manifold_key: str = "manifold", compare=None,
                compare_scatter_key: str = "scatter2") -> None:
    """The live decoder canvas with its sliders and pad, hooked to the scatter and the manifold
    (the ``st.plotly_chart`` elements keyed ``scatter_key`` and ``manifold_key``).

    ``on_commit(z1, z2, selected)`` runs as the widget callback of a commit (clamped to
    ``bounds``: z1 lo, z1 hi, z2 lo, z2 hi); it may set session state and ``st.rerun`` named
    fragments. ``manifold`` is :func:`cvae.core.latent.manifold_map` of the manifold shown, or None.
    ``compare`` is a second model (:class:`ui.compare.Second`: model, enc, bounds, name, name_a)
    or None: its weights and encodings go to the browser as this model's do, and the browser
    hooks its scatter (the ``st.plotly_chart`` keyed ``compare_scatter_key``).
    """
    bounds = tuple(float(v) for v in bounds)
    state_key = f"_{key}_send"  # hashes the browser asked for: sent with the next run, once
    seq_key = f"_{key}_seq"  # the last commit applied (its number, from the browser)
    decodes_key = f"_{key}_decodes"  # read by browser_decodes()
    session = st.session_state.setdefault(f"_{key}_session", os.urandom(4).hex())
    if state_key not in st.session_state:
        # A new session: send up front what the browser does not say it holds (its cookie,
        # set by the loader), so a first visit needs no round trip and a reload no payload.
        held = set(str(st.context.cookies.get("cvae_assets") or "").split("."))
        st.session_state[state_key] = {"first": held}
    to_send: set = st.session_state[state_key].setdefault("hashes", set())
    weights = _weights(model)
    points = _points(enc, bounds)
    hooks = os.environ.get(HOOKS_ENV) == "1"
    code, style = _code_assets(hooks)
    assets = {"code": code, "style": style, "weights": weights, "points": points}
    if compare is not None:
        assets["weights2"] = _weights(compare.model)
        assets["points2"] = _points(compare.enc, tuple(float(v) for v in compare.bounds))

    def on_need() -> None:
        need = (st.session_state.get(key) or {}).get("need")
        if isinstance(need, dict):
            known = {a["hash"] for a in assets.values()}
            to_send.update(h for h in need.values() if isinstance(h, str) and h in known)

    def on_failed() -> None:
        st.session_state[decodes_key] = False

    def on_commit_cb() -> None:
        value = (st.session_state.get(key) or {}).get("commit")
        if isinstance(value, dict) and isinstance(value.get("decodes"), bool):
            st.session_state[decodes_key] = value["decodes"]
        c = parse_commit(value, bounds, len(enc["z_mean"]))
        seq = value.get("seq") if isinstance(value, dict) else None
        if c is None or (isinstance(seq, int) and seq <= st.session_state.get(seq_key, 0)):
            return  # not a commit, or sent again after it was applied
        if isinstance(seq, int):
            st.session_state[seq_key] = seq  # echoed to the browser: it stops resending
        on_commit(*c)

    held = st.session_state[state_key].pop("first", None)
    if held is not None:
        to_send.update(a["hash"] for a in assets.values() if a["hash"] not in held)
    refs = {}
    for name, a in assets.items():
        refs[name] = {"hash": a["hash"]}
        if a["hash"] in to_send:
            refs[name]["payload"] = {k: v for k, v in a.items() if k != "hash"} if "text" in a else a
            to_send.discard(a["hash"])
    lo1, hi1, lo2, hi2 = bounds
    data = {
        "assets": refs,
        "z": [min(max(float(z[0]), lo1), hi1), min(max(float(z[1]), lo2), hi2)],
        "bounds": list(bounds),
        "step": step,
        "selected": selected,
        "seq": st.session_state.get(seq_key, 0),
        "decodes": st.session_state.get(decodes_key) is True,  # so a new explorer knows to say "failed"
        "session": session,
        "n_points": int(len(enc["z_mean"])),  # all in the points payload: the scatter's indices come from it
        "palette": list(DIGIT_COLORS),
        "digit_px": DIGIT_PX,
        "pad_px": PAD_PX,
        "manifold": manifold,
        "scatter_selector": f".st-key-{scatter_key} .js-plotly-plot",
        "manifold_selector": f".st-key-{manifold_key} .js-plotly-plot",
        "hint": HINT,
        "hooks": hooks,
        "model_name": compare.name_a if compare is not None else None,
        "compare": None if compare is None else {"name": compare.name,
                                                 "scatter_selector": f".st-key-{compare_scatter_key} .js-plotly-plot"},
    }
    _components()[0](key=key, data=data, width="stretch", height="content",
                     on_commit_change=on_commit_cb, on_need_change=on_need, on_failed_change=on_failed)
