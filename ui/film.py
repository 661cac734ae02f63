"""The training film in the page: live while a model trains, and replayed for a checkpoint.

``live_film_ui(snapshots)`` draws a run in progress from the trainer's snapshot events
(cvae.training.recorder): the latest scatter of the 2,000 film digits on fixed axes, the loss so far and
the small manifold decoded at that moment. ``film_replay_ui(model)`` replays a checkpoint's
film as a Plotly animation (play button, slider) with a GIF download, or says that there is
none. All figures and files come from :mod:`cvae.draw.film`.
"""

from __future__ import annotations

import hashlib
import re

import streamlit as st

from cvae.core.film import Film, frame_caption
from cvae.core.shipped import replay_for
from cvae.draw.film import film_figure, film_gif, live_figure

NO_FILM = ("This model has no training film: it was trained without snapshots (with `--no-film`, or by a "
           "version that recorded none). Training in the app or with `python -m cvae train` records one.")


def portable_command(command: str) -> str:
    """A recorded command as a reader can run it: the data folder it named on the machine that
    ran it (``--data-dir ../shared/mnist``) is left out (``train`` finds MNIST through CVAE_DATA
    or its own default)."""
    return re.sub(r"\s--data-dir(?:=|\s+)\S+", "", command)


def shipped_note(film: Film) -> str | None:
    """Where a shipped film comes from, for the page (None when it is the model's own run)."""
    info = film.info
    if not info.get("separate_run"):
        return None
    val = info.get("best_val_loss")
    return ("This film comes from a separate run of the default recipe "
            f"(`{portable_command(info.get('command', 'python -m cvae train'))}`"
            + (f", {info['epochs']} epochs, val_loss {val:.1f}" if val is not None and info.get("epochs") else "")
            + "), not from the shipped model itself, which was trained further in several stages and "
              "carries no snapshots of its own. The clouds form the same way; where each one settles differs.")


# Why: every tab following a run reruns its view every few seconds (a class of 100 tabs: 20
# reruns a second), and this figure (2,000 points, a manifold, the axes from every snapshot so
# far) took ~50 ms to build, half the server's time under that load (benchmarks/class_load.py
# --train --profile). It changes only when a snapshot arrives: built once per snapshot, for
# every tab (the figure is never changed after it is built).
@st.cache_resource(show_spinner=False, max_entries=8)
def _live_figure(run_id: str, count: int, _snapshots: list[dict]):
    return live_figure(_snapshots[:count])


def live_film_ui(snapshots: list[dict], *, run_id: str = "", key: str = "film_live") -> None:
    """The latest snapshot of a run in progress (the caller reruns this as snapshots arrive).
    ``run_id`` names the run, so that every tab following it shares one figure per snapshot."""
    if not snapshots:
        st.caption("The training film starts with the first snapshot, taken before the first step.")
        return
    last = snapshots[-1]
    st.plotly_chart(_live_figure(run_id, len(snapshots), snapshots), key=key, config={"displaylogo": False})
    st.caption(f"Snapshot {len(snapshots)}: {frame_caption(last)}. The 2,000 film digits (200 of each) are "
               "encoded at the start, several times in the first epoch and after every epoch.")


def _fingerprint(film: Film) -> str:
    h = hashlib.sha1(film.z.tobytes())
    h.update(film.step.tobytes())
    h.update(film.manifold.tobytes())
    return h.hexdigest()


@st.cache_resource(show_spinner=False, max_entries=4)
def _figure(fingerprint: str, _film: Film):
    # why: the animation's 2,000 points x every frame take ~0.3 s to build; the page reruns on
    # every slider move elsewhere, and the film of a model never changes (keyed by its content).
    return film_figure(_film)


@st.cache_data(show_spinner=False, max_entries=4)
def _gif(fingerprint: str, _film: Film) -> bytes:
    # why: drawing every frame with Pillow is done once per film, and only when someone downloads it.
    return film_gif(_film)


def film_replay_ui(model, *, key: str = "film_replay") -> None:
    """The training film of ``model`` (a loaded checkpoint): its own, or the shipped film beside
    the shipped model (with a note), or a line saying it has none."""
    replay = replay_for(model)
    if replay.problem:
        st.warning(f"This checkpoint's film could not be read: {replay.problem}")
    if replay.film is None:
        origin = model.meta.get("extra", {}).get("imported_from")
        if isinstance(origin, dict):
            st.info(f"This model was opened from {origin.get('file')}: it was trained elsewhere, so there is no "
                    "training film of it.")
        elif not replay.problem:
            st.info(NO_FILM)
        return
    film = replay.film
    if replay.shipped and (note := shipped_note(film)):
        st.caption(note)
    fp = _fingerprint(film)
    st.plotly_chart(_figure(fp, film), key=key, config={"displaylogo": False})
    st.caption(f"{len(film)} snapshots of {film.z.shape[1]:,} test digits, from before the first step to "
               f"epoch {film.epoch[-1]:.0f}. Press ▶ Play, or drag the slider; the loss panel marks the frame.")
    st.download_button("Download the film (GIF)", data=lambda: _gif(fp, film), file_name="training_film.gif",
                       mime="image/gif", key=f"{key}_gif", on_click="ignore",
                       help="An animated GIF, one frame per snapshot (drawn with Pillow).")
