"""Drive the latent pad harness: where it is, and a measured drag (JS run in the page).

Shared by tests/test_browser_pad.py and benchmarks/pad_fps.py; the server and browser
come from tests/conftest.py.
"""

from pathlib import Path

HARNESS = Path(__file__).resolve().parent / "pad_harness.py"


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
