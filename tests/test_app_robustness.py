"""The app under hostile files and bad values, through streamlit.testing.v1.AppTest.

A malicious or broken checkpoint picked in the app is one clear message and the page keeps
exploring the model it had; out-of-range values in session state are clamped; bad training
inputs are refused before anything starts.
"""

from __future__ import annotations

import math

import pytest

from cvae.core import shipped
from cvae.core.latent import MAX_GRID_N

from devkit import DATA_DIR, REPO, hostile_files
from ui.explore import MANIFOLD_TAB, VIEW_KEY
from ui.training import EPOCHS, LENGTH_KEY, TRAIN_FORM_KEY

from streamlit.testing.v1 import AppTest

APP = str(REPO / "app.py")
TIMEOUT = 300  # torch is slow to import on a busy 2-core machine
SHIPPED = str(shipped.SHIPPED_CHECKPOINT)

pytestmark = pytest.mark.skipif(not shipped.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(DATA_DIR))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    return tmp_path


def digit_caption(at) -> str:
    caps = [c for c in _image_captions(at) if c.startswith("decoded at z")]
    assert len(caps) == 1, caps
    return caps[0]


def _image_captions(at) -> list[str]:
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "type", None) == "image":
            out.extend(i.caption for i in node.proto.imgs)
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    return out


def test_hostile_checkpoints_are_one_message_and_the_app_keeps_its_model(env):
    runs, pwned = env / "runs", env / "pwned.txt"
    files = hostile_files(runs, pwned)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[VIEW_KEY] = MANIFOLD_TAB
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="model_path").value == SHIPPED
    assert digit_caption(at)
    for kind, path in files.items():
        at.sidebar.selectbox(key="model_path").set_value(path)
        at.run()
        assert not at.exception, (kind, [e.value for e in at.exception])
        assert not pwned.exists(), f"{kind}: code in the checkpoint ran"
        errors = [e.value for e in at.error]
        assert len(errors) == 1, (kind, errors)
        msg = errors[0]
        assert path in msg and "\n" not in msg and "Traceback" not in msg, (kind, msg)
        assert "Still exploring cvae_mnist.pt" in msg, (kind, msg)
        if kind in ("code-in-pickle", "raw-pickle"):
            assert "refused" in msg
        if kind == "latent-3d":
            assert "needs 2-D" in msg
        # The explorer keeps running on the shipped model: digit, scatter, manifold.
        assert digit_caption(at).startswith("decoded at z")
        assert at.get("plotly_chart"), (kind, "no scatter or manifold on the page")
        grid = at.slider(key="grid_n")  # raises KeyError when the manifold's controls are gone
        assert grid.min <= grid.value <= grid.max, (kind, grid.value)
    # Back to the good model: no message left over.
    at.sidebar.selectbox(key="model_path").set_value(SHIPPED)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_a_fresh_session_on_a_bad_checkpoint_falls_back_to_the_shipped_model(env):
    bad = env / "runs" / "garbage.pt"
    bad.write_bytes(b"\x00" * 100)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_path"] = str(bad)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and str(bad) in errors[0] and "Still exploring cvae_mnist.pt" in errors[0], errors
    assert digit_caption(at)


def _caption_point(at) -> tuple[float, float]:
    """The point in the server-side digit's caption, "decoded at z = (z1, z2) ..."."""
    cap = digit_caption(at)
    return tuple(float(v) for v in cap.split("(", 1)[1].split(")", 1)[0].split(","))


@pytest.mark.parametrize("z1,z2", [(1e6, -1e6), (-1e300, 1e300), (float("nan"), float("inf"))])
def test_out_of_range_latent_in_session_state_is_clamped(env, z1, z2):
    """Values put straight into session state never reach the decoder out of range."""
    from ui.latent import DEFAULT_BOUNDS

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["z1"] = z1
    at.session_state["z2"] = z2
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    lo1, hi1, lo2, hi2 = (at.session_state["_latent_bounds"] if "_latent_bounds" in at.session_state
                          else DEFAULT_BOUNDS)
    p1, p2 = _caption_point(at)
    assert math.isfinite(p1) and math.isfinite(p2), digit_caption(at)
    assert lo1 <= p1 <= hi1 and lo2 <= p2 <= hi2, (digit_caption(at), (lo1, hi1, lo2, hi2))


def _set_latent_bad_values_script():
    import streamlit as st

    from ui.latent import set_latent

    st.session_state["_latent_bounds"] = (-1.0, 3.0, -2.0, 2.0)
    st.session_state["results"] = [set_latent(*zz) for zz in (
        (float("nan"), 1.0), (float("inf"), -float("inf")), ("junk", None), (1e308, -1e308), ("0.5", "-0.25"))]


def test_set_latent_clamps_nan_inf_and_junk():
    """set_latent (the entry point for commits, clicks and the features): never NaN, never outside."""
    at = AppTest.from_function(_set_latent_bad_values_script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["results"] == [(1.0, 1.0), (1.0, 0.0), (1.0, 0.0), (3.0, -2.0), (0.5, -0.25)]
    assert (at.session_state["z1"], at.session_state["z2"]) == (0.5, -0.25)


@pytest.mark.parametrize("index", [-1, 10**9])
def test_out_of_range_selection_is_refused(env, index):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["selected_index"] = index
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("There is no test digit" in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.session_state["selected_index"] is None


def test_out_of_range_manifold_settings_are_clamped_or_refused(env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[VIEW_KEY] = MANIFOLD_TAB
    at.run()
    for n in (10_000, -3, 0):
        at.session_state["grid_n"] = n
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert 2 <= at.slider(key="grid_n").value <= MAX_GRID_N
    at.session_state["grid_z1"] = (2.0, -2.0)  # reversed
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("low end below its high end" in w.value for w in at.warning)


@pytest.mark.parametrize("key,value", [
    ("train_epochs", 0), ("train_epochs", -5), ("train_epochs", 10**6), ("train_batch", 0),
    ("train_batch", -32), ("train_lr", 0.0), ("train_lr", -0.1), ("train_lr", 50.0), ("train_limit", -1),
])
def test_bad_training_inputs_never_reach_the_app(env, key, value):
    """Out-of-range training values are refused by the form's inputs: the app only ever sees
    values inside their bounds (which TrainConfig accepts). Nothing starts, nothing is written."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[TRAIN_FORM_KEY] = True  # the user opened the form
    at.session_state[LENGTH_KEY] = EPOCHS  # and chose epochs (the quick run has no such inputs)
    at.run()
    box = at.sidebar.number_input(key=key)
    lo, hi = box.proto.min, box.proto.max
    box.set_value(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    got = at.sidebar.number_input(key=key).value
    assert lo <= got <= hi and got != value, (key, value, got)
    assert not [b for b in at.sidebar.button if b.key == "stop_training"]
    assert not list((env / "runs").glob("*.pt"))


def test_encodings_that_are_not_2d_are_refused_and_the_page_stops_there(env, monkeypatch):
    """A model that loads as 2-D but whose encodings are not (a stale or foreign npz): one
    message, and no explorer, scatter or decoder is drawn from them."""
    import numpy as np

    import ui.models

    rng = np.random.default_rng(0)
    bad = {"z_mean": rng.normal(size=(50, 3)).astype(np.float32), "z_log_var": np.zeros((50, 3), np.float32),
           "label": np.arange(50) % 10, "source": "a test"}
    monkeypatch.setattr(ui.models, "load_encodings", lambda path, stamp, data: bad)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["The encodings of this model have a 3-D latent space; the explorer needs 2-D."]
    assert not [n for n in _walk(at) if getattr(n, "type", None) in ("plotly_chart", "bidi_component")]
    assert not _image_captions(at)  # no digit decoded from them either
    assert at.title and at.sidebar.selectbox(key="model_path").value == SHIPPED  # the rest of the page stays


def _walk(at):
    stack = [at._tree]
    while stack:
        node = stack.pop()
        yield node
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())


def test_a_collapsed_dimension_is_named_in_the_sidebar(env, monkeypatch):
    import numpy as np

    import ui.models

    rng = np.random.default_rng(0)
    enc = dict(shipped.shipped_encodings())
    enc["z_mean"] = np.stack([enc["z_mean"][:, 0], rng.normal(0, 0.02, len(enc["z_mean"]))], axis=1).astype(np.float32)
    enc["source"] = "a test"
    original = ui.models.load_encodings
    monkeypatch.setattr(ui.models, "load_encodings", lambda path, stamp, data: enc)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.sidebar.warning]
    assert len(warnings) == 1 and warnings[0].startswith("Posterior collapse in z2 (spread 0.02"), warnings
    # The shipped model's own encodings spread in both dimensions: no warning.
    monkeypatch.setattr(ui.models, "load_encodings", original)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not [w.value for w in at.sidebar.warning]
    assert any("Spread of z_mean over the test digits" in c.value for c in at.sidebar.caption)
