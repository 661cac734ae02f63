// The latent explorer in the browser: the decoder runs here, so whatever moves the latent
// point (the z1/z2 sliders while dragged, the pad, hovering or dragging on the scatter)
// repaints the digit at once, with no round trip. The host hears only commits (a release, a
// key-up, a click): Python in the app (ui/explorer_host.js), the page itself in the static
// site (site.js). The host hands over the data of a run (bounds, the committed point, the
// last commit it applied) and the assets (weights: the layer list and the weights; points:
// the encodings, quantised), and the surfaces the point is drawn on: a scatter and a manifold.
// A second model may be shown beside the first (the host's data.compare, with its weights2 and
// points2): its canvas decodes the same point at the same moments, its scatter (scatter2) shows
// the same marks, and the selected test digit is ringed where each model encodes it.

import { prepareDecoder, decode } from "./decoder.js";
import { describePoint } from "./describe.js";
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
    this.stats = { paints: 0, decodes: 0, decodeMs: 0, lastDecodeMs: 0, commits: 0, previews: 0, updates: 0, paints2: 0 };
    this.compare = null;    // the second model: {name} from the host, or null
    this.model2 = null;
    this.points2 = null;
    const s = surfaces(this);
    this.scatter = s.scatter || null;
    this.scatter2 = s.scatter2 || null;
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
    this.updateSecond(d, values);
    // Two digits share the column's width, side by side (each at most digit_px).
    const px = this.compare ? Math.max(112, Math.min(d.digit_px, Math.floor((this.root.clientWidth - 12) / 2) || d.digit_px / 2))
      : d.digit_px;
    for (const c of [this.digit, this.second.digit]) c.style.width = c.style.height = `${px}px`;
    [[this.bounds[0], this.bounds[1]], [this.bounds[2], this.bounds[3]]].forEach(([lo, hi], k) => {
      const s = this.sliders[k];
      [s.min, s.max, s.step] = [lo, hi, this.step];
    });
    if (this.commits.sync(d.session, d.seq)) {
      this.committed = [Number(d.z[0]), Number(d.z[1])];
      pointToUrl(this.committed);
    }
    this.describe(this.committed);
    this.selected = d.selected;
    this.nPoints = d.n_points;
    if (!this.live || this.live.source !== "drag") this.live = null; // the host's point wins, except mid-drag
    this.pad.fit(d.pad_px, this.root.clientWidth);
    this.findSurfaces();
    this.refresh();
  }

  // The second model (d.compare: {name}), or none: its decoder and encodings, its canvas shown.
  updateSecond(d, values) {
    const c = d.compare || null, sec = this.second;
    this.compare = c;
    sec.box.hidden = !c;
    this.caption.hidden = !c;
    if (!c) { this.model2 = this.points2 = this.shown2 = null; return; }
    this.caption.textContent = `A: ${d.model_name || "this model"}`;
    sec.caption.textContent = `B: ${c.name}`;
    try {
      this.model2 = remember(DECODERS, d.assets.weights2.hash, () => prepareDecoder(values.weights2));
      this.points2 = values.points2 ? remember(MAPS, d.assets.points2.hash, () => preparePoints(values.points2)) : null;
      this.failed2 = null;
      sec.error.hidden = true;
    } catch (e) {
      this.model2 = this.points2 = null;
      this.failed2 = `The second model's decoder could not be prepared: ${e.message}`;
      sec.error.hidden = false;
      sec.error.textContent = this.failed2;
    }
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
    this.describe(z);
  }

  // The live region: after each committed move, where the point is and what the decoder shows
  // (the nearest test digits' labels), once per point.
  describe(z) {
    const text = describePoint(z, this.points);
    if (this.said.textContent !== text) this.said.textContent = text;
    this.stats.said = text;
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
      this.paintSecond(z); // a second model chosen since
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
    this.paintSecond(z);
    this.digit.dispatchEvent(new CustomEvent("cvae:paint", { bubbles: true, composed: true, detail: { z, source: this.live && this.live.source } }));
  }

  // The second model's decode of the same point, painted with the first.
  paintSecond(z) {
    const m = this.model2;
    if (!m || (this.shown2 && this.shown2.model === m && this.shown2[0] === z[0] && this.shown2[1] === z[1])) return;
    try {
      paintImage(this.second.digit.getContext("2d"), decode(m, z), m.size);
    } catch (e) {
      this.model2 = null;
      this.second.error.hidden = false;
      this.second.error.textContent = this.failed2 = `The second model's decoding failed: ${e.message}`;
      return;
    }
    this.shown2 = Object.assign(z.slice(), { model: m });
    this.stats.paints2 += 1;
    this.second.digit.dataset.z = `${z[0]},${z[1]}`;
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
    for (const s of [this.scatter, this.scatter2, this.manifold]) if (s) s.find();
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

  // The marks on the scatter, and on the second model's (its own encodings: no feature layers,
  // which are the first model's).
  drawScatter() {
    if (!this.bounds) return;
    const hover = this.live && this.live.source === "hover" ? this.live.z : null;
    const marker = this.live && !hover ? this.live.z : this.committed;
    const s = this.scatter, s2 = this.compare && this.scatter2;
    if (s && s.ready()) {
      // The selected digit is ringed while two models are compared (on this one it is where the point jumped).
      const selected = this.compare ? encodedAt(this.points, this.selected) : null;
      drawMarks(s.begin(), s, { layers: this.layers, marker, hover, selected });
      this.stats.scatterDraws = (this.stats.scatterDraws || 0) + 1;
    }
    if (s2 && s2.attached() && s2.ready()) {
      drawMarks(s2.begin(), s2, { layers: null, marker, hover, selected: encodedAt(this.points2, this.selected) });
      this.stats.scatter2Draws = (this.stats.scatter2Draws || 0) + 1;
    }
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
    for (const s of [this.scatter, this.scatter2, this.manifold]) if (s && s.detach) s.detach();
    this.root.remove();
    LIVE.delete(this);
  }
}

// Where a test digit is encoded, from a points payload (quantised over its own ranges); null
// for no digit or one the payload does not hold.
export function encodedAt(points, i) {
  if (!points || !Number.isInteger(i) || i < 0 || i >= points.n) return null;
  const [[a, b], [c, d]] = points.range;
  return [a + points.x[i] * (b - a), d - points.y[i] * (d - c)];
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
