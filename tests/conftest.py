"""Shared fixtures: a real `streamlit run` server on a free port, and a Chromium page.

- ``streamlit_server``: a factory; ``streamlit_server("app.py", env={...})`` starts
  ``streamlit run SCRIPT --server.headless true --server.port N`` from the repo root,
  waits for ``/_stcore/health`` and returns a :class:`Server` (url, proc, log, started).
  Every server it started is stopped at the end of the test.
- ``app_server``: the explorer (app.py) on MNIST from ../shared/mnist ($CVAE_DATA),
  trained models in a temporary runs folder; one per test module.
- ``browser`` (one Chromium per session) and ``page`` (a fresh 1400x1000 page per test); every
  test that uses Chromium is marked ``browser`` (the inner loop leaves those out).
  Chromium is the Debian package at /usr/bin/chromium driven by Playwright for Python.
  Without it the browser tests skip, except under CI=true, where they FAIL.
- ``mnist_dir`` and the ``needs_data`` mark (devkit.needs_data): MNIST, or a skip (a failure
  under CI=true). ``small_mnist``: MNIST's first 1,024 training and 1,000 test images as a data
  folder of their own, for child-process trainings. The plain helpers (data path, hostile
  checkpoints, start_server, a random model) live in ``tests/devkit.py``, shared with
  benchmarks/ (never installed).
- $CVAE_TEST_SHARED: a temporary folder the session's test processes share (removed at its
  end), where devkit computes the shipped model's site parts once for all of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from devkit import (CHROMIUM, CHROMIUM_ARGS, IN_CI, SHARED_ENV, Server, data_dir, require_data, require_prerequisite, start_server,
                    write_small_mnist)

# The suite runs two test processes (pytest-xdist), Streamlit servers, training children and
# Chromium on a few cores at once. PyTorch's OpenMP threads (libgomp) spin-wait at every
# parallel region's barrier by default, so while another process holds a core, each small op
# of a 2-thread process waits for a thread that is not running. Measured on 2 cores beside one
# busy process: a ReLU of 48x64x15x15 takes 10.8 ms with two threads, 2.9 ms with one, 2.3 ms
# with two and OMP_WAIT_POLICY=PASSIVE; 24 tests of the suite ran in 143 s, and in 74 s with
# it. The policy changes no result, only how idle threads wait. It takes effect where torch is
# imported after this line: the test processes (the test modules import torch) and every child
# process (servers, trainings, benchmark scripts); a process that imported torch before (mutmut's
# fork server) keeps the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data: the test reads MNIST (skips without it; fails under CI=true)")
    # A folder the test processes of this session share (pytest-xdist's workers inherit the
    # variable from the controller, which configures first): what is costly and the same for
    # all of them is computed once per session there (devkit.shipped_site_parts).
    if not hasattr(config, "workerinput") and SHARED_ENV not in os.environ:
        os.environ[SHARED_ENV] = config._cvae_shared = tempfile.mkdtemp(prefix="cvae-tests-")


def pytest_unconfigure(config):
    shared = getattr(config, "_cvae_shared", None)
    if shared:
        shutil.rmtree(shared, ignore_errors=True)
        os.environ.pop(SHARED_ENV, None)


def pytest_collection_modifyitems(config, items):
    """Every test that uses Chromium (the ``browser`` fixture, directly or through ``page`` and the
    modules' own page fixtures) is marked ``browser``: the inner loop leaves them out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_data"):
        require_data()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a test skipped for want of MNIST or Chromium is a failure, whichever way
    the skip was written (a skipif on has_data(), a pytest.skip in a fixture)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if any(word in reason for word in ("MNIST", "Chromium", "playwright")):
            report.outcome = "failed"
            report.longrepr = f"CI=true and a prerequisite is missing: {reason}"


@pytest.fixture
def mnist_dir() -> Path:
    """The MNIST folder (devkit.DATA_DIR); skips without MNIST, fails under CI=true."""
    return require_data()


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory) -> Path:
    """A data folder of MNIST's first 1,024 training and 1,000 test images (all ten digits), written
    once per session: for the child-process trainings, which use a few hundred images and would
    otherwise each load all 70,000 and score every epoch on 10,000. Skips without MNIST (fails
    under CI=true)."""
    require_data()
    return write_small_mnist(tmp_path_factory.mktemp("small_mnist"), train=1024, test=1000)


@pytest.fixture
def streamlit_server(tmp_path):
    """Factory: ``streamlit_server(script="app.py", env=None) -> Server``; stopped after the test."""
    started: list[Server] = []

    def start(script: str | Path = "app.py", env: dict | None = None) -> Server:
        s = start_server(script, env, log=tmp_path / f"streamlit-{len(started)}.log")
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """app.py on MNIST ($CVAE_DATA or ../shared/mnist), models trained into a temporary runs/."""
    tmp = tmp_path_factory.mktemp("app_server")
    server = start_server("app.py", {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(tmp / "runs"),
                                     "CVAE_TEST_HOOKS": "1"},  # the page's globalThis.cvaeExplorer
                          log=tmp / "streamlit.log")
    yield server
    server.stop()


def _need_browser(reason: str):
    require_prerequisite(False, reason)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (system package, not Playwright's download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need_browser("playwright is not installed (pip install -r requirements-dev.txt)")
    if not Path(CHROMIUM).is_file():
        _need_browser(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page (1400x1000) in its own context; closed after the test."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(120_000)
    yield pg
    ctx.close()


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves by hand (``clock.t``), in place of the time budget's own
    (cvae.training.budget's ``time`` only: the training loop keeps the real one)."""
    from budgetclock import Clock
    from cvae.training import budget

    c = Clock()
    monkeypatch.setattr(budget, "time", c)
    return c


@pytest.fixture(scope="session")
def model():
    """The shipped model (a test module that needs another defines its own ``model``)."""
    from cvae import load_checkpoint
    from cvae.core.shipped import SHIPPED_CHECKPOINT

    return load_checkpoint(SHIPPED_CHECKPOINT)


@pytest.fixture(scope="session")
def enc():
    """The shipped encodings of the test set (z_mean, z_log_var, label)."""
    from cvae.core.encodings import read_encodings
    from cvae.core.shipped import SHIPPED_ENCODINGS

    return read_encodings(SHIPPED_ENCODINGS)
