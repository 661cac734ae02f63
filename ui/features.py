"""Feature panels: draw a digit, morph between two points, posterior uncertainty, the loss of one
digit, downloads.

The app calls :func:`feature_traces` before it builds the latent scatter (the star, the
morph path and the posterior ellipses are layers on it) and :func:`features_ui` below the
manifold. Both read the same widget values from ``st.session_state``, which Streamlit
fills before the script reruns, so the scatter is up to date in the same run as the
widgets that changed it. All maths is in ``cvae`` (drawing, morph, uncertainty, export).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import streamlit as st

from cvae.core import explain
from cvae.core.encodings import encodings_csv
from cvae.core.latent import (GRID_N, GRID_Z1, GRID_Z2, MAX_STEPS, decode_grid, decode_points, encode_dataset,
                              interpolate, morph)
from cvae.core.posterior import decode_samples, nearest, sample_posterior, std
from cvae.draw.explain import elbo_histogram_figure, loss_bar_figure
from cvae.draw.images import gif_bytes, pixelate, png_bytes, tile
from cvae.draw.overlays import ellipse_traces, path_trace, samples_trace, star_trace
from cvae.draw.sketch import DrawingError, decode_data_url, preprocess_drawing

_HERE = Path(__file__).resolve().parent
CANVAS_COMPONENT = "cvae_draw_canvas"

# Session-state keys (all prefixed "feat_" so they never clash with the app's).
K_CANVAS = "feat_canvas"
K_DRAWN_MEMO = "feat_drawn_memo"
K_A_KIND, K_A_INDEX = "feat_morph_a_kind", "feat_morph_a_index"
K_B_KIND, K_B_INDEX = "feat_morph_b_kind", "feat_morph_b_index"
K_STEPS, K_SHOW_PATH, K_PLAY = "feat_morph_steps", "feat_morph_show_path", "feat_morph_play"
K_FPS = "feat_morph_fps"
K_U_SOURCE, K_U_INDEX = "feat_unc_source", "feat_unc_index"
K_U_N, K_U_SEED, K_U_SHOW = "feat_unc_n", "feat_unc_seed", "feat_unc_show"
# A panel's layer is drawn on the scatter once the person has opened that panel (asked for it):
# a page opened for the first time shows the encodings and the point, nothing unexplained.
K_MORPH_ASKED, K_U_ASKED = "feat_morph_asked", "feat_unc_asked"
K_L_SOURCE, K_L_ASKED = "feat_loss_source", "feat_loss_asked"

TEST_DIGIT, CURRENT, DRAWN, CLICKED = "Test digit", "Current point", "Your drawing", "Clicked test digit"
ENDPOINT_KINDS = (TEST_DIGIT, CLICKED, CURRENT, DRAWN)
DEFAULTS = {K_A_KIND: TEST_DIGIT, K_A_INDEX: 0, K_B_KIND: TEST_DIGIT, K_B_INDEX: 1, K_STEPS: 12,
            K_SHOW_PATH: True, K_PLAY: False, K_FPS: 12, K_U_SOURCE: CLICKED, K_U_INDEX: 0, K_U_N: 8,
            K_U_SEED: 0, K_U_SHOW: True, K_L_SOURCE: CLICKED}
N_NEIGHBOURS = 6
DIGIT_PX = 140  # on-screen size of small digits (5x, pixelated)


def _get(key):
    return st.session_state.get(key, DEFAULTS.get(key))


# ---- the drawing -------------------------------------------------------------

@dataclass(frozen=True)
class Drawn:
    """A processed drawing: its MNIST-style image, posterior and reconstruction."""

    image: np.ndarray  # (28, 28) in [0, 1]
    z_mean: np.ndarray  # (d,)
    z_log_var: np.ndarray  # (d,)
    recon: np.ndarray  # (28, 28) decoded at z_mean


@cache
def _canvas():
    """Register the drawing component once per process (not at import time)."""
    return st.components.v2.component(
        CANVAS_COMPONENT,
        js=(_HERE / "drawpad.js").read_text(encoding="utf-8"),
        css=(_HERE / "drawpad.css").read_text(encoding="utf-8"),
    )


def canvas_url() -> str | None:
    """The drawing pad's current PNG data URL (None before the first stroke or after Clear)."""
    state = st.session_state.get(K_CANVAS)
    try:
        url = state.get("image") if state is not None else None
    except AttributeError:
        return None
    return url if isinstance(url, str) and url else None


def drawn_digit(model) -> Drawn | DrawingError | None:
    """The processed drawing (memoised per drawing and model), the error it gave, or None."""
    url = canvas_url()
    if url is None:
        return None
    key = (id(model), hashlib.sha1(url.encode("utf-8", "replace")).hexdigest())
    memo = st.session_state.get(K_DRAWN_MEMO)
    if memo is not None and memo[0] == key:
        return memo[1]
    try:
        img = preprocess_drawing(decode_data_url(url))
        zm, lv = encode_dataset(model, img[None])
        out: Drawn | DrawingError = Drawn(img, zm[0], lv[0], decode_points(model, zm)[0])
    except DrawingError as e:
        out = e
    st.session_state[K_DRAWN_MEMO] = (key, out)
    return out


def _show(img, caption: str | None = None, px: int = DIGIT_PX) -> None:
    scale = max(1, px // int(np.asarray(img).shape[0]))
    st.image(pixelate(img, scale), caption=caption, width=min(px, scale * np.asarray(img).shape[1]), output_format="PNG")


TestImage = Callable[[int], "np.ndarray | None"]


def _test_digit(model, enc: dict, i: int, test_image: TestImage | None) -> tuple[np.ndarray, bool]:
    """Test digit i's original image, or (offline, no MNIST) its reconstruction; True if original."""
    img = test_image(i) if test_image is not None else None
    if img is not None:
        return np.asarray(img), True
    return decode_points(model, enc["z_mean"][i][None])[0], False


def draw_ui(model, enc: dict, test_image: TestImage | None = None,
            set_latent: Callable[[float, float], object] | None = None) -> Drawn | None:
    """The drawing pad, the preprocessed 28x28 input, its reconstruction and the nearest
    test digits; "Explore from here" moves the latent point to the drawing. Returns it.

    ``test_image(i)`` gives test digit i's original (uint8 or [0, 1]) or None when the data
    set is not here (then the nearest digits are shown as reconstructions)."""
    st.markdown("Draw a digit with the mouse (or a finger). It is preprocessed as MNIST's digits were "
                "(cropped, scaled to fit 20x20, centred by centre of mass in 28x28), encoded, and shown "
                "as a **gold star** on the scatter.")
    left, right = st.columns([1, 2], gap="medium")
    with left:
        _canvas()(key=K_CANVAS, data={"size": 280}, default={"image": None},
                  on_image_change=lambda: None, width="content")
    drawn = drawn_digit(model)
    with right:
        if drawn is None:
            st.info("Nothing drawn yet: draw a digit on the pad.")
            return None
        if isinstance(drawn, DrawingError):
            st.warning(f"{drawn}")
            return None
        c1, c2 = st.columns(2)
        with c1:
            _show(drawn.image, "as the model sees it (28x28)")
        with c2:
            _show(drawn.recon, "reconstruction")
        sd = std(drawn.z_log_var)
        st.markdown(f"z_mean = ({', '.join(f'{v:.3f}' for v in drawn.z_mean)}), "
                    f"σ = ({', '.join(f'{v:.3f}' for v in sd)})")
        if set_latent is not None and len(drawn.z_mean) == 2:
            st.button("Explore from here", key="feat_explore_drawn", type="primary",
                      help="Move the latent point (sliders, marker, decoder) to your drawing",
                      on_click=set_latent, args=(float(drawn.z_mean[0]), float(drawn.z_mean[1])))
    idx, dist = nearest(drawn.z_mean, enc["z_mean"], N_NEIGHBOURS)
    st.markdown("**Nearest test digits in latent space**")
    cols = st.columns(N_NEIGHBOURS)
    for c, i, d in zip(cols, idx, dist):
        img, is_original = _test_digit(model, enc, int(i), test_image)
        with c:
            _show(img, f"#{int(i)} · {int(enc['label'][i])} · d={d:.3f}" + ("" if is_original else " (recon.)"),
                  px=84)
    return drawn


# ---- morph -------------------------------------------------------------------

def _endpoint(prefix: str, model, enc: dict, current, selected_index: int | None = None) -> tuple[np.ndarray, str]:
    """Resolve endpoint A or B to a latent point and a label; ValueError with a clear message."""
    kind = _get(K_A_KIND if prefix == "A" else K_B_KIND)
    if kind == CLICKED and selected_index is None:
        raise ValueError("click a digit on the scatter first")
    if kind == CURRENT:
        if current is None:
            raise ValueError("there is no current point yet")
        return np.asarray(current, dtype=np.float32), "current point"
    if kind == DRAWN:
        d = drawn_digit(model)
        if not isinstance(d, Drawn):
            raise ValueError("draw a digit first (Draw tab)")
        return d.z_mean, "your drawing"
    i = int(selected_index if kind == CLICKED else _get(K_A_INDEX if prefix == "A" else K_B_INDEX))
    n = len(enc["z_mean"])
    if not 0 <= i < n:
        raise ValueError(f"test digit index must be between 0 and {n - 1}, got {i}")
    return enc["z_mean"][i], f"test #{i} ({int(enc['label'][i])})"


def morph_line(model, enc: dict, current, selected_index: int | None = None) -> np.ndarray:
    """The path alone (no decoding): the layer on the scatter, drawn on every commit."""
    za, _ = _endpoint("A", model, enc, current, selected_index)
    zb, _ = _endpoint("B", model, enc, current, selected_index)
    return interpolate(za, zb, int(_get(K_STEPS)))


def morph_path(model, enc: dict, current, selected_index: int | None = None) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(path, frames, label A, label B) for the morph the widgets describe."""
    za, la = _endpoint("A", model, enc, current, selected_index)
    zb, lb = _endpoint("B", model, enc, current, selected_index)
    path, frames = morph(model, za, zb, int(_get(K_STEPS)))
    return path, frames, la, lb


# Why: encoding a GIF costs tens of ms and the app reruns on every widget change;
# the frames (a few KB) are cheap to hash.
@st.cache_data(show_spinner=False, max_entries=16)
def _gif(frames: np.ndarray, fps: int) -> bytes:
    return gif_bytes(frames, duration_ms=max(20, round(1000 / fps)), scale=4)


@st.cache_data(show_spinner=False, max_entries=16)
def _strip_png(frames: np.ndarray) -> bytes:
    return png_bytes(tile(frames, pad=2), scale=3)


def _endpoint_ui(prefix: str, n_test: int) -> None:
    kind_key, index_key = (K_A_KIND, K_A_INDEX) if prefix == "A" else (K_B_KIND, K_B_INDEX)
    kind = st.selectbox(f"Endpoint {prefix}", ENDPOINT_KINDS, key=kind_key, persist_state="page",
                        index=ENDPOINT_KINDS.index(DEFAULTS[kind_key]),
                        help="A test digit by index, the digit last clicked on the scatter, "
                             "the current latent point, or your drawing")
    if kind == TEST_DIGIT:
        st.number_input(f"Test digit index ({prefix})", min_value=0, max_value=max(0, n_test - 1), step=1,
                        value=DEFAULTS[index_key], key=index_key, persist_state="page")


def morph_ui(model, enc: dict, current=None, selected_index: int | None = None):
    """Two endpoints, the straight path between them, its decoded strip and animation."""
    st.session_state[K_MORPH_ASKED] = True
    st.markdown("A straight line between two points of the latent space, decoded at evenly spaced steps "
                "(the **pink path** on the scatter).")
    n_test = len(enc["z_mean"])
    c1, c2, c3 = st.columns([2, 2, 2])
    with c1:
        _endpoint_ui("A", n_test)
    with c2:
        _endpoint_ui("B", n_test)
    with c3:
        st.slider("Steps", 2, MAX_STEPS, DEFAULTS[K_STEPS], key=K_STEPS, persist_state="page")
        st.checkbox("Show the path on the scatter", value=DEFAULTS[K_SHOW_PATH], key=K_SHOW_PATH,
                    persist_state="page")
    try:
        path, frames, la, lb = morph_path(model, enc, current, selected_index)
    except ValueError as e:
        st.warning(f"Cannot morph: {e}.")
        return None
    strip = tile(frames, pad=2)
    st.image(pixelate(strip, 3), caption=f"{la} → {lb}, {len(frames)} steps", width="stretch")
    p1, p2, _ = st.columns([1, 1, 2])
    with p1:
        play = st.toggle(":material/play_arrow: Play animation", value=DEFAULTS[K_PLAY], key=K_PLAY,
                         persist_state="page")
    with p2:
        fps = st.slider("Frames per second", 2, 30, DEFAULTS[K_FPS], key=K_FPS, persist_state="page")
    gif = _gif(frames, int(fps))
    if play:
        st.image(gif, caption=f"morph {la} → {lb} (looping, forward and back)", width=224)
    d1, d2 = st.columns(2)
    with d1:
        st.download_button("Download strip (PNG)", _strip_png(frames), file_name="morph_strip.png",
                           mime="image/png", on_click="ignore", key="feat_dl_strip")
    with d2:
        st.download_button("Download animation (GIF)", gif, file_name="morph.gif", mime="image/gif",
                           on_click="ignore", key="feat_dl_gif")
    return path, frames


# ---- uncertainty -------------------------------------------------------------

def posterior_source(model, enc: dict, selected_index: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(z_mean, z_log_var, label) of the digit whose posterior is shown; ValueError if none."""
    src = _get(K_U_SOURCE)
    if src == DRAWN:
        d = drawn_digit(model)
        if not isinstance(d, Drawn):
            raise ValueError("draw a digit first (Draw tab)")
        return d.z_mean, d.z_log_var, "your drawing"
    i = selected_index if src == CLICKED else int(_get(K_U_INDEX))
    if i is None:
        raise ValueError("click a digit on the scatter first")
    i = int(i)
    if not 0 <= i < len(enc["z_mean"]):
        raise ValueError(f"test digit index must be between 0 and {len(enc['z_mean']) - 1}, got {i}")
    return enc["z_mean"][i], enc["z_log_var"][i], f"test #{i} ({int(enc['label'][i])})"


def uncertainty_ui(model, enc: dict, selected_index: int | None = None):
    """The encoder's posterior for a clicked or drawn digit: ellipses and decoded samples."""
    st.session_state[K_U_ASKED] = True
    st.markdown("The encoder does not give one point but a Gaussian q(z|x) with mean z_mean and "
                "standard deviation σ = exp(½·z_log_var). On the scatter (**green**): its 1σ and 2σ "
                "ellipses (39% and 86% of the probability in 2-D); below: digits decoded from samples "
                "z = z_mean + σ·ε.")
    c1, c2, c3 = st.columns([2, 1, 1])
    with c1:
        sources = (CLICKED, TEST_DIGIT, DRAWN)
        src = st.radio("Posterior of", sources, index=sources.index(DEFAULTS[K_U_SOURCE]), key=K_U_SOURCE,
                       persist_state="page", horizontal=True)
        if src == TEST_DIGIT:
            st.number_input("Test digit index", 0, max(0, len(enc["z_mean"]) - 1), DEFAULTS[K_U_INDEX], 1,
                            key=K_U_INDEX, persist_state="page")
    with c2:
        n = st.slider("Samples", 1, 16, DEFAULTS[K_U_N], key=K_U_N, persist_state="page")
    with c3:
        seed = st.number_input("Seed", 0, 2**31 - 1, DEFAULTS[K_U_SEED], 1, key=K_U_SEED, persist_state="page")
    st.checkbox("Show the posterior on the scatter", value=DEFAULTS[K_U_SHOW], key=K_U_SHOW, persist_state="page")
    try:
        zm, lv, label = posterior_source(model, enc, selected_index)
    except ValueError as e:
        st.info(f"No posterior to show: {e}.")
        return None
    sd = std(lv)
    st.markdown(f"**{label}**: z_mean = ({', '.join(f'{v:.3f}' for v in zm)}), "
                f"σ = ({', '.join(f'{v:.3f}' for v in sd)})")
    z, imgs = decode_samples(model, zm, lv, int(n), int(seed))
    st.image(pixelate(tile(imgs, ncols=min(8, len(imgs)), pad=2), 3),
             caption=f"{len(imgs)} decoded samples from q(z|x) (seed {int(seed)})")
    return zm, lv, z


# ---- the loss of one digit ---------------------------------------------------

LIKELIHOOD_LINE = ("The likelihood is the tutorial's: every grey pixel is scored as a Bernoulli with the "
                   "decoder's probability, log p(x|z) = −784·BCE(x, decoder(z)); grey images are not what a "
                   "Bernoulli describes, so these are the tutorial's nats, not a density of grey images.")
TestSet = Callable[[], "np.ndarray | None"]


# Why: one digit's loss is 1,000 decodes (~1 s on 2 cores); a click on the same digit, or
# another browser on the same digit, takes it from here. Keyed by the model and the image.
@st.cache_data(show_spinner=False, max_entries=256)
def _digit_loss(_model, model_key: str, image_key: str, image: np.ndarray) -> dict:
    return explain.digit_loss(_model, image, k=explain.K_SAMPLES, seed=0).to_dict()


# Why: the test set's -ELBO is 10,000 decodes (~10 s on 2 cores) and depends only on the model:
# computed once per model for every session.
@st.cache_resource(show_spinner=False, max_entries=4)
def _test_elbos(_model, model_key: str, _test_set: TestSet) -> np.ndarray | None:
    images = _test_set()
    return None if images is None else explain.test_set_elbos(_model, images)


def loss_source(model, enc: dict, selected_index: int | None, test_image: TestImage | None) -> tuple[np.ndarray, str, str]:
    """(image, its cache key, label) of the digit whose loss is shown; ValueError saying why none."""
    if _get(K_L_SOURCE) == DRAWN:
        d = drawn_digit(model)
        if not isinstance(d, Drawn):
            raise ValueError("draw a digit first (Draw tab)")
        return d.image, "drawn:" + hashlib.sha1(d.image.tobytes()).hexdigest(), "your drawing"
    if selected_index is None:
        raise ValueError("click a test digit on the scatter first")
    i = int(selected_index)
    img = test_image(i) if test_image is not None else None
    if img is None:
        raise ValueError("the loss of a test digit needs its image: the MNIST test set is not on this machine")
    img = np.asarray(img, dtype=np.float32)
    if img.max() > 1.0:
        img = img / 255.0
    return img, f"test:{i}", f"test #{i} ({int(enc['label'][i])})"


def loss_ui(model, enc: dict, selected_index: int | None = None, test_image: TestImage | None = None,
            test_set: TestSet | None = None, model_key: str = "") -> dict | None:
    """The clicked test digit's (or the drawing's) loss: 784·BCE + KL = −ELBO beside −log p(x),
    and where it stands among the test digits. Returns the loss (a dict) or None."""
    st.session_state[K_L_ASKED] = True
    sources = (CLICKED, DRAWN)
    st.radio("Loss of", sources, index=sources.index(DEFAULTS[K_L_SOURCE]), key=K_L_SOURCE,
             persist_state="page", horizontal=True)
    try:
        image, image_key, label = loss_source(model, enc, selected_index, test_image)
    except ValueError as e:
        st.info(f"No loss to show: {e}.")
        return None
    key = model_key or str(id(model))
    with st.spinner(f"Scoring {label} with {explain.K_SAMPLES:,} samples of q(z|x)…"):
        loss = _digit_loss(model, key, image_key, image)
    c1, c2 = st.columns([1, 4])
    with c1:
        _show(image, label, px=84)
    with c2:
        st.markdown(f"**{label}**: reconstruction 784·BCE = **{loss['recon']:.1f}** nats + KL = **{loss['kl']:.1f}** "
                    f"nats = **−ELBO {loss['neg_elbo']:.1f}** (what the tutorial trains on); "
                    f"−log p(x) ≈ **{loss['neg_log_px']:.1f}** nats, so the bound's slack is "
                    f"**{loss['slack']:.2f}** nats.")
        st.plotly_chart(loss_bar_figure(loss["recon"], loss["kl"], loss["neg_log_px"]), key="feat_loss_bar",
                        config={"displayModeBar": False})
    st.caption(f"784·BCE and −log p(x) are averaged over the same {loss['k']:,} samples z ~ q(z|x) (seed "
               f"{loss['seed']}); KL is exact. −log p(x) = −log of the mean of p(x|z)·p(z)/q(z|x) over them "
               "(importance-weighted; its spread over seeds is about 0.01–1 nats, docs/performance.md). "
               + LIKELIHOOD_LINE)
    elbos = None
    if test_set is not None:
        with st.spinner("Scoring the 10,000 test digits once for this model…"):
            elbos = _test_elbos(model, key, test_set)
    if elbos is None:
        st.info("Where this digit stands among the test digits needs the MNIST test set, which is not on "
                "this machine.")
        return loss
    harder = explain.harder_than(loss["neg_elbo"], elbos)
    counts, edges = explain.histogram(elbos)
    st.markdown(f"Harder than **{harder:.0f}%** of test digits (its −ELBO against theirs).")
    st.plotly_chart(elbo_histogram_figure(counts, edges, loss["neg_elbo"], harder), key="feat_loss_hist",
                    config={"displayModeBar": False})
    st.caption(f"Each of the {len(elbos):,} test digits' −ELBO from one sample of q(z|x), as the tutorial's "
               f"val_loss (their mean, {elbos.mean():.1f}); this digit's from {loss['k']:,}.")
    return {**loss, "harder_than": harder}


# ---- downloads ---------------------------------------------------------------

# Why: 10,000 rows of text take a moment and change only with the encodings.
@st.cache_data(show_spinner=False, max_entries=4)
def _csv(z_mean: np.ndarray, z_log_var: np.ndarray, labels: np.ndarray) -> bytes:
    return encodings_csv(z_mean, z_log_var, labels)


# Why: a 2x PNG of a 15x15 grid takes ~50 ms and the app reruns on every slider move;
# hashing the grid's bytes is far cheaper.
@st.cache_data(show_spinner=False, max_entries=8)
def _grid_png(grid: np.ndarray) -> bytes:
    return png_bytes(grid, scale=2)


# Why: decoding the default 15x15 grid is the one costly step here, and it changes only
# with the model (keyed by the checkpoint's weights hash the caller passes).
@st.cache_data(show_spinner=False, max_entries=4)
def _default_grid(_model, model_key: str) -> np.ndarray:
    return decode_grid(_model, GRID_N, GRID_Z1, GRID_Z2)


def current_digit_download_ui(model, current) -> None:
    """The digit at the committed point as a 280x280 PNG (made when clicked, not on every
    commit). In the decoder column, which reruns with every commit."""
    point = np.asarray(current, dtype=np.float32)[None]
    z = ", ".join(f"{v:.2f}" for v in current)
    st.download_button("Current digit (PNG)", lambda: png_bytes(decode_points(model, point)[0], scale=10),
                       file_name="digit.png", mime="image/png", on_click="ignore", key="feat_dl_digit",
                       help=f"The digit decoded at ({z}), 280x280 pixels")


def panels_follow_point(selection_changed: bool) -> bool:
    """Whether the panels show something a commit changes: a morph from the current point, or
    (when the selection changed) a morph, posterior or loss of the clicked digit. Other commits
    leave them as they are, and need not rerun them."""
    kinds = (_get(K_A_KIND), _get(K_B_KIND))
    if CURRENT in kinds:
        return True
    return selection_changed and (CLICKED in kinds or _get(K_U_SOURCE) == CLICKED
                                  or (bool(st.session_state.get(K_L_ASKED)) and _get(K_L_SOURCE) == CLICKED))


def downloads_ui(model, enc: dict, current=None, grid=None, model_key: str = "") -> None:
    """PNG of the manifold grid; CSV of the encodings (the current digit's PNG is in the
    decoder column: :func:`current_digit_download_ui`).

    ``grid`` is the manifold image as shown (an array, or a callable returning it); without
    it the tutorial's default 15x15 grid is decoded."""
    c1, c3 = st.columns(2)
    with c1:
        try:
            g = grid() if callable(grid) else grid
            if g is None:
                g = _default_grid(model, model_key or str(id(model)))
        except ValueError as e:
            st.info(f"No manifold to download: {e}")
        else:
            st.download_button("Manifold grid (PNG)", _grid_png(np.asarray(g)), file_name="manifold.png",
                               mime="image/png", on_click="ignore", key="feat_dl_grid",
                               help="The decoded n x n grid as shown, 2 pixels per model pixel")
    with c3:
        st.download_button("Encodings (CSV)", lambda: _csv(enc["z_mean"], enc["z_log_var"], enc["label"]),
                           file_name="encodings.csv", mime="text/csv", on_click="ignore", key="feat_dl_csv",
                           help="index, label, z_mean, z_log_var and σ of every test digit")


# ---- the scatter's layers and the whole panel --------------------------------

def feature_traces(model, enc: dict, current=None, selected_index: int | None = None) -> list:
    """Plotly traces for the latent scatter: the drawn star, the morph path, the posterior.

    Never raises for a missing or invalid choice: a layer that cannot be built is left out
    (its panel shows why).
    """
    traces: list = []
    if model.latent_dim != 2:
        return traces
    if _get(K_U_SHOW) and st.session_state.get(K_U_ASKED):
        try:
            zm, lv, label = posterior_source(model, enc, selected_index)
            traces += ellipse_traces(zm, lv, name=label)
            traces.append(samples_trace(sample_posterior(zm, lv, int(_get(K_U_N)), int(_get(K_U_SEED)))))
        except ValueError:
            pass
    if _get(K_SHOW_PATH) and st.session_state.get(K_MORPH_ASKED):
        try:
            traces.append(path_trace(morph_line(model, enc, current, selected_index)))
        except ValueError:
            pass
    d = drawn_digit(model)
    if isinstance(d, Drawn):
        traces.append(star_trace(d.z_mean))
    return traces


K_TAB = "feat_tab"
TAB_DRAW, TAB_MORPH, TAB_UNC, TAB_LOSS, TAB_DOWNLOADS = (
    ":material/draw: Draw a digit", ":material/swap_horiz: Morph", ":material/blur_on: Uncertainty",
    ":material/calculate: Loss of one digit", ":material/download: Downloads")


def features_ui(model, enc: dict, current=None, set_latent=None, test_image: TestImage | None = None,
                selected_index: int | None = None, grid=None, model_key: str = "",
                test_set: TestSet | None = None) -> None:
    """All five panels in tabs. The drawing pad runs in every run (the drawing lives in its
    component's state); the other panels are drawn only while their tab is open: each costs
    every browser that opens the page its drawing. Their widgets keep their values while
    hidden (persist_state), so the scatter's layers (:func:`feature_traces`) stay as set."""
    t_draw, t_morph, t_unc, t_loss, t_dl = st.tabs([TAB_DRAW, TAB_MORPH, TAB_UNC, TAB_LOSS, TAB_DOWNLOADS],
                                                   key=K_TAB, on_change="rerun")
    with t_draw:
        draw_ui(model, enc, test_image, set_latent)
    if t_morph.open:
        with t_morph:
            morph_ui(model, enc, current, selected_index)
    if t_unc.open:
        with t_unc:
            uncertainty_ui(model, enc, selected_index)
    if t_loss.open:
        with t_loss:
            loss_ui(model, enc, selected_index, test_image, test_set, model_key)
    if t_dl.open:
        with t_dl:
            downloads_ui(model, enc, current, grid, model_key)
