"""The explorer's sections: the scatter, the decoder column, the selection, the manifold, the
feature panels.

What the browser does and what Python does:
- The scatter (``st.plotly_chart``, keyed "scatter") and the manifold (keyed "manifold", in a
  tab beside it, drawn only while that tab is open) are drawn in the full run only: a latent
  move never re-sends them. The browser draws the current point, the hover preview and the
  feature layers over them (cvae/web/views.js).
- The decoder column is the fragment "decoder": the live canvas, sliders and pad
  (ui/explorer.py), the server-rendered fallback digit (until the browser says it decodes)
  and the selected digit.
- The feature panels are the fragment "panels"; they and the decoder column send the
  scatter's feature layers.
- A commit from the browser reruns the decoder column, and the panels only when they show
  something that depends on the point (:func:`ui.features.panels_follow_point`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import cvae
from cvae.core import geometry
from cvae.core import latent as cvae_latent
from cvae.core.data import has_mnist, load_mnist
from cvae.draw import figures
from cvae.draw.overlays import density_traces, prior_traces, stretch_trace
from cvae.draw.images import pixelate, png_bytes
from cvae.web import DIGIT_PX, SLIDER_STEP
from ui import features
from ui.common import part
from ui.compare import SCATTER2_KEY, Second, compare_ui
from ui.film import film_replay_ui
from ui.explorer import FALLBACK_KEY, browser_decodes, explorer_ui, overlays_ui
from ui.latent import apply_selection, bounds, current_latent, set_latent
from ui.models import load_model, manifold_image, test_digit

FRAGMENTS = ["decoder"]  # what every commit reruns
PANELS = "panels"  # rerun too when they show something that depends on the point


# The plane's layers under the scatter, each with its switch (off by default); the URL keeps
# the ones switched on (?layers=stretch,prior,density) so a link shows the same view.
LAYERS = {"stretch": "Decoder stretch", "prior": "Prior N(0, I)", "density": "Test digits' density"}
LAYERS_PARAM = "layers"
LAYER_HELP = {
    "stretch": "Shade the plane by how much the decoder stretches it: sqrt(det(JᵀJ)), J = ∂decoder/∂z "
               "(dark: a small step changes the digit a lot, as at the borders between classes)",
    "prior": "The prior N(0, I)'s 1σ, 2σ and 3σ circles (39%, 86% and 99% of its mass)",
    "density": "Contours of the encoded test digits' density holding 50%, 90% and 99% of them",
}


def layer_key(name: str) -> str:
    return f"layer_{name}"


# Why: the magnification map is 1,600 exact Jacobians (seconds, on every core) and depends only on
# the model and the plane's range: once per model for every session.
@st.cache_resource(show_spinner="Measuring how the decoder stretches the plane (once for this model)…",
                   max_entries=8)
def stretch_map(path: str, stamp: tuple, z1_range: tuple, z2_range: tuple):
    return geometry.magnification(load_model(path, stamp), z1_range, z2_range)


# Why: the density's table and levels (~0.3 s) are read on every commit (is the point where
# almost no test digit is encoded?); they depend only on the model's encodings.
@st.cache_resource(show_spinner=False, max_entries=8)
def encoded_density(path: str, stamp: tuple, _enc: dict) -> geometry.Density | None:
    """None where there are no encodings to speak of (a model opened without MNIST here)."""
    z = _enc["z_mean"]
    return geometry.encoded_density(z) if len(z) >= 2 else None


def layers_from_url() -> None:
    """Once per session: switch on the layers the URL names (unknown names are ignored)."""
    if st.session_state.get("_layers_read"):
        return
    st.session_state["_layers_read"] = True
    raw = st.query_params.get(LAYERS_PARAM)
    if raw is None:
        return
    names = {n.strip() for n in raw.split(",")}
    for name in LAYERS:
        st.session_state[layer_key(name)] = name in names


def layers_ui() -> tuple[str, ...]:
    """The layers' switches; returns the names switched on and writes them into the URL."""
    layers_from_url()
    cols = st.columns(len(LAYERS))
    on = tuple(name for col, (name, label) in zip(cols, LAYERS.items())
               if col.toggle(label, key=layer_key(name), help=LAYER_HELP[name]))
    want = ",".join(on)
    if (st.query_params.get(LAYERS_PARAM) or "") != want:
        if want:
            st.query_params[LAYERS_PARAM] = want
        else:
            del st.query_params[LAYERS_PARAM]
    return on


def under_traces(path: str, stamp: tuple, enc: dict, layers: tuple[str, ...]) -> list:
    """The Plotly traces of the layers switched on, over the explorer's bounds (which follow
    from the model's encodings, as the figure's cache key does)."""
    z1r, z2r = tuple(bounds()[:2]), tuple(bounds()[2:])
    out: list = []
    if "stretch" in layers:
        out.append(stretch_trace(*stretch_map(path, stamp, z1r, z2r)))
    if "prior" in layers:
        out += prior_traces()
    density = encoded_density(path, stamp, enc) if "density" in layers else None
    if density is not None:
        out += density_traces(density, *geometry.grid_axes(z1r, z2r, 100))
    return out


# Why: building ten Scattergl traces of 10,000 points (plotly's validation) costs ~170 ms;
# the figure depends only on the model's encodings and the layers switched on, so it is built
# once per model and set of layers.
@st.cache_resource(show_spinner=False, max_entries=16)
def scatter_figure(path: str, stamp: tuple, _enc: dict, layers: tuple[str, ...] = ()):
    fig = figures.latent_scatter(_enc["z_mean"], _enc["label"],
                                 extra_traces=under_traces(path, stamp, _enc, layers) if layers else None)
    # No per-point indices on the wire (27 KB of 167): the browser takes them from the
    # encodings it already holds (cvae/web/plotly_hook.js testIndex); the hover shows digit and z.
    for t in fig.data:
        if t.type != "scattergl":
            continue
        t.customdata = None
        t.hovertemplate = f"digit {t.name}<br>z1=%{{x:.2f}}<br>z2=%{{y:.2f}}<extra></extra>"
    # The browser's drag moves the point (zoom and pan stay in the modebar and the wheel);
    # hover labels only right on a point, so a click selects the digit under the cursor.
    fig.update_layout(dragmode=False, clickmode="event", hoverdistance=6)
    # The legend as one row above the plot: on a phone a column beside it took half the width.
    fig.update_layout(legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", title_text="digit"),
                      margin=dict(t=40))
    return fig


def scatter_ui(path: str, stamp: tuple, enc: dict) -> None:
    chart = st.container()
    layers = layers_ui()
    with chart:
        st.plotly_chart(scatter_figure(path, stamp, enc, layers), key="scatter",
                        config={"displaylogo": False, "scrollZoom": True})
    st.caption(f"z_mean of {len(enc['z_mean']):,} test digits ({enc['source']}). Hover to preview the digit "
               "anywhere on the plane; drag to move the point; click a digit to select it. The legend "
               "toggles digits (double-click: only that one); zoom with the wheel or the modebar.")
    if "stretch" in layers:
        st.caption("Shaded: how much the decoder stretches the plane, sqrt(det(JᵀJ)) with J = ∂decoder/∂z (the "
                   "area, in pixel space, of the digits decoded from a unit square of the plane). Dark bands are "
                   "where a small step changes the digit a lot: the borders between classes, where a morph jumps; "
                   "pale areas decode to nearly the same digit.")
    if "prior" in layers:
        st.caption("Grey circles: the prior N(0, I) at 1σ, 2σ and 3σ (39%, 86% and 99% of its mass), where the "
                   "KL term pulls every encoding.")
    if "density" in layers:
        st.caption("Brown contours: where the test digits are encoded, holding 99%, 90% and 50% of them (a "
                   "Gaussian kernel density of their z_mean).")


def second_scatter_ui(second: Second) -> None:
    """The second model's scatter: the same test digits where it encodes them, under the same cursor."""
    st.markdown(f"**B: {second.name}**")
    st.plotly_chart(scatter_figure(second.path, second.stamp, second.enc), key=SCATTER2_KEY,
                    config={"displaylogo": False, "scrollZoom": True})
    st.caption("The same test digits where the second model encodes them. The point is the same z in both "
               "planes, and each decoder shows what it makes of it (B's digit beside A's in the decoder column); "
               "hover and drag here too. A clicked test digit is ringed in blue where each model puts it.")


def sparse_point_ui(path: str, stamp: tuple, enc: dict, z: tuple[float, float]) -> None:
    """In the decoder column: say so when the point lies where almost no test digit is encoded."""
    density = encoded_density(path, stamp, enc)
    if density is not None and density.sparse(z):
        st.caption(f":material/explore_off: Almost no test digit is encoded near z = ({z[0]:.2f}, {z[1]:.2f}): "
                   f"the density of encodings here is below that of {100 - geometry.SPARSE_PERCENTILE:g}% of the "
                   "test digits, so the decoder is showing what it makes of a point it was hardly trained on.",
                   help="A Gaussian kernel density of the test digits' z_mean, against the 1st percentile "
                        "of its values at the test digits themselves")


def commit(z1: float, z2: float, selected: int | None) -> None:
    """The browser committed a point (widget callback): move there, maybe select a digit, and
    rerun only the decoder column, and the panels if they show something that moved."""
    set_latent(z1, z2)
    changed = selected is not None and selected != st.session_state.get("selected_index")
    if selected is not None:
        st.session_state["selected_index"] = selected
        st.session_state["_applied_selection"] = selected
    scope = [*FRAGMENTS, PANELS] if features.panels_follow_point(changed) else list(FRAGMENTS)
    if scope != ["decoder"]:  # else the trigger's own rerun (its fragment) is all it takes
        st.rerun(scope)


def explore_from_here(z1: float, z2: float) -> None:
    """The feature panels' "Explore from here" (a widget callback)."""
    set_latent(z1, z2)
    st.rerun([*FRAGMENTS, PANELS])


def clear_selection() -> None:
    st.session_state["selected_index"] = None
    st.session_state["_applied_selection"] = None
    st.rerun([*FRAGMENTS, PANELS])


# Why: every new tab's first run draws this digit (the browser has not yet said it decodes),
# and a class opening the page at once is at the same point: decoded and encoded once.
@st.cache_data(show_spinner=False, max_entries=64)
def fallback_png(path: str, stamp: tuple, z1: float, z2: float) -> bytes:
    return png_bytes(cvae.decode_point(load_model(path, stamp), z1, z2), scale=DIGIT_PX // 28)


def fallback_digit_ui(path: str, stamp: tuple, z: tuple[float, float]) -> None:
    """The digit rendered on the server: shown only where the browser cannot decode (the
    browser hides it while its decoder works, and once the browser has said so in a commit it
    is not drawn at all), and what AppTest sees."""
    with st.container(key=FALLBACK_KEY):
        with part("The decoder"):
            st.image(fallback_png(path, stamp, float(z[0]), float(z[1])), width=DIGIT_PX,
                     caption=f"decoded at z = ({z[0]:.3f}, {z[1]:.3f}) on the server")


def selection_ui(model, enc: dict, data: str) -> None:
    idx = st.session_state.get("selected_index")
    if idx is None:
        return
    idx = int(idx)
    label = int(enc["label"][idx])
    z = enc["z_mean"][idx]
    st.markdown(f"**Selected: test digit #{idx}, a {label}**")
    c1, c2 = st.columns(2)
    with c1:
        with part("The original"):
            if has_mnist(data):
                original, _ = test_digit(data, idx)
                st.image(pixelate(original, 5), width=140, output_format="PNG",
                         caption=f"original #{idx} (label {label})")
            else:
                st.info("The original needs the MNIST test set, which is not on this machine. "
                        f"Put the four MNIST files in {Path(data) / 'MNIST' / 'raw'} (or point CVAE_DATA at "
                        "a folder holding MNIST/raw/); `python -m cvae evaluate assets/cvae_mnist.pt` "
                        "downloads them when online.")
    with c2:
        with part("The reconstruction"):
            recon = cvae.decode_point(model, float(z[0]), float(z[1]))
            st.image(pixelate(recon, 5), width=140, output_format="PNG",
                     caption=f"reconstruction at z_mean = ({z[0]:.2f}, {z[1]:.2f})")
    st.button("Clear selection", key="clear_selection", on_click=clear_selection)


@st.fragment(key="decoder")
def decoder_fragment(path: str, stamp: tuple, enc: dict, data: str, manifold: dict | None,
                     second: Second | None = None) -> None:
    """The decoder column: reruns on every commit (a few ms, a few KB; a second model's assets
    travel by their hashes, as the first's)."""
    apply_selection(enc["z_mean"])
    model = load_model(path, stamp)
    z = current_latent()
    explorer_ui(model, enc, z, bounds(), on_commit=commit, selected=st.session_state.get("selected_index"),
                manifold=manifold, step=SLIDER_STEP, compare=second, compare_scatter_key=SCATTER2_KEY)
    if not browser_decodes():  # the browser shows this digit itself, at display rate
        fallback_digit_ui(path, stamp, z)
    sparse_point_ui(path, stamp, enc, z)
    features.current_digit_download_ui(model, z)
    # The feature layers over the scatter (the panels send them too, when their widgets change).
    overlays_ui(features.feature_traces(model, enc, z, st.session_state.get("selected_index")),
                key="cvae_overlays_commit")
    selection_ui(model, enc, data)


# Why: the figure (an image and its axes) costs tens of ms to build on every full run; it
# depends only on the model and the manifold's settings (the ring is drawn by the browser).
@st.cache_resource(show_spinner=False, max_entries=16)
def manifold_chart(path: str, stamp: tuple, n: int, z1_range: tuple, z2_range: tuple):
    return figures.manifold_figure(manifold_image(path, stamp, n, z1_range, z2_range), n, z1_range, z2_range)


def grid_settings() -> tuple[int, tuple, tuple]:
    """The manifold's n, z1 range and z2 range: the user's (kept while the manifold is not
    shown), else the tutorial's."""
    get = st.session_state.get
    return (int(get("grid_n", cvae_latent.GRID_N)), tuple(get("grid_z1", cvae_latent.GRID_Z1)),
            tuple(get("grid_z2", cvae_latent.GRID_Z2)))


def manifold_ui(path: str, stamp: tuple) -> dict | None:
    """The tutorial's manifold; returns the map the browser uses to ring the current point."""
    st.caption("Digits decoded on an n x n grid of latent points (the tutorial's figure); "
               "the red ring follows the current point when it lies inside.")
    c1, c2, c3 = st.columns(3)
    # persist_state: the settings are kept while the manifold's tab is closed (not drawn).
    n = c1.slider("n", 2, cvae_latent.MAX_GRID_N, cvae_latent.GRID_N, key="grid_n", persist_state="page")
    z1r = c2.slider("z1 range", -6.0, 6.0, cvae_latent.GRID_Z1, step=0.1, key="grid_z1", persist_state="page")
    z2r = c3.slider("z2 range", -6.0, 6.0, cvae_latent.GRID_Z2, step=0.1, key="grid_z2", persist_state="page")
    if z1r[0] >= z1r[1] or z2r[0] >= z2r[1]:
        st.warning("Each range needs its low end below its high end.")
        return None
    with part("The manifold"):
        st.plotly_chart(manifold_chart(path, stamp, int(n), tuple(z1r), tuple(z2r)), key="manifold",
                        config={"displaylogo": False})
        return cvae_latent.manifold_map(int(n), z1r, z2r)
    return None


@st.fragment(key="panels")
def panels_fragment(path: str, stamp: tuple, enc: dict, data: str) -> None:
    """Draw, morph, uncertainty, downloads; and the feature layers they add to the scatter."""
    model = load_model(path, stamp)
    z = current_latent()
    selected = st.session_state.get("selected_index")
    with part("The feature panels"):
        st.subheader("Draw, morph, uncertainty, downloads")
        features.features_ui(
            model, enc, z, explore_from_here,
            test_image=lambda i: test_digit(data, i)[0] if has_mnist(data) else None,
            selected_index=selected,
            grid=lambda: manifold_image(path, stamp, *grid_settings()),
            model_key=f"{path}:{stamp}",
            test_set=lambda: load_mnist("test", data, download=False)[0].numpy() if has_mnist(data) else None)
        overlays_ui(features.feature_traces(model, enc, z, selected))


VIEW_KEY = "view"
SCATTER_TAB, MANIFOLD_TAB = "Encoded test digits", "Manifold"

# A model with no test digits encoded (no MNIST here, and none shipped beside it): one object, so
# that every cache keyed by the encodings (the points payload) keeps one entry for it.
NO_ENCODINGS = {"z_mean": np.zeros((0, 2), np.float32), "z_log_var": np.zeros((0, 2), np.float32),
                "label": np.zeros(0, np.int64), "source": None}
for _a in NO_ENCODINGS.values():
    if isinstance(_a, np.ndarray):
        _a.flags.writeable = False


def no_scatter_ui(data: str) -> None:
    st.info("The scatter shows this model's encodings of the 10,000 MNIST test digits, and the MNIST test "
            f"set is not on this machine: put the four MNIST files in {Path(data) / 'MNIST' / 'raw'} (or point "
            "CVAE_DATA at a folder holding MNIST/raw/). The decoder beside, the manifold (the tab above) and "
            "drawing work without it.")


def explorer_page_ui(path: str, stamp: tuple, enc: dict, data: str) -> None:
    """The scatter (or the manifold, in a tab) beside the decoder column; the feature panels."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        # The manifold is drawn only while its tab is open: a second chart costs every browser
        # that opens the page ~0.5 s of CPU (benchmarks/load_test.py, a class at once).
        t_scatter, t_manifold = st.tabs([SCATTER_TAB, MANIFOLD_TAB], key=VIEW_KEY, on_change="rerun")
        second = None
        with t_scatter, part("The scatter"):
            if len(enc["z_mean"]):
                scatter_ui(path, stamp, enc)
                second = compare_ui(path, len(enc["z_mean"]), data)
                if second is not None:
                    second_scatter_ui(second)
            else:
                no_scatter_ui(data)
        manifold = None
        if t_manifold.open:
            with t_manifold:
                manifold = manifold_ui(path, stamp)
    with right:
        st.subheader("Decoder")  # outside the fragment: not sent again with every commit
        decoder_fragment(path, stamp, enc, data, manifold, second)
    panels_fragment(path, stamp, enc, data)


FILM_KEY = "film_open"


def film_ui(path: str, stamp: tuple) -> None:
    """The model's training film, drawn when its section is opened (its frames are a few
    hundred KB: not sent with every page unless asked for)."""
    with st.expander("The training film: how the latent space formed while this model trained", key=FILM_KEY,
                     on_change="rerun", icon=":material/movie:") as section:
        if section.open:
            with part("The training film"):
                film_replay_ui(load_model(path, stamp))
