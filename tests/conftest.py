"""Shared fixtures: a real `streamlit run` server on a free port, and a Chromium page.

- ``streamlit_server``: a factory; ``streamlit_server("app.py", env={...})`` starts
  ``streamlit run SCRIPT --server.headless true --server.port N`` from the repo root,
  waits for ``/_stcore/health`` and returns a :class:`Server` (url, proc, log, started).
  Every server it started is stopped at the end of the test.
- ``app_server``: the explorer (app.py) on MNIST from ../shared/mnist ($CVAE_DATA),
  trained models in a temporary runs folder; one per test module.
- ``browser`` (one Chromium per session) and ``page`` (a fresh 1400x1000 page per test).
  Chromium is the Debian package at /usr/bin/chromium driven by Playwright for Python.
  Without it the browser tests skip, except under CI=true, where they FAIL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
for _p in (TESTS, REPO):  # test files `import helpers`, `from apps import ...`, `import app`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # WebGL (Plotly's scattergl) through the software rasteriser, with --disable-gpu.
                 "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def data_dir() -> Path:
    """MNIST: $CVAE_DATA, else ../shared/mnist beside the repo (derived, not hard-coded)."""
    return Path(os.environ.get("CVAE_DATA") or REPO.parent / "shared" / "mnist").resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    started: float  # time.monotonic() when the process was launched
    healthy_after: float  # seconds from launch to a healthy /_stcore/health

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(script: str | Path = "app.py", env: dict | None = None, log: Path | None = None,
                 timeout: float = 120.0) -> Server:
    """Launch `streamlit run` on a free port and wait until it is healthy."""
    port = free_port()
    log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"streamlit-{port}.log"
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = Server(url, proc, log, t0, 0.0)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}:\n{server.log_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    server.healthy_after = time.monotonic() - t0
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f}s:\n{server.log_text()[-4000:]}")


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
    server = start_server("app.py", {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(tmp / "runs")},
                          log=tmp / "streamlit.log")
    yield server
    server.stop()


def _need_browser(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


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
