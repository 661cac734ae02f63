"""The static site (`python -m cvae site`): its size, the time from opening it to interactive,
and how fast it repaints while the mouse moves, in headless Chromium (/usr/bin/chromium).

- Size: each file of the shipped model's site, and the folder.
- Open: a fresh browser context (nothing cached) loads index.html from `python -m http.server`
  until the explorer is interactive (decoder ready, digit painted, scatter drawn: the test
  hooks' stats(), polled every animation frame); the time is the page's performance.now() at
  that frame (from the navigation's start). Opened N times; also opened as a file.
- Repaints: the mouse (Playwright) drags the z1 slider's thumb, hovers the scatter and drags on
  it for a few seconds; the page counts its digit repaints and its animation frames, printed
  beside the mouse events sent (benchmarks/_common.py fps, as interaction_cost.py measures the app).

    python benchmarks/site.py [--data-dir ../shared/mnist] [--opens 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from _common import CHROMIUM, CHROMIUM_ARGS, READY_JS, data_dir, fps, med, serve_folder

from cvae.core.files import write_folder
from cvae.core.shipped import SHIPPED_CHECKPOINT
from cvae.site import assemble_site, site_parts

READY_AT = "() => new Promise((done) => { const f = () => { try { if ((" + READY_JS + ")()) return done(performance.now()); } catch (e) {} requestAnimationFrame(f); }; f(); })"


def open_once(browser, url: str, outside: list) -> float:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url.rsplit("/", 1)[0]) else
              (outside.append(r.request.url), r.abort()))
    page = ctx.new_page()
    page.goto(url, wait_until="commit")
    ms = page.evaluate(READY_AT)
    ctx.close()
    return ms / 1000


def repaints(browser, url: str, seconds: float) -> list[dict]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.evaluate(READY_AT)
    out = []
    slider = page.get_by_role("slider", name="z1", exact=True)
    box = slider.bounding_box()
    x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    path = [(x0 + 60 * math.sin(k / 40 * 2 * math.pi), y) for k in range(40)]
    page.mouse.move(*path[0])
    page.mouse.down()
    out.append(fps(page, seconds, path, "dragging the z1 slider"))
    page.mouse.up()
    circle = [[1.8 * math.cos(k / 60 * 2 * math.pi), 1.8 * math.sin(k / 60 * 2 * math.pi) - 1] for k in range(60)]
    path = page.evaluate("(pts) => pts.map(([a, b]) => cvaeExplorer.scatterPx(a, b))", circle)
    page.mouse.move(*path[0])
    out.append(fps(page, seconds, path, "hovering the scatter"))
    page.mouse.down()
    out.append(fps(page, seconds, path, "dragging on the scatter"))
    page.mouse.up()
    ctx.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(data_dir()))
    ap.add_argument("--opens", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        parts = site_parts(SHIPPED_CHECKPOINT, args.data_dir)
        build = time.perf_counter() - t0
        files, plain = assemble_site(parts, hooks=True), assemble_site(parts, hooks=False)
        folder = write_folder(Path(tmp) / "site", files)
        print(f"The shipped model's site (built in {build:.1f} s; sizes without the test hooks):")
        for name, data in sorted(plain.items(), key=lambda kv: -len(kv[1])):
            print(f"  {name:<12} {len(data):>10,} bytes")
        total = sum(len(d) for d in plain.values())
        print(f"  {'total':<12} {total:>10,} bytes ({total / 1e6:.2f} MB; the bound for a site that draws its own "
              "scatter: 1.5 MB)")
        proc, origin = serve_folder(folder)
        outside: list[str] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                http = [open_once(browser, f"{origin}/index.html", outside) for _ in range(args.opens)]
                files_ = [open_once(browser, (folder / "index.html").as_uri(), outside) for _ in range(args.opens)]
                print(f"\nOpen to interactive ({args.opens} fresh contexts each; target 2 s):")
                print(f"  from http.server   median {med(http):.2f} s, max {max(http):.2f} s")
                print(f"  as a file          median {med(files_):.2f} s, max {max(files_):.2f} s")
                print(f"  requests outside the folder: {len(outside)}")
                print(f"\nRepaints while the mouse moves ({args.seconds:.0f} s each):")
                print(f"  {'':<26}{'mouse events/s':>16}{'repaints/s':>12}{'frames/s':>10}{'commits':>9}")
                for r in repaints(browser, f"{origin}/index.html", args.seconds):
                    print(f"  {r['what']:<26}{r['events']:>16.0f}{r['paints']:>12.0f}{r['raf']:>10.0f}{r['commits']:>9}")
                browser.close()
        finally:
            proc.terminate()
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
