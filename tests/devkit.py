"""What the tests and the benchmarks share: plain functions and classes, no fixtures
(tests/conftest.py holds those). A development tool, never installed: the tests import it from
their own folder, the benchmarks through benchmarks/_common.py.

- The MNIST folder: :func:`data_dir` ($CVAE_DATA, else ../shared/mnist beside the repo) is
  the one place it is resolved; :data:`DATA_DIR`, :func:`has_data`, :func:`require_data` and
  the ``needs_data`` mark read it. Without MNIST a test that needs it skips, except under
  CI=true, where it FAILS (:func:`require_prerequisite`).
- Hostile checkpoints: :class:`ExecOnLoad` / :class:`ShellOnLoad` (pickles that run code when
  loaded unsafely), :func:`write_evil` and :func:`hostile_files`.
- :func:`random_model`: a CVAE with random decoder weights and biases.
- A real ``streamlit run`` server: :func:`start_server` (waits on /_stcore/health), and the
  Chromium binary and flags the browser tests and benchmarks use.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import pickle
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # WebGL (Plotly's scattergl) through the software rasteriser, with --disable-gpu.
                 "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]


# --------------------------------------------------------------------------- prerequisites


def require_prerequisite(ok: bool, reason: str) -> None:
    """Skip the calling test when ``ok`` is false; under CI=true fail it instead."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def data_dir() -> Path:
    """MNIST: $CVAE_DATA, else ../shared/mnist beside the repo (CI clones it with ../shared beside)."""
    return Path(os.environ.get("CVAE_DATA") or REPO.parent / "shared" / "mnist").resolve()


DATA_DIR = data_dir()
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")


def has_data() -> bool:
    """True when all four MNIST files are in DATA_DIR/MNIST/raw."""
    return all((DATA_DIR / "MNIST" / "raw" / f).is_file() for f in _MNIST_FILES)


def require_data() -> Path:
    """DATA_DIR, or skip the calling test (fail it under CI=true) when MNIST is not there."""
    require_prerequisite(has_data(), f"MNIST not found in {DATA_DIR / 'MNIST' / 'raw'} (set CVAE_DATA)")
    return DATA_DIR


# Mark a test or module (``pytestmark = needs_data``): conftest calls require_data() first.
needs_data = pytest.mark.needs_data


def cli(*args, cwd: Path | str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m cvae ARGS`` run in this process (``cvae.cli.main``), for the tests whose subject
    is what the command does, not the process boundary: no interpreter and torch to start (1-2 s a
    call). Returns what :func:`subprocess.run` would: the exit status (an argparse error's 2, a
    traceback on stderr and 1 for an exception that escapes main) and the text of stdout and stderr.
    ``env`` adds to os.environ for the call; ``cwd`` is the folder the command runs in (the repo's
    root when None, as ``python -m cvae`` is run from it)."""
    import contextlib
    import traceback

    import torch

    from cvae.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    try:
        os.environ.update({k: str(v) for k, v in (env or {}).items()})
        os.chdir(cwd if cwd is not None else REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse's errors and --help
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # what would reach the interpreter: a traceback and status 1
                traceback.print_exc()
                rc = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["python", "-m", "cvae", *argv], int(rc or 0), out.getvalue(), err.getvalue())


def write_small_mnist(folder: Path, train: int, test: int) -> Path:
    """The first ``train`` training and ``test`` test images of MNIST (DATA_DIR), with their
    labels, in MNIST's own files under ``folder/MNIST/raw`` (torchvision reads them as MNIST):
    for child processes that train on a few hundred images and would otherwise load all 70,000.
    Returns ``folder``; the caller has checked that MNIST is there (require_data)."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, n in zip(_MNIST_FILES, (train, train, test, test)):
        src = (DATA_DIR / "MNIST" / "raw" / name).read_bytes()
        header = 16 if "images" in name else 8  # magic, count (and rows, columns): big-endian int32
        have = int.from_bytes(src[4:8], "big")
        if not 0 < n <= have:
            raise ValueError(f"{name}: {n} images asked for, {have} there")
        item = 28 * 28 if "images" in name else 1
        (raw / name).write_bytes(src[:4] + n.to_bytes(4, "big") + src[8:header] + src[header:header + n * item])
    return folder


# --------------------------------------------------------------------------- hostile checkpoints


class ExecOnLoad:
    """Unpickling this runs Python code that writes 'pwned' to ``target`` (the classic exploit)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


class ShellOnLoad:
    """Unpickling this runs a shell command (os.system) that creates ``target``."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch '{self.target}'",))


EVIL_KINDS = ["exec-torch-zip", "system-torch-zip", "exec-raw-pickle"]


def write_evil(kind: str, path: Path, target: Path) -> Path:
    """A file that looks like one of our checkpoints from the outside, with a gadget inside that
    creates ``target`` if it is ever unpickled unsafely. ``kind``: one of :data:`EVIL_KINDS`."""
    import torch

    from cvae.core import checkpoint as ck

    gadget = ExecOnLoad(target) if kind.startswith("exec") else ShellOnLoad(target)
    payload = {"format": ck.FORMAT, "format_version": ck.FORMAT_VERSION,
               "model_config": {"latent_dim": 2, "filters": [32, 64], "dense": 16},
               "state_dict": {}, "extra": {"note": gadget}}
    if kind.endswith("raw-pickle"):  # the legacy (non-zip) format torch.load also reads
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    return path


def hostile_files(folder: Path, pwned: Path) -> dict[str, str]:
    """One file of each kind a person might pick, in ``folder``; returns {kind: path}."""
    import torch

    from cvae import CVAE, save_checkpoint

    good_path = folder / ".good-source.pt"
    good = save_checkpoint(CVAE(), good_path).read_bytes()
    files = {
        "code-in-pickle": lambda p: write_evil("exec-torch-zip", p, pwned),
        "raw-pickle": lambda p: p.write_bytes(pickle.dumps(ExecOnLoad(pwned), protocol=2)),
        "empty": lambda p: p.write_bytes(b""),
        "truncated": lambda p: p.write_bytes(good[: len(good) // 2]),
        "random-bytes": lambda p: p.write_bytes(random.Random(3).randbytes(5000)),
        "wrong-architecture": lambda p: torch.save(
            {**torch.load(good_path, weights_only=True), "state_dict": CVAE(filters=(16, 32)).state_dict()}, p),
        "latent-3d": lambda p: save_checkpoint(CVAE(latent_dim=3), p),
    }
    out = {}
    for kind, write in files.items():
        path = folder / f"{kind}.pt"
        write(path)
        out[kind] = str(path)
    good_path.unlink()
    return out


# --------------------------------------------------------------------------- a real streamlit server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc=None, timeout: float = 30.0) -> None:
    """Until something listens on 127.0.0.1:``port``; RuntimeError if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"the server exited with code {proc.returncode}: {err}") from None
            time.sleep(0.05)  # poll interval while the server starts, not a synchronisation
    raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f} s")


def serve_folder(folder: Path) -> tuple[subprocess.Popen, str]:
    """``python -m http.server`` on a free port for ``folder`` (a static site); (process, URL)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-d", str(folder), "-b", "127.0.0.1", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def touch(cdp, points=(), *, end: bool = False) -> None:
    """A finger on a page (a CDP session of a context with touch): down at the first point and
    through the rest; ``end`` lifts it."""
    (x, y), *rest = points if points else [(None, None)]
    if x is not None:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for x, y in rest:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    if end:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def in_view(box: dict, height: float) -> float:
    """The share of an element's bounding box (Playwright's) inside a viewport ``height`` tall."""
    return max(0.0, min(height, box["y"] + box["height"]) - max(0.0, box["y"])) / box["height"]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    started: float  # time.monotonic() when the process was launched

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
    """Launch `streamlit run SCRIPT` from the repo root on a free port and wait until
    /_stcore/health answers (polled; the wait ends on the condition, not on a fixed sleep)."""
    port = free_port()
    log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"streamlit-{port}.log"
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    full_env = {**os.environ, **(env or {})}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = Server(url, proc, log, t0)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}:\n{server.log_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)  # poll interval between health checks, not a synchronisation
    server.stop()
    raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f}s:\n{server.log_text()[-4000:]}")


# --------------------------------------------------------------------------- the shipped model's site


SHARED_ENV = "CVAE_TEST_SHARED"  # a folder the test processes of one pytest session share (conftest.py)


def _compute_shipped_site_parts() -> dict:
    """In the app server's torch threads (ui.models.app_torch_threads), so
    that the app's Publish gives these bytes: each digit's loss is rounded to 0.05 nats, and
    another thread count's float32 sums can round a digit on a boundary the other way."""
    import torch

    from cvae.core.shipped import SHIPPED_CHECKPOINT
    from cvae.site import site_parts
    from ui.models import app_torch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(app_torch_threads())
    try:
        return site_parts(SHIPPED_CHECKPOINT, require_data())
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def shipped_site_parts() -> dict:
    """cvae.site.site_parts of the shipped model on MNIST, computed once per pytest session: the
    first test process that asks computes it (the others wait on a lock) and writes it into the
    session's shared folder ($CVAE_TEST_SHARED); the others read it. Without that folder (a test
    file run by hand), once per process."""
    import fcntl

    shared = os.environ.get(SHARED_ENV)
    if not shared:
        return _compute_shipped_site_parts()
    folder = Path(shared) / "shipped-site-parts"
    with open(Path(shared) / "shipped-site-parts.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.is_dir():
            parts = _compute_shipped_site_parts()
            tmp = folder.with_name(folder.name + ".tmp")
            tmp.mkdir(exist_ok=True)  # left by a process that died while writing it
            (tmp / "data.json").write_text(json.dumps(parts["data"]), encoding="utf-8")
            for name, data in parts.items():
                if name != "data":
                    (tmp / name).write_bytes(data)
            tmp.rename(folder)
    parts = {"data": json.loads((folder / "data.json").read_text(encoding="utf-8"))}
    parts.update({f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.name != "data.json"})
    return parts


def shipped_site(hooks: bool) -> dict[str, bytes]:
    """The shipped model's site with MNIST's digits and each digit's loss (cvae.site.site_files),
    with or without the browser tests' hooks. Its costly part (the 10,000 test digits' losses)
    is computed once per pytest session (:func:`shipped_site_parts`), for every test that opens
    the site or compares with it."""
    from cvae.site import assemble_site

    return assemble_site(shipped_site_parts(), hooks=hooks)


# --------------------------------------------------------------------------- a random model


def random_model(seed: int = 0, **cfg):
    """A CVAE whose every decoder weight and bias is random (Keras' zero biases would hide a
    bias or layout slip in another implementation of the decoder, such as the browser's)."""
    import torch

    from cvae import CVAE

    torch.manual_seed(seed)
    model = CVAE(**cfg)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


# --------------------------------------------------------------------------- drawn digits


def stroke_canvas(points, size=280, width=20, ink=255, ground=0, mode="L"):
    """A canvas (numpy array) with one polyline stroke, drawn as a person would with the pad."""
    import numpy as np
    from PIL import Image, ImageDraw

    img = Image.new(mode, (size, size), ground)
    d = ImageDraw.Draw(img)
    d.line(points, fill=ink, width=width, joint="curve")
    for x, y in (points[0], points[-1]):
        d.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=ink)
    return np.asarray(img)


def data_url(arr) -> str:
    """A canvas as the browser sends it: a PNG data URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


SEVEN = [(60, 60), (220, 60), (120, 230)]  # a stroke shaped like a 7, on a 280x280 canvas
