// The latent explorer in the browser: the decoder runs here, so whatever moves the latent
// point (the z1/z2 sliders while dragged, the pad, hovering or dragging on the scatter)
// repaints the digit at once, with no round trip. The host hears only commits (a release, a
// key-up, a click): Python in the app (ui/explorer_host.js), the page itself in the static
// site (site.js). The host hands over the data of a run (bounds, the committed point, the
// last commit it applied) and the assets (weights: the layer list and the weights; points:
// the encodings, quantised), and the surfaces the point is drawn on: a scatter and a manifold.

import { prepareDecoder, decode } from "./decoder.js";
import { preparePoints, remember } from "./payload.js";
import { Commits } from "./protocol.js";
import { explorerDom, paintImage, listenSliders, Pad, drawMarks, drawManifoldRing } from "./views.js";

const DECODERS = new Map(); // weights hash -> prepared decoder
const MAPS = new Map();     // points hash -> prepared points
export const LIVE = new Set(); // the explorers on the page (the test hooks read them)
const WHAT = { hover: "preview", drag: "dragging", slider: "dragging", pad: "dragging", key: "moving" };

export class Explorer {
  // host: the element to fill. surfaces(x) -> {scatter, manifold}: what the host draws the point
  // on (either may be null). onFail(message): the host's part when decoding fails.
  constructor(host, { surfaces = () => ({}), onFail = () => {} } = {}) {
    Object.assign(this, explorerDom(host));
    this.dctx = this.digit.getContext("2d");
    // On a small screen the digit may be out of view while the point moves (the scatter and
    // the pad are above or below it): a copy floats in the corner until the move ends.
    this.digitInView = true;
    this.seen = new IntersectionObserver(([e]) => { this.digitInView = e.intersectionRatio >= 0.6; this.showFloat(); },
                                         { threshold: [0, 0.6, 1] });
    this.seen.observe(this.digit);
    this.committed = [0, 0];
    this.live = null;       // {z, source}: a point being previewed or dragged, not yet committed
    this.shown = null;
    this.layers = null;     // feature layers drawn on the scatter (the host's)
    this.commits = new Commits();
    this.onFail = onFail;
    this.stats = { paints: 0, decodes: 0, decodeMs: 0, lastDecodeMs: 0, commits: 0, previews: 0, updates: 0 };
    const s = surfaces(this);
    this.scatter = s.scatter || null;
    this.manifold = s.manifold || null;
    listenSliders(this.sliders, this);
    this.pad = new Pad(this.padCanvas = this.root.querySelector("canvas.pad"), this);
    // A host may draw its charts on its own schedule (Streamlit): look for them until found,
    // and again when they are replaced. Until the scatter is found, also look at every change
    // to the page: on a busy machine (a class opening the page at once) the poll alone lagged
    // seconds behind Plotly.
    this.poll = setInterval(() => this.findSurfaces(), 400);
    this.watch = new MutationObserver(() => this.findSurfaces());
    this.watching = false;
    LIVE.add(this);
  }

  // ---- data from the host (every run) ----

  update(d, values, send) {
    this.commits.send = send;
    this.stats.updates += 1;
    this.bounds = d.bounds;      // [z1 lo, z1 hi, z2 lo, z2 hi]
    this.step = d.step;
    this.palette = d.palette;
    this.manifoldMap = d.manifold; // {x: [scale, offset], y: [scale, offset], inside, cell, side} or null
    this.digit.style.width = this.digit.style.height = `${d.digit_px}px`;
    this.hint.textContent = d.hint || "";
    if (d.decodes === true) this.told = true; // the host leaves its digit out (told by an earlier explorer, maybe)
    try {
      this.model = remember(DECODERS, d.assets.weights.hash, () => prepareDecoder(values.weights));
      this.points = values.points ? remember(MAPS, d.assets.points.hash, () => preparePoints(values.points)) : null;
      this.pointsHash = this.points ? d.assets.points.hash : null;
      if (this.failed) this.error.hidden = true; // what failed before works now
      this.failed = null;
    } catch (e) {
      this.fail(`The decoder could not be prepared: ${e.message}`);
    }
    [[this.bounds[0], this.bounds[1]], [this.bounds[2], this.bounds[3]]].forEach(([lo, hi], k) => {
      const s = this.sliders[k];
      [s.min, s.max, s.step] = [lo, hi, this.step];
    });
    if (this.commits.sync(d.session, d.seq)) {
      this.committed = [Number(d.z[0]), Number(d.z[1])];
      pointToUrl(this.committed);
    }
    this.selected = d.selected;
    this.nPoints = d.n_points;
    if (!this.live || this.live.source !== "drag") this.live = null; // the host's point wins, except mid-drag
    this.pad.fit(d.pad_px, this.root.clientWidth);
    this.findSurfaces();
    this.refresh();
  }

  fail(message) {
    this.failed = message;
    this.error.hidden = false;
    this.error.textContent = message;
    // The host left its digit out once told that this browser decodes: it is needed again.
    const told = this.told;
    this.told = false;
    this.onFail(message, told);
  }

  // ---- the point ----

  current() { return this.live ? this.live.z : this.committed; }

  clamp([z1, z2]) {
    const [a, b, c, d] = this.bounds, cl = (v, lo, hi) => Math.min(hi, Math.max(lo, Number.isFinite(v) ? v : (lo + hi) / 2));
    return [cl(z1, a, b), cl(z2, c, d)];
  }

  preview(z, source) {
    this.live = { z: this.clamp(z), source };
    this.stats.previews += 1;
    this.refresh();
  }

  endPreview() {
    this.live = null;
    this.refresh();
    this.showFloat();
  }

  commit(z, select = null) {
    z = this.clamp(z);
    this.committed = z;
    this.live = null;
    this.stats.commits += 1;
    // decodes: the host then stops drawing its fallback digit (until "failed").
    this.told = !this.failed && !!this.model;
    this.refresh();
    this.showFloat();
    this.commits.commit({ z1: z[0], z2: z[1], select, decodes: this.told });
  }

  // Paint everything that shows the point: digit, sliders, pad, scatter and manifold marks.
  refresh() {
    const z = this.current();
    this.paintDigit(z);
    const focused = this.root.getRootNode().activeElement;
    this.sliders.forEach((s, k) => { if (focused !== s || !this.live) s.value = z[k]; });
    this.outputs.forEach((o, k) => { o.textContent = z[k].toFixed(2); });
    const bg = getComputedStyle(this.root).getPropertyValue("--st-secondary-background-color") || null;
    this.pad.draw({ bounds: this.bounds, points: this.points, pointsHash: this.pointsHash, palette: this.palette,
                    z, live: !!this.live, background: bg });
    this.stats.padBackgrounds = this.pad.backgrounds;
    this.drawScatter();
    this.drawManifold();
  }

  paintDigit(z) {
    if (!this.model || this.failed) {
      this.readout.textContent = this.failed ? "" : "loading the decoder…";
      return;
    }
    const what = this.live ? WHAT[this.live.source] : "committed";
    const say = (ms) => { this.readout.textContent = `z = (${z[0].toFixed(3)}, ${z[1].toFixed(3)}) · ${what} · decoded in your browser in ${ms.toFixed(1)} ms`; };
    // Committed where it was shown, by the same model: nothing to repaint. A new model (a
    // finished run, the model picker) repaints at once, at the same point.
    if (this.shown && this.shown.model === this.model && this.shown[0] === z[0] && this.shown[1] === z[1]) {
      return say(this.stats.lastDecodeMs);
    }
    let img, ms;
    try {
      const t0 = performance.now();
      img = decode(this.model, z);
      ms = performance.now() - t0;
    } catch (e) {
      return this.fail(`Decoding failed: ${e.message}`);
    }
    this.shown = Object.assign(z.slice(), { model: this.model });
    Object.assign(this.stats, { decodes: this.stats.decodes + 1, decodeMs: this.stats.decodeMs + ms, lastDecodeMs: ms,
                                paints: this.stats.paints + 1 });
    paintImage(this.dctx, img, this.model.size);
    this.showFloat();
    say(ms);
    this.digit.dataset.z = `${z[0]},${z[1]}`;
    this.digit.dispatchEvent(new CustomEvent("cvae:paint", { bubbles: true, composed: true, detail: { z, source: this.live && this.live.source } }));
  }

  showFloat() {
    const on = !!this.live && !this.digitInView && !this.failed && !!this.shown;
    if (on) {
      const g = this.float.getContext("2d");
      g.drawImage(this.digit, 0, 0);
    }
    if (this.float.hidden === on) this.float.hidden = !on;
  }

  // ---- the surfaces ----

  findSurfaces() {
    if (this.scatter) this.scatter.find();
    if (this.manifold) this.manifold.find();
    const waiting = !!this.scatter && !!this.scatter.selector && !this.scatter.attached();
    if (waiting !== this.watching) {
      this.watching = waiting;
      if (waiting) this.watch.observe(document.body, { childList: true, subtree: true });
      else this.watch.disconnect();
    }
  }

  setLayers(layers) {
    this.layers = layers;
    this.drawScatter();
  }

  drawScatter() {
    const s = this.scatter;
    if (!s || !s.ready() || !this.bounds) return;
    const g = s.begin();
    const hover = this.live && this.live.source === "hover" ? this.live.z : null;
    const marker = this.live && !hover ? this.live.z : this.committed;
    drawMarks(g, s, { layers: this.layers, marker, hover });
    this.stats.scatterDraws = (this.stats.scatterDraws || 0) + 1;
  }

  drawManifold() {
    const s = this.manifold, m = this.manifoldMap;
    if (!s || !s.ready()) return;
    const g = s.begin();
    if (m && drawManifoldRing(g, s, m, this.current())) this.stats.manifoldDraws = (this.stats.manifoldDraws || 0) + 1;
  }

  unmount() {
    clearInterval(this.poll);
    this.commits.drop();
    this.watch.disconnect();
    this.seen.disconnect();
    for (const s of [this.scatter, this.manifold]) if (s && s.detach) s.detach();
    this.root.remove();
    LIVE.delete(this);
  }
}

// The committed point lives in the page's URL (?z1=..&z2=..), so a link opens the explorer
// there (the app reads it once per session: ui/latent.py point_from_url; the site at load).
// Written when the host confirms the point, without a history entry per move.
export function pointToUrl(z) {
  const url = new URL(globalThis.location.href), a = z[0].toFixed(3), b = z[1].toFixed(3);
  if (url.searchParams.get("z1") === a && url.searchParams.get("z2") === b) return;
  url.searchParams.set("z1", a);
  url.searchParams.set("z2", b);
  try { globalThis.history.replaceState(globalThis.history.state, "", url); } catch (e) { /* a file: page may refuse */ }
}

// The point a link asks for (?z1=&z2=), clamped to the bounds; null when it names none.
export function pointFromUrl(search, bounds) {
  const q = new URLSearchParams(search), [a, b, c, d] = bounds;
  const z1 = parseFloat(q.get("z1")), z2 = parseFloat(q.get("z2"));
  if (!Number.isFinite(z1) || !Number.isFinite(z2)) return null;
  return [Math.min(b, Math.max(a, z1)), Math.min(d, Math.max(c, z2))];
}
