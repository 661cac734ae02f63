"""Two models under one cursor: a second model picked beside the one explored.

Off by default. Picked, its decoder's weights and its encodings go to the browser as the first
model's do (ui/explorer.py, content-addressed assets), so the second canvas decodes the same
point at every move in the browser, its scatter shows where it encodes the test digits, and a
clicked test digit is ringed where each model puts it (cvae/web/explorer.js). The second model is
any other model in the list (the shipped one, trained or opened here), or a frame of the explored
model's training film that kept its weights (``film:I``: the model as it was at that moment of
its training; the shipped model's film is a separate run of its recipe). The page's URL names it
(``?compare=NAME``, the names of ``?model=``, or ``film:I``), so a link shows the same two models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import cvae
from cvae.core.data import has_mnist
from cvae.core.latent import latent_bounds
from cvae.core.shipped import SHIPPED_CHECKPOINT, encodings_for, replay_for
from ui.common import file_stamp, part
from ui.models import list_models, load_encodings, load_model, model_from_link, model_name

COMPARE_KEY = "compare_model"  # the second model's path, or None (off)
SCATTER2_KEY = "scatter2"  # the second model's st.plotly_chart
COMPARE_PARAM = "compare"  # the URL's name for it
FRAME_PREFIX = "film:"  # "film:I": frame I of the explored model's training film, in the picker and the URL


@dataclass(frozen=True)
class Second:
    """The second model: what the explorer sends the browser and the second scatter draws."""

    path: str
    stamp: tuple
    name: str  # its label in the list ("Trained here: run.pt")
    name_a: str  # the label of the model explored, for the first canvas
    model: cvae.CVAE
    enc: dict
    bounds: tuple[float, float, float, float]  # its encodings' own ranges (its points payload's)


def compare_options(current: str) -> dict[str, str]:
    """{path: label} of the models that can be put beside ``current``: every other one in the list,
    then the frames of its training film that kept their weights ({"film:I": label})."""
    here = Path(current).resolve()
    out = {p: label for p, label in list_models().items() if Path(p).resolve() != here}
    return out | film_frames(current, file_stamp(Path(current)))


# Why: the picker is built on every full run, and reading which frames a film keeps means
# loading the checkpoint (cached) and its film; the labels depend only on the file.
@st.cache_data(show_spinner=False, max_entries=8)
def film_frames(path: str, stamp: tuple) -> dict[str, str]:
    """{"film:I": label} for the frames of ``path``'s training film that can be explored."""
    replay = replay_for(load_model(path, stamp))
    film = replay.film
    if film is None:
        return {}
    whose = "Its training film (a separate run)" if replay.shipped else "Its training film"
    return {f"{FRAME_PREFIX}{i}": f"{whose}, frame {i + 1} of {len(film)}: epoch {film.epoch[i]:.2f}, "
                                  f"step {int(film.step[i]):,}" for i in film.frames_with_weights()}


# Why: a frame becomes a model by unpacking its float16 weights (~10 ms) and is read-only at
# inference, so one copy serves every session; the checkpoint's stamp reloads a replaced file.
# 16 entries: every frame of the default recipe's film (a class may spread over all of them).
@st.cache_resource(show_spinner=False, max_entries=16)
def frame_model(path: str, stamp: tuple, frame: int) -> cvae.CVAE:
    model = load_model(path, stamp)
    return replay_for(model).film.frame_model(frame, model)


# Why: encoding the 10,000 test digits with a frame's model takes seconds; once per frame (160 KB each).
@st.cache_data(show_spinner="Encoding the test digits with that frame's model...", max_entries=16)
def frame_encodings(path: str, stamp: tuple, frame: int, data: str) -> dict:
    return encodings_for(f"{path}#{FRAME_PREFIX}{frame}", data, lambda: frame_model(path, stamp, frame))


# Why: the bounds are read on every commit (the points payload's cache key); computing them is
# a pass over 10,000 encodings, once per encodings object (the encodings are cached by file).
@st.cache_data(show_spinner=False, max_entries=16)
def _bounds(path: str, stamp: tuple, _z: np.ndarray) -> tuple[float, float, float, float]:
    return latent_bounds(_z)


def compare_ui(current: str, n_points: int, data: str) -> Second | None:
    """The picker ("off" by default); the second model, loaded, when one is picked and usable,
    else None with one sentence saying why not."""
    options = compare_options(current)
    if COMPARE_KEY not in st.session_state and (name := st.query_params.get(COMPARE_PARAM)):
        st.session_state[COMPARE_KEY] = model_from_link(name, options)  # a link's; None when not here
    # A picked model that left the list (or is now the one explored): Streamlit resets the box to off.
    path = st.selectbox("Compare with a second model", [None, *options], key=COMPARE_KEY,
                        format_func=lambda p: "off" if p is None else options.get(p, Path(p).name),
                        help="Put another model beside this one under the same cursor: a second canvas decodes "
                             "the same point, a second scatter shows where that model encodes the test digits, and "
                             "a clicked digit is ringed in both. The frames of this model's training film are "
                             "here too: the model as it was at that moment of its training.")
    want = model_name(path) if path else None
    if st.query_params.get(COMPARE_PARAM) != want:
        if want:
            st.query_params[COMPARE_PARAM] = want
        else:
            del st.query_params[COMPARE_PARAM]
    if path is None:
        return None
    if path.startswith(FRAME_PREFIX):
        return _frame_second(current, int(path[len(FRAME_PREFIX):]), options[path], n_points, data)
    with part("The second model"):
        stamp = file_stamp(Path(path))
        model = load_model(path, stamp)
        if model.latent_dim != 2:
            st.warning(f"{Path(path).name} has a {model.latent_dim}-D latent space; the explorer compares 2-D ones.")
            return None
        if not has_mnist(data) and Path(path).resolve() != SHIPPED_CHECKPOINT.resolve():
            st.info("The second model's scatter needs the MNIST test set to encode the test digits, and it is "
                    f"not on this machine (put the four MNIST files in {Path(data) / 'MNIST' / 'raw'}).")
            return None
        enc = load_encodings(path, stamp, data)
        if len(enc["z_mean"]) != n_points or np.asarray(enc["z_mean"]).shape[1] != 2:
            st.warning(f"{Path(path).name}'s encodings are not of the same {n_points:,} test digits; "
                       "it cannot be compared here.")
            return None
        name_a = list_models().get(current, Path(current).name)
        return Second(path, stamp, options[path], name_a, model, enc, _bounds(path, stamp, enc["z_mean"]))
    return None


def _frame_second(current: str, frame: int, label: str, n_points: int, data: str) -> Second | None:
    """Frame ``frame`` of the explored model's film as the second model (None, with why, when
    MNIST is not here to encode the test digits with it)."""
    with part("The film's frame"):
        if not has_mnist(data):
            st.info("A frame's scatter needs the MNIST test set to encode the test digits with the model of that "
                    f"moment, and it is not on this machine (put the four MNIST files in {Path(data) / 'MNIST' / 'raw'}).")
            return None
        stamp = file_stamp(Path(current))
        enc = frame_encodings(current, stamp, frame, data)
        key = f"{current}#{FRAME_PREFIX}{frame}"  # the second scatter's and bounds' cache key
        name_a = list_models().get(current, Path(current).name)
        return Second(key, stamp, label, name_a, frame_model(current, stamp, frame), enc,
                      _bounds(key, stamp, enc["z_mean"]))
    return None
