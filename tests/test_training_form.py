"""The training form (ui.training.train_form_ui) through AppTest, without training: the job's child
process is not started (TrainJob._start does nothing here), so each test checks what the form
asked for (the run's config and file) and what the page shows while that run is going, in a
fraction of the time a real run takes. tests/test_training_ui.py runs real ones."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from cvae.training.jobs import JobBusyError, JobRegistry, TrainJob
from devkit import REPO

from streamlit.testing.v1 import AppTest

HARNESS = str(REPO / "tests" / "apps" / "training_harness.py")


def registry() -> JobRegistry:
    from ui.training import job_registry

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    return job_registry()


@pytest.fixture
def env(monkeypatch, tmp_path, small_mnist):
    monkeypatch.setenv("CVAE_DATA", str(small_mnist))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    started = []

    def no_process(job, ctx):  # the job runs, as far as the page can tell, but no child trains
        job._stop = SimpleNamespace(value=0)
        started.append(job)

    monkeypatch.setattr(TrainJob, "_start", no_process)
    yield SimpleNamespace(path=tmp_path, started=started)
    for job in started:
        if job._hard_stop_timer is not None:
            job._hard_stop_timer.cancel()
        job.status = "stopped"
        job._done.set()
        registry()._jobs.pop(job.id, None)


def page() -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=120)
    return at.run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def button(at: AppTest, label: str):
    found = [b for b in at.sidebar.button if b.label == label]
    return found[0] if found else None


def blocks_and_elements(at: AppTest) -> list:
    """Every node of the page, depth first."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        out.append(node)
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    return out


def blocks(at: AppTest) -> list:
    return [n for n in blocks_and_elements(at) if getattr(getattr(n, "proto", None), "DESCRIPTOR", None) is not None
            and n.proto.DESCRIPTOR.name == "Block"]


def progress(at: AppTest) -> list[str]:
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "type", None) == "progress":
            out.append(node.proto.text)
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    return out


def test_the_epochs_form_starts_the_run_it_shows(env):
    at = page()
    at.sidebar.radio(key="train_length").set_value("Epochs").run()
    at.sidebar.number_input(key="train_epochs").set_value(3)
    at.sidebar.number_input(key="train_batch").set_value(64)
    at.sidebar.number_input(key="train_lr").set_value(0.002)
    at.sidebar.number_input(key="train_seed").set_value(7)
    at.sidebar.number_input(key="train_limit").set_value(500)
    button(at, "Train").click()
    at.run()
    no_errors(at)
    (job,) = env.started
    c = job.cfg
    assert (c.recipe, c.epochs, c.seconds, c.batch_size, c.lr, c.seed, c.limit, c.patience, c.device) == \
        ("fast", 3, None, 64, 0.002, 7, 500, 0, "cpu")
    assert c.schedule == "cosine" and c.warmup == 0.02  # the rest is the recipe's
    assert job.out.parent == env.path / "runs" and job.out.name.endswith("_e3_b64.pt")
    assert at.session_state["train_job_id"] == job.id
    # While it runs: the progress says so, Train waits, Stop is offered.
    assert progress(at) == ["Training: starting the training process..."]
    assert button(at, "Train").disabled and button(at, "Stop training") is not None


def test_the_quick_form_is_the_quick_recipe_fitted_to_its_seconds(env):
    at = page()
    assert [c.value for c in at.sidebar.caption if c.value.startswith("Batch")] == \
        ["Batch 32, Adam 0.006, warm-up then cosine, fitted to 60 s."]
    at.sidebar.number_input(key="train_seconds").set_value(90)
    at.sidebar.number_input(key="train_seed").set_value(3)
    button(at, "Train").click()
    at.run()
    no_errors(at)
    assert [c.value for c in at.sidebar.caption if c.value.startswith("Batch")] == \
        ["Batch 32, Adam 0.006, warm-up then cosine, fitted to 90 s."]
    (job,) = env.started
    c = job.cfg
    assert (c.recipe, c.seconds, c.batch_size, c.lr, c.seed, c.limit, c.warmup) == ("quick", 90, 32, 6e-3, 3, None, 0.3)
    assert job.out.name.endswith("_90s.pt")


def test_stop_asks_the_run_to_stop_and_says_so(env):
    at = page()
    button(at, "Train").click()
    at.run()
    (job,) = env.started
    button(at, "Stop training").click()
    at.run()
    no_errors(at)
    assert job.stop_requested and job._stop.value == 1
    assert [t.value for t in at.toast] == ["Stopping after the current step..."]
    assert progress(at) == ["Training: stopping after the current step..."]
    assert button(at, "Stop training").disabled


def test_another_tab_sees_the_run_and_cannot_start_a_second(env):
    mine = page()
    button(mine, "Train").click()
    mine.run()
    other = page()
    no_errors(other)
    assert button(other, "Train").disabled and progress(other) == ["Training: starting the training process..."]
    assert "Started from another tab or session." in [c.value for c in other.sidebar.caption]
    assert other.session_state["_watched_job_id"] == env.started[0].id


def test_a_run_started_elsewhere_at_the_same_moment_is_one_sentence(env, monkeypatch):
    def busy(*a, **k):
        raise JobBusyError("another training is running (maybe from another tab); wait for it or stop it")

    at = page()
    monkeypatch.setattr(JobRegistry, "start", busy)
    button(at, "Train").click()
    at.run()
    assert [e.value for e in at.sidebar.error] == [
        "another training is running (maybe from another tab); wait for it or stop it"]
    assert "train_job_id" not in at.session_state and not progress(at)


def test_without_mnist_the_form_says_where_it_looked(env, monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "no-mnist"))
    at = page()
    button(at, "Train").click()
    at.run()
    (err,) = [e.value for e in at.sidebar.error]
    assert err.startswith(f"Training needs MNIST in {tmp_path / 'no-mnist' / 'MNIST' / 'raw'} (set CVAE_DATA")
    assert "a folder that holds MNIST/raw/" in err  # the folder's name as it must be spelt (case matters)
    assert env.started == [] and not progress(at)


def finish(job: TrainJob, status: str, *, saved: bool, **fields) -> None:
    """End ``job`` as its reader thread would: every field first, the status last."""
    job.saved = saved
    for k, v in fields.items():
        setattr(job, k, v)
    job.status = status
    job._done.set()


def test_a_finished_run_switches_this_tab_to_its_model_once(env):
    at = page()
    button(at, "Train").click()
    at.run()
    (job,) = env.started
    other = page()  # another tab, following the run
    job.out.parent.mkdir(parents=True, exist_ok=True)
    job.out.write_bytes(b"the model")
    job._handle("event", {"kind": "epoch", "epoch": 1, "loss": 180.0, "val_loss": 170.0})
    finish(job, "done", saved=True, result={"message": "finished 1 epoch; best epoch 1"})
    at.run()
    no_errors(at)
    assert at.session_state["_pending_model"] == str(job.out)
    assert [s.value for s in at.sidebar.success] == [f"Saved {job.out.name} and switched to it."]
    assert progress(at) == ["Finished: finished 1 epoch; best epoch 1"]
    assert not button(at, "Train").disabled and button(at, "Stop training") is None
    at.run()  # handled once: the notice is gone, the end stays acknowledged
    assert not at.sidebar.success and at.session_state["_acknowledged_job"] == job.id
    # The other tab is told where the model is, and does not switch.
    other.run()
    assert f"Saved {job.out.name}: pick it under Model to explore." in [c.value for c in other.sidebar.caption]
    assert "_pending_model" not in other.session_state


def test_a_failed_run_shows_its_reason_and_switches_to_nothing(env):
    at = page()
    button(at, "Train").click()
    at.run()
    (job,) = env.started
    finish(job, "failed", saved=False, error={"message": "the runs folder cannot be written"})
    at.run()
    assert [e.value for e in at.sidebar.error] == ["the runs folder cannot be written"]
    assert progress(at) == ["Failed: the runs folder cannot be written"]
    assert "_pending_model" not in at.session_state and not at.sidebar.success
    assert not button(at, "Train").disabled


@pytest.fixture
def polls(monkeypatch) -> list:
    """The polling interval of each run of the training status (the fragment's run_every)."""
    import streamlit as st

    seen, real = [], st.fragment

    def spy(fn=None, *, run_every=None, **kw):
        seen.append(run_every)
        return real(fn, run_every=run_every, **kw)

    monkeypatch.setattr(st, "fragment", spy)
    return seen


def test_the_tab_that_started_a_run_polls_every_second_others_every_five(env, polls):
    at = page()
    assert polls[-1] is None  # no run: no polling
    button(at, "Train").click()
    at.run()
    assert polls[-1] == 1.0
    other = page()
    assert polls[-1] == 5.0  # ten tabs following a run must not keep a small server busy
    (job,) = env.started
    finish(job, "stopped", saved=False, result={"message": "training stopped by request"})
    at.run()  # the end, shown once: the tab reruns the page and stops polling
    other.run()
    assert polls[-1] is None
    # The tab that followed it handled the end too (once: the whole page reran, which brings its
    # Train button back in the app, where only the status part reruns while polling) and still shows it.
    assert other.session_state["_acknowledged_watch"] == job.id
    assert progress(other) == ["Stopped: training stopped by request (no epoch finished, nothing was saved)"]
    at.run()
    assert polls[-1] is None


# What the form offers, as a person sees it: each input's label and range (its step where it has one).
FORM = {
    "train_seconds": ("Seconds", 10, 3600, 10),
    "train_epochs": ("Epochs", 1, 200, 1),
    "train_batch": ("Batch size", 1, 4096, 1),
    "train_lr": ("Learning rate", 1e-5, 1.0, 1e-4),
    "train_seed": ("Seed", 0, 2**31 - 1, 1),
    "train_limit": ("Training images (0 = all 60,000)", 0, 60000, 1000),
}


def inputs(at: AppTest) -> dict:
    return {n.key: (n.label, n.min, n.max, n.step) for n in at.sidebar.number_input}


def test_the_form_is_labelled_and_offers_its_ranges(env):
    import cvae

    at = page()
    (length,) = at.sidebar.radio
    assert (length.label, length.options, length.value) == ("How long", ["Quick: a time budget", "Epochs"],
                                                            "Quick: a time budget")
    assert length.horizontal and length.help
    assert inputs(at) == {k: FORM[k] for k in ("train_seconds", "train_seed", "train_limit")}
    assert "loading the data" in at.sidebar.number_input(key="train_seconds").help  # what the budget covers
    length.set_value("Epochs").run()
    assert inputs(at) == {k: FORM[k] for k in ("train_epochs", "train_batch", "train_lr", "train_seed",
                                               "train_limit")}
    helps = {n.key: n.help for n in at.sidebar.number_input}
    # The epochs' help tells the default recipe's schedule as it is.
    recipe = cvae.RECIPES[cvae.DEFAULT_RECIPE]
    assert recipe["schedule"] == "cosine" and "cosine" in helps["train_epochs"]
    assert f"warm-up ({recipe['warmup']:.0%} of the steps)" in helps["train_epochs"]
    assert helps["train_limit"]
    assert button(at, "Train").proto.type == "primary"
    # The form sits in the app's expander: no frame of its own inside that one.
    (form,) = [b.proto.form for b in blocks(at) if b.proto.WhichOneof("type") == "form"]
    assert not form.border


def test_an_untouched_form_trains_the_recipe_as_it_is(env):
    import cvae

    at = page()
    button(at, "Train").click()
    at.run()
    no_errors(at)
    c, recipe = env.started[0].cfg, cvae.RECIPES["quick"]
    assert (c.recipe, c.seconds, c.batch_size, c.lr, c.seed, c.limit) == \
        ("quick", recipe["seconds"], recipe["batch_size"], recipe["lr"], 0, None)
    finish(env.started[0], "stopped", saved=False, result={"message": "training stopped by request"})
    at = page()
    at.sidebar.radio(key="train_length").set_value("Epochs").run()
    button(at, "Train").click()
    at.run()
    no_errors(at)
    c, recipe = env.started[1].cfg, cvae.RECIPES[cvae.DEFAULT_RECIPE]
    assert (c.recipe, c.epochs, c.batch_size, c.lr, c.seed, c.limit) == \
        (cvae.DEFAULT_RECIPE, recipe["epochs"], recipe["batch_size"], recipe["lr"], 0, None)


@pytest.mark.parametrize("edge", [1, 2])  # 1: every input at its lowest, 2: at its highest
def test_every_edge_of_the_form_starts_a_run(env, edge):
    at = page()
    at.sidebar.number_input(key="train_seconds").set_value(FORM["train_seconds"][edge])
    button(at, "Train").click()
    at.run()
    no_errors(at)
    assert env.started[0].cfg.seconds == FORM["train_seconds"][edge]
    finish(env.started[0], "stopped", saved=False, result={"message": "training stopped by request"})
    at = page()
    at.sidebar.radio(key="train_length").set_value("Epochs").run()
    for key in ("train_epochs", "train_batch", "train_lr", "train_seed", "train_limit"):
        at.sidebar.number_input(key=key).set_value(FORM[key][edge])
    button(at, "Train").click()
    at.run()
    no_errors(at)
    c = env.started[1].cfg
    assert (c.epochs, c.batch_size, c.lr, c.seed, c.limit or 0) == tuple(
        FORM[k][edge] for k in ("train_epochs", "train_batch", "train_lr", "train_seed", "train_limit"))


def _form_on(data: str, runs: str) -> None:  # an app whose data folder is not $CVAE_DATA
    from ui.training import train_form_ui

    train_form_ui(data, runs)


def test_the_form_trains_on_the_data_folder_it_is_given(env, monkeypatch, small_mnist, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "no-mnist"))
    at = AppTest.from_function(_form_on, args=(str(small_mnist), str(tmp_path / "runs")), default_timeout=120).run()
    (train,) = [b for b in at.button if b.label == "Train"]
    train.click()
    at.run()
    no_errors(at)
    (job,) = env.started
    assert job.data == str(small_mnist) and job.out.parent == tmp_path / "runs"


def test_the_learning_rate_shows_the_recipes_digits(env):
    import cvae

    at = page()
    at.sidebar.radio(key="train_length").set_value("Epochs").run()
    shown = at.sidebar.number_input(key="train_lr").proto.format
    for recipe in cvae.RECIPES.values():  # 0.004 and 0.006 must not read 0.00
        assert float(shown % recipe["lr"]) == pytest.approx(recipe["lr"], rel=0.05)


def test_the_loss_curve_shows_from_a_runs_first_steps(env):
    """During the first epoch (step losses, no epoch yet) the curve is there already."""
    from test_app import plotly_spec

    at = page()
    button(at, "Train").click()
    at.run()
    with pytest.raises(AssertionError, match="no plotly chart"):  # no loss yet: no curve
        plotly_spec(at, "train_live_chart")
    (job,) = env.started
    job._handle("phase", "training")
    for n in range(1, 11):
        job._handle("event", {"kind": "step", "epoch": 1, "step": n, "steps": 100, "loss": 200.0 - n})
    at.run()
    no_errors(at)
    assert 190.0 in curve_ys(at)  # the newest step's loss
    # Each new step point, and then an epoch alone, reaches the curves at the next rerun.
    for n in range(11, 21):
        job._handle("event", {"kind": "step", "epoch": 1, "step": n, "steps": 100, "loss": 200.0 - n})
    at.run()
    assert 180.0 in curve_ys(at)
    job._handle("event", {"kind": "epoch", "epoch": 1, "loss": 185.0, "val_loss": 177.5})
    at.run()
    assert 177.5 in curve_ys(at)
    # Like every chart of the app, without Plotly's logo in its toolbar.
    (chart,) = [n for n in blocks_and_elements(at) if getattr(n, "type", None) == "plotly_chart"]
    assert json.loads(chart.proto.config).get("displaylogo") is False


def curve_ys(at: AppTest) -> list[float]:
    from test_app import plotly_array, plotly_spec

    return np.concatenate([plotly_array(t["y"]) for t in plotly_spec(at, "train_live_chart")["data"]
                           if "y" in t]).tolist()


def test_a_new_run_shows_its_own_curves(env):
    """Two runs at the same point (one epoch, as many step points) are two charts, not one."""
    at = page()
    for k, (val_loss, other) in enumerate(((170.0, 150.0), (150.0, 170.0))):
        button(at, "Train").click()
        at.run()
        job = env.started[k]
        job._handle("event", {"kind": "step", "epoch": 1, "step": 100, "steps": 100, "loss": val_loss + 10})
        job._handle("event", {"kind": "epoch", "epoch": 1, "loss": val_loss + 5, "val_loss": val_loss})
        at.run()
        assert val_loss in curve_ys(at) and other not in curve_ys(at)
        finish(job, "stopped", saved=False, result={"message": "training stopped by request"})
        at.run()


def test_a_run_that_ends_as_another_tab_starts_one_still_switches_its_tab(env):
    """The run ends, and another tab starts the next before this tab's next poll: this tab still
    handles its own run's end (its model), then follows the new run."""
    at = page()
    button(at, "Train").click()
    at.run()
    (mine,) = env.started
    mine.out.parent.mkdir(parents=True, exist_ok=True)
    mine.out.write_bytes(b"the model")
    mine._handle("event", {"kind": "epoch", "epoch": 1, "loss": 180.0, "val_loss": 170.0})
    finish(mine, "done", saved=True, result={"message": "finished 1 epoch; best epoch 1"})
    other = page()
    button(other, "Train").click()
    other.run()
    no_errors(other)
    assert len(env.started) == 2
    at.run()
    no_errors(at)
    assert at.session_state["_pending_model"] == str(mine.out)
    assert [s.value for s in at.sidebar.success] == [f"Saved {mine.out.name} and switched to it."]
    at.run()
    assert progress(at) == ["Training: starting the training process..."]  # the other tab's run, now
    assert "Started from another tab or session." in [c.value for c in at.sidebar.caption]


def test_a_new_run_shows_its_own_film(env):
    """Two runs with as many snapshots are two films, not one (each run's snapshot, not a cached one)."""
    from test_app import plotly_array, plotly_spec

    at = page()
    rng = np.random.default_rng(0)
    for k in range(2):
        button(at, "Train").click()
        at.run()
        job = env.started[k]
        z = rng.normal(size=(200, 2)).astype(np.float16)
        job._handle("event", {"kind": "snapshot", "step": 0, "epoch": 0.0, "z": z, "labels": np.arange(200) % 10,
                              "loss": None, "val_loss": None})
        at.run()
        no_errors(at)
        film = plotly_spec(at, "film_live")
        xs = np.concatenate([plotly_array(t["x"]) for t in film["data"] if t.get("type") == "scattergl"])
        assert sorted(xs.astype(np.float32)) == sorted(z[:, 0].astype(np.float32))
        finish(job, "stopped", saved=False, result={"message": "training stopped by request"})
        at.run()


def test_stop_says_what_it_keeps(env):
    at = page()
    button(at, "Train").click()
    at.run()
    assert "best epoch" in button(at, "Stop training").help


def test_a_tab_is_told_to_pick_a_model_only_when_another_tabs_run_saved_one(env):
    at = page()
    button(at, "Train").click()
    at.run()
    (job,) = env.started
    other = page()
    finish(job, "stopped", saved=False, result={"message": "training stopped by request"})
    other.run()
    at.run()
    for tab in (at, other):
        assert not [c.value for c in tab.sidebar.caption if c.value.startswith("Saved")]


def test_two_runs_in_one_second_never_share_a_file_even_when_the_random_tag_repeats(env, monkeypatch):
    """The first run's file is not written yet; the second is given another name all the same."""
    import datetime as dt
    import itertools

    from ui import training

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 7, 6, 15, 42)

    monkeypatch.setattr(training, "_dt", SimpleNamespace(datetime=Frozen))  # the form's clock only
    tags = itertools.chain(["aaaaaa", "aaaaaa"], itertools.cycle(["bbbbbb"]))
    monkeypatch.setattr(training.secrets, "token_hex", lambda n: next(tags))
    at = page()
    for k in range(2):
        button(at, "Train").click()
        at.run()
        no_errors(at)
        finish(env.started[k], "stopped", saved=False, result={"message": "training stopped by request"})
        at.run()
    first, second = (j.out for j in env.started)
    assert first.name == "cvae_20261207-061542-aaaaaa_60s.pt" and second != first
