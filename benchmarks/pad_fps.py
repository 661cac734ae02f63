"""The latent pad in Chromium: frames per second while dragging, and ms per decode.

Starts tests/apps/pad_harness.py on the shipped model (with its encodings map when
present), opens it in headless Chromium, holds the mouse button on the pad and drags
the handle around a circle with pointer events every few ms (faster than the display
refreshes), counting the frames the pad painted. Prints, side by side:

* drag frame rate vs the 30 fps target (issue 5), and vs the display's refresh rate
  (requestAnimationFrame with nothing to do: the most any page can show);
* the browser's decode time vs one PyTorch decode on this CPU (the server-side path,
  before its network round trip and image encoding).

    python benchmarks/pad_fps.py [--checkpoint assets/cvae_mnist.pt] [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from apps.pad_driver import HARNESS, MEASURE_JS  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

TARGET_FPS = 30.0
PAD_CENTRE = "c => { const r = c.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }"
RAF_RATE = """async (ms) => { let n = 0; const t0 = performance.now();
  await new Promise(r => { const f = () => { n++; performance.now() - t0 < ms ? requestAnimationFrame(f) : r(); };
                           requestAnimationFrame(f); });
  return n / ((performance.now() - t0) / 1000); }"""


def torch_decode_ms(checkpoint: Path, n: int = 200) -> float:
    import torch

    from cvae import decode_point, load_checkpoint

    torch.set_num_threads(1)  # one request decodes one point; fair to a single JS thread
    model = load_checkpoint(checkpoint)
    decode_point(model, 0.0, 0.0)
    t0 = time.perf_counter()
    for i in range(n):
        decode_point(model, 0.01 * i, -0.01 * i)
    return (time.perf_counter() - t0) / n * 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=REPO / "assets" / "cvae_mnist.pt")
    ap.add_argument("--encodings", type=Path, default=REPO / "assets" / "test_encodings.npz")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each measured drag")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"no checkpoint at {args.checkpoint}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    env = {"CVAE_PAD_CKPT": str(args.checkpoint.resolve())}
    if args.encodings.is_file():
        env["CVAE_PAD_ENC"] = str(args.encodings.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(HARNESS, env, log=Path(tmp) / "streamlit.log")
        url = server.url
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1000, "height": 800})
                page.goto(url)
                page.wait_for_function("() => globalThis.cvaeLatentPad?.stats().some(s => s.hasModel)",
                                       timeout=90_000)
                page.evaluate("cvaeLatentPad.timeDecode(50)")  # let the JIT warm up
                refresh = page.evaluate(RAF_RATE, 1000)
                decode_ms = min(page.evaluate("n => cvaeLatentPad.timeDecode(n)", 200) for _ in range(args.rounds))
                drags = []
                for _ in range(args.rounds):
                    page.mouse.move(*page.locator("canvas.pad").evaluate(PAD_CENTRE))
                    page.mouse.down()
                    drags.append(page.evaluate(MEASURE_JS, {"ms": args.seconds * 1000}))
                    page.mouse.up()
                    time.sleep(1.0)  # let the release's rerun finish
                browser.close()
        finally:
            server.stop()
    torch_ms = torch_decode_ms(args.checkpoint)
    fps = [d["frames"] / d["seconds"] for d in drags]
    drag_decode = sum(d["decodeMs"] for d in drags) / sum(d["decodes"] for d in drags)
    best = max(fps)
    print(f"machine: {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}); {args.checkpoint.name}")
    print(f"{'measure':34s} {'value':>10s} {'reference':>12s} {'ratio':>7s}")
    print(f"{'drag frames/s (best of rounds)':34s} {best:10.1f} {TARGET_FPS:12.1f} {best / TARGET_FPS:7.2f}  vs target 30 fps")
    print(f"{'drag frames/s (each round)':34s} {' '.join(f'{f:.1f}' for f in fps):>10s}")
    print(f"{'display refresh (rAF) /s':34s} {refresh:10.1f} {'':12s} {best / refresh:7.2f}  of what the page can show")
    print(f"{'browser decode ms (loop)':34s} {decode_ms:10.2f} {torch_ms:12.2f} {torch_ms / decode_ms:7.2f}  vs PyTorch 1 thread")
    print(f"{'browser decode ms (while dragging)':34s} {drag_decode:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
