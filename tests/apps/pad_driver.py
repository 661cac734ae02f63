"""Drive the latent pad harness in Chromium: start Streamlit, measure a drag.

Shared by tests/test_browser_pad.py and benchmarks/pad_fps.py.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "apps" / "pad_harness.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(script: Path, env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# Drags the handle around a circle with synthetic pointer moves (the button is held by
# Playwright's real mouse) for args.ms and counts the frames the pad painted.
MEASURE_JS = """
async (args) => {
  const pad = [...cvaeLatentPad.pads][0];
  const canvas = pad.pad, box = canvas.getBoundingClientRect();
  const s0 = { ...pad.stats };
  let events = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const t = performance.now() - t0;
      if (t > args.ms) { clearInterval(timer); resolve(); return; }
      const a = t / 300;
      canvas.dispatchEvent(new PointerEvent("pointermove", {
        bubbles: true, pointerId: 1, pointerType: "mouse", buttons: 1,
        clientX: box.left + box.width * (0.5 + 0.35 * Math.cos(a)),
        clientY: box.top + box.height * (0.5 + 0.35 * Math.sin(a)),
      }));
      events += 1;
    }, 2);
  });
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, events, frames: pad.stats.frames - s0.frames,
           decodes: pad.stats.decodes - s0.decodes, decodeMs: pad.stats.decodeMs - s0.decodeMs };
}
"""
