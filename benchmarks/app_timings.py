"""How fast the explorer feels: server start -> first full render, and slider release -> new digit.

Starts `streamlit run app.py` on a free port, opens it in headless Chromium (Playwright,
system /usr/bin/chromium) and measures:
  1. cold: from launching the server process to the scatter, the decoded digit and an idle
     script in the first browser tab (includes importing torch and warming the caches);
  2. warm: a second tab's first full render on the running server;
  3. slider: from releasing a key on the z1 slider (one ArrowRight step) to the new digit's
     image being in the page, repeated --moves times.
Prints each beside its target and the ratio (measured / target; below 1 is within target).

    python benchmarks/app_timings.py [--moves 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS, data_dir, start_server  # noqa: E402

TARGETS = {"cold_render_s": 20.0, "warm_render_s": 3.0, "slider_to_digit_s": 0.5}
MAIN = '[data-testid="stMain"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
SCATTER = f'{MAIN} [data-testid="stPlotlyChart"] .js-plotly-plot'
SLIDER = f'{MAIN} [data-testid="stSlider"] input[type="range"]'
DIGIT_SRC_JS = """() => { const caps = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImageCaption"]')];
  const c = caps.find(e => e.textContent.startsWith('decoded at z'));
  const img = c && c.closest('[data-testid="stImageContainer"], [data-testid="stImage"]')?.querySelector('img');
  return img && img.complete && img.naturalWidth > 0 ? img.currentSrc || img.src : null; }"""


def first_render(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(SCATTER + " canvas", timeout=300_000)
    page.wait_for_function(DIGIT_SRC_JS, timeout=300_000)
    page.wait_for_selector(IDLE, timeout=300_000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    import tempfile

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        server = start_server("app.py", {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(Path(tmp) / "runs")},
                              log=Path(tmp) / "streamlit.log")
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            first_render(page, server.url)
            cold = time.monotonic() - server.started
            page2 = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            t0 = time.monotonic()
            first_render(page2, server.url)
            warm = time.monotonic() - t0
            page2.context.close()

            slider = page.locator(SLIDER).first
            slider.focus()
            moves = []
            for i in range(args.moves):
                before = page.evaluate(DIGIT_SRC_JS)
                key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
                page.keyboard.down(key)
                t0 = time.monotonic()
                page.keyboard.up(key)  # the release: Streamlit sends the new value
                page.wait_for_function("(b) => { const f = " + DIGIT_SRC_JS + "; const s = f(); return s && s !== b; }",
                                       arg=before, timeout=60_000, polling="raf")
                moves.append(time.monotonic() - t0)
                page.wait_for_selector(IDLE, timeout=60_000)
            errors = page.locator('[data-testid="stException"]').count()
        finally:
            server.stop()
            browser.close()

    res = {"cold_render_s": cold, "warm_render_s": warm, "slider_to_digit_s": statistics.median(moves),
           "slider_p90_s": sorted(moves)[int(0.9 * (len(moves) - 1))], "server_healthy_s": server.healthy_after,
           "moves": len(moves), "exceptions_on_page": errors}
    print(f"{'measure':<34}{'measured':>10}{'target':>10}{'ratio':>8}")
    for k, target in TARGETS.items():
        print(f"{k:<34}{res[k]:>9.2f}s{target:>9.2f}s{res[k] / target:>8.2f}")
    print(f"{'(server healthy after)':<34}{server.healthy_after:>9.2f}s")
    print(f"{'(slider p90 over %d moves)' % len(moves):<34}{res['slider_p90_s']:>9.2f}s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
