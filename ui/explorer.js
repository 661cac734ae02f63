// The latent explorer in the browser: the decoder runs here, so whatever moves the
// latent point (the z1/z2 sliders while dragged, the pad, hovering or dragging on the
// scatter) repaints the digit at once, with no server round trip. Python hears only
// commits (a release, a key-up, a click) through the trigger "commit".
//
// Loaded by ui/explorer_boot.js, which hands over the content-addressed assets:
// values.weights (cvae/webexport.py decoder_payload: the layer list and the weights)
// and values.points (the encodings, quantised). Everything about the architecture comes
// from payload.layers; nothing here names a layer.

const EXPLORERS = new WeakMap(); // host element -> Explorer
const DECODERS = new Map();      // weights hash -> prepared decoder
const MAPS = new Map();          // points hash -> prepared points
const KEEP = 4;
const RESEND_MS = 2500;

function remember(map, key, make) {
  if (!map.has(key)) {
    map.set(key, make());
    while (map.size > KEEP) map.delete(map.keys().next().value);
  }
  return map.get(key);
}

function base64Bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// ---- the decoder: a loop over the declared layers ------------------------------------

const ACT = {
  relu: (a) => { for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] = 0; return a; },
  sigmoid: (a) => { for (let i = 0; i < a.length; i++) a[i] = 1 / (1 + Math.exp(-a[i])); return a; },
  linear: (a) => a,
};

// PyTorch layouts in; activations are kept as (row, column, channel) so that the inner
// loops walk both arrays contiguously.
export function prepareDecoder(p) {
  if (p.format !== "cvae-decoder/2") throw new Error(`unknown decoder format ${p.format}`);
  const bytes = base64Bytes(p.b64);
  if (bytes.length !== 4 * p.n_floats) throw new Error(`decoder payload holds ${bytes.length} bytes, expected ${4 * p.n_floats}`);
  const view = new DataView(bytes.buffer);
  const tensor = (name) => {
    const t = p.tensors[name];
    if (!t) throw new Error(`decoder payload lacks ${name}`);
    const n = t.shape.reduce((a, b) => a * b, 1), a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = view.getFloat32(4 * (t.offset + i), true);
    return { a, shape: t.shape };
  };
  const layers = p.layers.map((L) => {
    const act = ACT[L.activation];
    if (!act) throw new Error(`unknown activation ${L.activation} in layer ${L.name}`);
    const w = tensor(`${L.name}.weight`), b = tensor(`${L.name}.bias`);
    if (L.kind === "dense") {
      const [nOut, nIn] = w.shape;
      if (nOut !== L.out || nIn !== L.in) throw new Error(`layer ${L.name}: weight ${w.shape} does not match ${L.in} -> ${L.out}`);
      // A reshape to (C, H, W) (PyTorch's view, channel-major) becomes (H, W, C) here.
      let order = null;
      if (L.reshape) {
        const [C, H, W] = L.reshape;
        order = new Int32Array(nOut);
        for (let c = 0; c < C; c++) for (let q = 0; q < H * W; q++) order[q * C + c] = c * H * W + q;
      }
      const W2 = new Float64Array(w.a.length), B2 = new Float64Array(nOut);
      for (let r = 0; r < nOut; r++) {
        const from = order ? order[r] : r;
        B2[r] = b.a[from];
        for (let d = 0; d < nIn; d++) W2[r * nIn + d] = w.a[from * nIn + d];
      }
      return { kind: "dense", act, nIn, nOut, w: W2, b: B2, y: new Float64Array(nOut) };
    }
    if (L.kind === "conv_transpose") {
      const [cin, cout, k] = w.shape;
      if (cin !== L.in || cout !== L.out || k !== L.kernel) throw new Error(`layer ${L.name}: weight ${w.shape} does not match the layer list`);
      const w2 = new Float64Array(w.a.length); // (in, out, kh, kw) -> (in, kh, kw, out)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++)
          for (let t = 0; t < k * k; t++) w2[(c * k * k + t) * cout + o] = w.a[(c * cout + o) * k * k + t];
      return { kind: "conv_transpose", act, w: w2, b: b.a, cin, cout, k, stride: L.stride, crop: L.crop[0],
               hIn: L.size_in, hOut: L.size_out, y: new Float64Array(L.size_out * L.size_out * cout) };
    }
    throw new Error(`the browser decoder has no layer kind ${L.kind}`);
  });
  const last = layers[layers.length - 1];
  if (last.kind !== "conv_transpose" || last.cout !== 1 || last.hOut !== p.image_size)
    throw new Error("the decoder does not end in one channel of the image size");
  return { latentDim: p.latent_dim, size: p.image_size, layers };
}

function dense(x, L) {
  const { w, b, nIn, nOut, y } = L;
  for (let r = 0; r < nOut; r++) {
    let s = b[r];
    for (let d = 0; d < nIn; d++) s += w[r * nIn + d] * x[d];
    y[r] = s;
  }
  return y;
}

// y[oy, ox, o] = b[o] + sum x[i, j, c] * w[c, kh, kw, o], oy = i*stride + kh - crop (likewise
// ox); rows/columns outside [0, hOut) are the "same" crop. Zero inputs (after ReLU) are skipped.
function convTranspose(x, L) {
  const { w, b, cin, cout, k, stride, crop, hIn, hOut, y } = L;
  for (let q = 0; q < hOut * hOut; q++) y.set(b, q * cout);
  for (let i = 0; i < hIn; i++)
    for (let j = 0; j < hIn; j++) {
      const xb = (i * hIn + j) * cin;
      for (let kh = 0; kh < k; kh++) {
        const oy = i * stride + kh - crop;
        if (oy < 0 || oy >= hOut) continue;
        for (let kw = 0; kw < k; kw++) {
          const ox = j * stride + kw - crop;
          if (ox < 0 || ox >= hOut) continue;
          const yb = (oy * hOut + ox) * cout;
          for (let c = 0; c < cin; c++) {
            const v = x[xb + c];
            if (v === 0) continue;
            const wb = ((c * k + kh) * k + kw) * cout;
            for (let o = 0; o < cout; o++) y[yb + o] += v * w[wb + o];
          }
        }
      }
    }
  return y;
}

// z (latent_dim numbers) -> Float32Array(size*size) of pixel probabilities.
export function decode(m, z) {
  let h = Float64Array.from(z);
  for (const L of m.layers) h = L.act(L.kind === "dense" ? dense(h, L) : convTranspose(h, L));
  return Float32Array.from(h);
}

function preparePoints(p) {
  if (p.format !== "cvae-points/1") throw new Error(`unknown points format ${p.format}`);
  const bytes = base64Bytes(p.b64), view = new DataView(bytes.buffer), n = p.n;
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = view.getUint16(4 * i, true) / 65535;
    y[i] = view.getUint16(4 * i + 2, true) / 65535;
  }
  return { n, x, y, label: bytes.subarray(4 * n, 5 * n) };
}

// ---- Plotly charts drawn by st.plotly_chart: found in the page, never redrawn here ----
// Relies on the graph div's axes (_fullLayout.xaxis/yaxis: _offset, _length, p2l, l2p) and
// its event emitter (on): stable in plotly.js for years; the browser tests guard them.

class PlotHook {
  constructor(selector, onAttach) {
    this.selector = selector;
    this.onAttach = onAttach;
    this.gd = null;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "cvae-overlay";
    Object.assign(this.canvas.style, { position: "absolute", left: "0", top: "0", pointerEvents: "none" });
  }

  attached() {
    return !!(this.gd && this.gd.isConnected && this.gd._fullLayout && this.canvas.isConnected);
  }

  // The graph div, (re)attached when Streamlit has drawn a new one; null until then.
  find() {
    if (this.attached()) return this.gd;
    const gd = document.querySelector(this.selector);
    if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || typeof gd.on !== "function") return null;
    const box = gd.querySelector(".svg-container");
    if (!box) return null;
    const top = [...box.children].filter((c) => c.tagName.toLowerCase() === "svg").pop();
    box.insertBefore(this.canvas, top || null); // under the hover labels, over the points
    if (this.gd !== gd) { this.gd = gd; this.onAttach(gd); }
    return gd;
  }

  axes() {
    const fl = this.gd._fullLayout;
    return { x: fl.xaxis, y: fl.yaxis, w: fl.width, h: fl.height };
  }

  // Latent (data) coordinates of a pointer event; inside: within the plot area.
  at(e) {
    const { x, y } = this.axes(), r = this.gd.getBoundingClientRect();
    const px = e.clientX - r.left - x._offset, py = e.clientY - r.top - y._offset;
    return { z: [x.p2l(px), y.p2l(py)], inside: px >= 0 && px <= x._length && py >= 0 && py <= y._length };
  }

  toPx(z1, z2) {
    const { x, y } = this.axes();
    return [x._offset + x.l2p(z1), y._offset + y.l2p(z2)];
  }

  // A fresh 2-D context the size of the figure, clipped to the plot area.
  begin() {
    const { x, y, w, h } = this.axes(), dpr = window.devicePixelRatio || 1, c = this.canvas;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      [c.width, c.height] = [Math.round(w * dpr), Math.round(h * dpr)];
      [c.style.width, c.style.height] = [`${w}px`, `${h}px`];
    }
    const g = c.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, c.width, c.height);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.beginPath();
    g.rect(x._offset, y._offset, x._length, y._length);
    g.clip();
    return g;
  }
}

function ring(g, px, py, r, color, width) {
  g.beginPath();
  g.arc(px, py, r, 0, 2 * Math.PI);
  g.lineWidth = width;
  g.strokeStyle = color;
  g.stroke();
}

// ---- the component ---------------------------------------------------------------------

class Explorer {
  constructor(host) {
    this.root = document.createElement("div");
    this.root.className = "cvae-explorer";
    this.root.innerHTML = `
      <div class="digit-box">
        <canvas class="digit" width="28" height="28" role="img" aria-label="decoded digit"></canvas>
        <div class="cvae-error" role="alert" hidden></div>
      </div>
      <div class="readout" aria-live="off"></div>
      <label class="zrow"><span>z1</span><input type="range" aria-label="z1"><output></output></label>
      <label class="zrow"><span>z2</span><input type="range" aria-label="z2"><output></output></label>
      <canvas class="pad" tabindex="0" role="slider" aria-label="latent pad: drag, or use the arrow keys"></canvas>
      <div class="hint"></div>`;
    host.appendChild(this.root);
    const q = (s) => this.root.querySelector(s);
    [this.digit, this.error, this.readout, this.pad, this.hint] =
      [q("canvas.digit"), q(".cvae-error"), q(".readout"), q("canvas.pad"), q(".hint")];
    this.sliders = [...this.root.querySelectorAll("input[type=range]")];
    this.outputs = [...this.root.querySelectorAll("output")];
    this.dctx = this.digit.getContext("2d");
    this.committed = [0, 0];
    this.live = null;       // {z, source}: a point being previewed or dragged, not yet committed
    this.shown = null;
    this.stats = { paints: 0, decodes: 0, decodeMs: 0, lastDecodeMs: 0, commits: 0, previews: 0, updates: 0 };
    this.scatter = new PlotHook("", (gd) => this.hookScatter(gd));
    this.manifold = new PlotHook("", (gd) => this.hookManifold(gd));
    this.listenSliders();
    this.listenPad();
    this.onOverlays = (e) => { this.overlays = e.detail; this.drawScatter(); };
    document.addEventListener("cvae:overlays", this.onOverlays);
    try { this.overlays = JSON.parse(document.documentElement.dataset.cvaeOverlays || "null"); } catch (e) { this.overlays = null; }
    // Streamlit redraws charts on its own schedule: look for them until found, and again
    // when they are replaced (a new model, new manifold settings, the manifold's tab opened).
    this.poll = setInterval(() => this.hookPlots(), 400);
    // Until the scatter is hooked, also look at every change to the page: on a busy machine
    // (a class opening the page at once) the poll alone lagged seconds behind Plotly.
    this.watch = new MutationObserver(() => this.hookPlots());
    this.watching = false;
  }

  // ---- data from Python (every rerun) ----

  update(component, values) {
    const d = component.data;
    this.send = component.setTriggerValue;
    this.stats.updates += 1;
    this.bounds = d.bounds;      // [z1 lo, z1 hi, z2 lo, z2 hi]
    this.step = d.step;
    this.palette = d.palette;
    this.manifoldMap = d.manifold; // {x: [scale, offset], y: [scale, offset], inside: [z1lo, z1hi, z2lo, z2hi]} or null
    this.scatter.selector = d.scatter_selector;
    this.manifold.selector = d.manifold_selector;
    this.digit.style.width = this.digit.style.height = `${d.digit_px}px`;
    this.hint.textContent = d.hint || "";
    if (d.decodes === true) this.told = true; // Python leaves its digit out (told by an earlier explorer, maybe)
    try {
      this.model = remember(DECODERS, d.assets.weights.hash, () => prepareDecoder(values.weights));
      this.points = values.points ? remember(MAPS, d.assets.points.hash, () => preparePoints(values.points)) : null;
      this.pointsHash = this.points ? d.assets.points.hash : null;
      if (this.failed) this.error.hidden = true; // what failed before works now
      this.failed = null;
    } catch (e) {
      this.fail(`The decoder could not be prepared: ${e.message}`);
    }
    const [a, b, c, e] = this.bounds;
    [[a, b], [c, e]].forEach(([lo, hi], k) => {
      const s = this.sliders[k];
      [s.min, s.max, s.step] = [lo, hi, this.step];
    });
    // A new explorer (or a new session) numbers its commits on from the last that Python
    // applied: starting again at 1 had Python drop them as already applied.
    if (this.session !== d.session) [this.session, this.seq, this.pending] = [d.session, d.seq, null];
    if (this.pending && d.seq >= this.pending.seq) { this.pending = null; clearTimeout(this.resend); }
    if (!this.pending) {
      this.committed = [Number(d.z[0]), Number(d.z[1])];
      pointToUrl(this.committed);
    }
    this.selected = d.selected;
    this.nPoints = d.n_points;
    if (!this.live || this.live.source !== "drag") this.live = null; // Python's point wins, except mid-drag
    this.fitPad(d.pad_px);
    this.hookPlots();
    this.refresh();
    if (d.hooks) installHooks();
    if (!this.failed) setFallbackHidden(true);
  }

  fail(message) {
    this.failed = message;
    this.error.hidden = false;
    this.error.textContent = message;
    setFallbackHidden(false);
    // Python left its digit out once told that this browser decodes: it is needed again.
    if (this.told && this.send) { this.told = false; this.send("failed", message); }
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
  }

  // Each commit carries a sequence number; Python echoes the last one it applied. Until it
  // has, the browser keeps its own point (a rerun from an earlier commit does not pull it
  // back), and a commit not applied within RESEND_MS is sent again: none is lost.
  commit(z, select = null) {
    z = this.clamp(z);
    this.committed = z;
    this.live = null;
    this.stats.commits += 1;
    this.seq = (this.seq || 0) + 1;
    // decodes: Python then stops drawing its fallback digit (until "failed").
    this.told = !this.failed && !!this.model;
    this.pending = { z1: z[0], z2: z[1], select, seq: this.seq, session: this.session, decodes: this.told };
    this.refresh();
    this.sendPending();
  }

  sendPending() {
    clearTimeout(this.resend);
    if (!this.pending) return;
    this.send("commit", this.pending);
    this.resend = setTimeout(() => { this.stats.resent = (this.stats.resent || 0) + 1; this.sendPending(); }, RESEND_MS);
  }

  // Paint everything that shows the point: digit, sliders, pad, scatter and manifold overlays.
  refresh() {
    const z = this.current();
    this.paintDigit(z);
    const focused = this.root.getRootNode().activeElement;
    this.sliders.forEach((s, k) => { if (focused !== s || !this.live) s.value = z[k]; });
    this.outputs.forEach((o, k) => { o.textContent = z[k].toFixed(2); });
    this.drawPad();
    this.drawScatter();
    this.drawManifold();
  }

  paintDigit(z) {
    if (!this.model || this.failed) {
      this.readout.textContent = this.failed ? "" : "loading the decoder…";
      return;
    }
    const what = this.live ? { hover: "preview", drag: "dragging", slider: "dragging", pad: "dragging", key: "moving" }[this.live.source] : "committed";
    const say = (ms) => { this.readout.textContent = `z = (${z[0].toFixed(3)}, ${z[1].toFixed(3)}) · ${what} · decoded in your browser in ${ms.toFixed(1)} ms`; };
    // Committed where it was shown, by the same model: nothing to repaint. A new model (a finished
    // run, the model picker) repaints at once, at the same point.
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
    const n = this.model.size, im = this.dctx.createImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      const g = Math.round(img[i] * 255); // white on black, as MNIST
      im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = g;
      im.data[4 * i + 3] = 255;
    }
    this.dctx.putImageData(im, 0, 0);
    say(ms);
    this.digit.dataset.z = `${z[0]},${z[1]}`;
  }

  // ---- sliders: repaint on every input event, commit on release or key-up ----

  listenSliders() {
    this.sliders.forEach((s, k) => {
      const zAt = () => { const z = this.current().slice(); z[k] = Number(s.value); return z; };
      s.addEventListener("input", () => this.preview(zAt(), "slider"));
      s.addEventListener("change", () => this.commit(zAt()));
      s.addEventListener("keydown", (e) => {
        if (!e.shiftKey) return; // plain arrows: the browser's own steps ("input" and "change" follow)
        const dir = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -1, PageUp: 1 }[e.key];
        if (!dir) return;
        e.preventDefault();
        const z = this.current().slice();
        z[k] += dir * 10 * this.step;
        this.preview(z, "key");
        this.shiftMoved = true;
      });
      s.addEventListener("keyup", () => { if (this.shiftMoved) { this.shiftMoved = false; this.commit(this.current()); } });
    });
  }

  // ---- the pad: a touch-friendly 2-D slider with the encodings drawn faintly ----

  fitPad(maxPx) {
    const room = this.root.clientWidth || maxPx;
    const s = Math.max(120, Math.min(maxPx, room));
    if (s !== this.padPx) { this.padPx = s; this.padKey = null; }
  }

  padToLatent(e) {
    const r = this.pad.getBoundingClientRect(), s = this.padPx, [a, b, c, d] = this.bounds;
    const px = (e.clientX - r.left - this.pad.clientLeft) * s / this.pad.clientWidth;
    const py = (e.clientY - r.top - this.pad.clientTop) * s / this.pad.clientHeight;
    return this.clamp([a + (px / s) * (b - a), d - (py / s) * (d - c)]);
  }

  listenPad() {
    const p = this.pad;
    p.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !this.bounds) return;
      p.setPointerCapture(e.pointerId);
      this.padDrag = true;
      this.preview(this.padToLatent(e), "pad");
      e.preventDefault();
    });
    p.addEventListener("pointermove", (e) => { if (this.padDrag) this.preview(this.padToLatent(e), "pad"); });
    const end = (e) => {
      if (!this.padDrag) return;
      this.padDrag = false;
      this.commit(e.type === "pointerup" ? this.padToLatent(e) : this.current());
    };
    p.addEventListener("pointerup", end);
    p.addEventListener("pointercancel", end);
    p.addEventListener("keydown", (e) => {
      const dir = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
      if (!dir || !this.bounds) return;
      e.preventDefault();
      const [a, b, c, d] = this.bounds, f = e.shiftKey ? 0.1 : 0.02, z = this.current();
      this.preview([z[0] + dir[0] * f * (b - a), z[1] + dir[1] * f * (d - c)], "key");
    });
    p.addEventListener("keyup", (e) => { if (e.key.startsWith("Arrow") && this.live) this.commit(this.live.z); });
  }

  drawPad() {
    if (!this.bounds) return;
    const s = this.padPx, dpr = window.devicePixelRatio || 1, px = Math.round(s * dpr), [a, b, c, d] = this.bounds;
    if (this.pad.width !== px) {
      this.pad.width = this.pad.height = px;
      this.pad.style.width = this.pad.style.height = `${s}px`;
    }
    // The encodings drawn faintly: redrawn only when what they show changes (10,000 rects).
    const key = JSON.stringify([s, dpr, this.bounds, this.pointsHash, this.palette]);
    if (key !== this.padKey) {
      this.padKey = key;
      this.padBg = this.padBackground(s, dpr);
      this.stats.padBackgrounds = (this.stats.padBackgrounds || 0) + 1;
    }
    const g = this.pad.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(this.padBg, 0, 0);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const mark = (z, fill) => {
      g.beginPath();
      g.arc(((z[0] - a) / (b - a)) * s, ((d - z[1]) / (d - c)) * s, 7, 0, 2 * Math.PI);
      g.fillStyle = fill;
      g.fill();
      g.lineWidth = 2;
      g.strokeStyle = "white";
      g.stroke();
    };
    mark(this.current(), this.live ? "rgba(255,75,75,0.95)" : "rgba(255,75,75,0.75)");
  }

  padBackground(s, dpr) {
    const bg = document.createElement("canvas");
    bg.width = bg.height = Math.round(s * dpr);
    const g = bg.getContext("2d"), [a, b, c, d] = this.bounds;
    g.scale(dpr, dpr);
    g.fillStyle = getComputedStyle(this.root).getPropertyValue("--st-secondary-background-color") || "#f0f2f6";
    g.fillRect(0, 0, s, s);
    if (this.points && this.palette) {
      // The points were quantised over the same ranges as the pad.
      const { n, x, y, label } = this.points;
      g.globalAlpha = 0.35;
      for (let i = 0; i < n; i++) {
        g.fillStyle = this.palette[label[i]] || "#888";
        g.fillRect(x[i] * s - 0.75, y[i] * s - 0.75, 1.5, 1.5);
      }
      g.globalAlpha = 1;
    }
    g.strokeStyle = "rgba(128,128,128,0.6)";
    g.beginPath();
    const ox = (-a / (b - a)) * s, oy = (d / (d - c)) * s;
    if (ox >= 0 && ox <= s) { g.moveTo(ox, 0); g.lineTo(ox, s); }
    if (oy >= 0 && oy <= s) { g.moveTo(0, oy); g.lineTo(s, oy); }
    g.stroke();
    g.fillStyle = "rgba(128,128,128,0.9)";
    g.font = "10px sans-serif";
    g.fillText(`z₁ ${a}…${b}`, 4, s - 4);
    g.fillText(`z₂ ${c}…${d}`, 4, 12);
    return bg;
  }

  // ---- the scatter: a 2-D slider ----

  hookPlots() {
    if (this.scatter.selector) this.scatter.find();
    if (this.manifold.selector) this.manifold.find();
    const waiting = !!this.scatter.selector && !this.scatter.attached();
    if (waiting !== this.watching) {
      this.watching = waiting;
      if (waiting) this.watch.observe(document.body, { childList: true, subtree: true });
      else this.watch.disconnect();
    }
  }

  hookScatter(gd) {
    const h = this.scatter;
    if (this.unhook) this.unhook(); // a new chart replaced the old one
    gd.on("plotly_afterplot", () => this.drawScatter());
    gd.on("plotly_relayout", () => this.drawScatter());
    gd.on("plotly_hover", (ev) => {
      const p = ev && ev.points && ev.points[0];
      const idx = p ? this.testIndex(p) : null;
      this.hoveredPoint = Number.isInteger(idx) ? { index: idx, z: [p.x, p.y] } : null;
    });
    gd.on("plotly_unhover", () => { this.hoveredPoint = null; });
    const ours = () => { const dm = gd._fullLayout.dragmode; return dm === false || dm === "false"; };
    gd.addEventListener("pointermove", (e) => {
      if (h.gd !== gd || !this.bounds || this.plotDrag) return;
      const { z, inside } = h.at(e);
      if (inside) this.preview(z, "hover");
      else if (this.live && this.live.source === "hover") this.endPreview();
    });
    // While the button is down Plotly lays a cover over the page (its drag machinery), so
    // the drag's moves and the release are heard on the window.
    const move = (e) => {
      const drag = this.plotDrag;
      if (!drag || h.gd !== gd) return;
      if (Math.hypot(e.clientX - drag.x, e.clientY - drag.y) > 3) drag.moved = true;
      if (drag.moved) this.preview(h.at(e).z, "drag");
    };
    window.addEventListener("pointermove", move, true);
    gd.addEventListener("pointerleave", () => {
      if (!this.plotDrag && this.live && this.live.source === "hover") this.endPreview();
    });
    gd.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !ours() || !h.at(e).inside) return;
      this.plotDrag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
    }, true);
    const up = (e) => {
      const drag = this.plotDrag;
      if (!drag) return;
      this.plotDrag = null;
      const { z } = h.at(e);
      if (drag.moved) return this.commit(z);
      // A click: on a test digit it selects that digit; elsewhere it moves the point there.
      if (this.hoveredPoint) return this.commit(this.hoveredPoint.z, this.hoveredPoint.index);
      this.commit(z);
    };
    window.addEventListener("pointerup", up, true);
    this.unhook = () => { window.removeEventListener("pointerup", up, true); window.removeEventListener("pointermove", move, true); };
    this.drawScatter();
  }

  // The test-set index of a hovered point. The scatter sends no indices (they were a sixth of
  // its bytes): trace "d" holds the digits labelled d in test-set order, and the encodings
  // payload has every label in that order, so the k-th point of trace d is the k-th d.
  testIndex(p) {
    if (Number.isInteger(p.customdata)) return p.customdata;
    const d = Number(p.data && p.data.name), k = p.pointNumber;
    if (!this.points || this.points.n !== this.nPoints || !Number.isInteger(d) || !Number.isInteger(k)) return null;
    if (!this.byLabel || this.byLabel.points !== this.points) {
      const lists = Array.from({ length: 256 }, () => []);
      this.points.label.forEach((l, i) => lists[l].push(i));
      this.byLabel = { points: this.points, lists };
    }
    const list = this.byLabel.lists[d];
    return list && k < list.length ? list[k] : null;
  }

  drawScatter() {
    const h = this.scatter;
    if (!h.gd || !h.gd._fullLayout || !this.bounds) return;
    const g = h.begin(), { x, y } = h.axes();
    const line = (z, color, dash) => {
      const [px, py] = h.toPx(z[0], z[1]);
      g.save();
      g.setLineDash(dash);
      g.lineWidth = 1;
      g.strokeStyle = color;
      g.beginPath();
      g.moveTo(px, y._offset); g.lineTo(px, y._offset + y._length);
      g.moveTo(x._offset, py); g.lineTo(x._offset + x._length, py);
      g.stroke();
      g.restore();
      return [px, py];
    };
    for (const layer of (this.overlays && this.overlays.layers) || []) this.drawLayer(g, h, layer);
    const dragging = this.live && this.live.source !== "hover";
    const marker = dragging ? this.live.z : this.committed;
    const [mx, my] = line(marker, "rgba(17,17,17,0.6)", [2, 3]);
    ring(g, mx, my, 10, "#111111", 3);
    g.beginPath(); g.arc(mx, my, 3, 0, 2 * Math.PI); g.fillStyle = "#111111"; g.fill();
    if (this.live && this.live.source === "hover") {
      const [hx, hy] = line(this.live.z, "rgba(255,59,48,0.8)", []);
      ring(g, hx, hy, 6, "#ff3b30", 2);
    }
    this.stats.scatterDraws = (this.stats.scatterDraws || 0) + 1;
  }

  // Feature layers from Python (ui/explorer.py overlay_layers): lines, markers, stars.
  drawLayer(g, h, L) {
    const pts = L.x.map((v, i) => h.toPx(v, L.y[i]));
    g.save();
    g.globalAlpha = L.opacity ?? 1;
    g.strokeStyle = g.fillStyle = L.color || "#444";
    if (L.mode.includes("lines") && pts.length > 1) {
      g.lineWidth = L.width || 2;
      g.setLineDash(L.dash === "dot" ? [2, 3] : L.dash === "dash" ? [6, 4] : []);
      g.beginPath();
      pts.forEach(([px, py], i) => (i ? g.lineTo(px, py) : g.moveTo(px, py)));
      if (L.fill) { g.globalAlpha = (L.opacity ?? 1) * 0.15; g.fill(); g.globalAlpha = L.opacity ?? 1; }
      g.stroke();
    }
    if (L.mode.includes("markers")) {
      const r = (L.size || 6) / 2;
      g.setLineDash([]);
      for (const [px, py] of pts) {
        g.beginPath();
        if (L.symbol === "star") {
          for (let i = 0; i < 10; i++) {
            const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = i % 2 ? r * 0.45 : r;
            i ? g.lineTo(px + rr * Math.cos(a), py + rr * Math.sin(a)) : g.moveTo(px + rr * Math.cos(a), py + rr * Math.sin(a));
          }
          g.closePath();
          g.fill();
          g.lineWidth = 1; g.strokeStyle = L.line || "#111"; g.stroke();
        } else {
          g.arc(px, py, r, 0, 2 * Math.PI);
          g.fill();
        }
      }
    }
    g.restore();
  }

  // ---- the manifold: the ring follows the point live ----

  hookManifold(gd) {
    gd.on("plotly_afterplot", () => this.drawManifold());
    gd.on("plotly_relayout", () => this.drawManifold());
    this.drawManifold();
  }

  drawManifold() {
    const h = this.manifold, m = this.manifoldMap;
    if (!h.gd || !h.gd._fullLayout) return;
    const g = h.begin();
    if (!m) return;
    const [z1, z2] = this.current(), [a, b, c, d] = m.inside;
    if (z1 < a || z1 > b || z2 < c || z2 > d) return;
    const [px, py] = h.toPx(m.x[0] * z1 + m.x[1], m.y[0] * z2 + m.y[1]);
    const scale = h.axes().x._length / m.side;
    ring(g, px, py, Math.max(8, (m.cell * scale) / 2), "#ff3b30", 3);
    this.stats.manifoldDraws = (this.stats.manifoldDraws || 0) + 1;
  }

  unmount() {
    clearInterval(this.poll);
    clearTimeout(this.resend);
    this.watch.disconnect();
    document.removeEventListener("cvae:overlays", this.onOverlays);
    if (this.unhook) this.unhook();
    for (const h of [this.scatter, this.manifold]) h.canvas.remove();
    this.root.remove();
  }
}

// The committed point lives in the page's URL (?z1=..&z2=..), so a link opens the explorer
// there (Python reads it once per session: ui/latent.py point_from_url). Written here when
// Python's rerun confirms the point (so the URL is what Python holds), without a history
// entry per move.
function pointToUrl(z) {
  const url = new URL(window.location.href), a = z[0].toFixed(3), b = z[1].toFixed(3);
  if (url.searchParams.get("z1") === a && url.searchParams.get("z2") === b) return;
  url.searchParams.set("z1", a);
  url.searchParams.set("z2", b);
  window.history.replaceState(window.history.state, "", url);
}

// The server-rendered digit (ui/explorer.py) is the fallback: hidden while this decoder works.
function setFallbackHidden(hidden) {
  let style = document.getElementById("cvae-fallback-style");
  if (hidden && !style) {
    style = document.createElement("style");
    style.id = "cvae-fallback-style";
    style.textContent = ".st-key-cvae_fallback { display: none !important; }";
    document.head.appendChild(style);
  } else if (!hidden && style) {
    style.remove();
  }
}

// Test and benchmark hooks, installed only when Python asks for them ($CVAE_TEST_HOOKS=1).
const LIVE = new Set();
function installHooks() {
  if (globalThis.cvaeExplorer) return;
  const first = () => {
    const x = [...LIVE].find((e) => e.model);
    if (!x) throw new Error("no explorer has its decoder yet");
    return x;
  };
  globalThis.cvaeExplorer = {
    decode: (points) => points.map((z) => Array.from(decode(first().model, z))),
    timeDecode(n) {
      const m = first().model, t0 = performance.now();
      for (let i = 0; i < n; i++) decode(m, [2 * Math.cos(i / 10), 2 * Math.sin(i / 10)]);
      return (performance.now() - t0) / n;
    },
    stats: () => [...LIVE].map((x) => ({ ...x.stats, committed: x.committed.slice(), shown: x.shown && x.shown.slice(),
                                          live: x.live && { ...x.live }, hasModel: !!x.model, selected: x.selected,
                                          scatter: !!x.scatter.gd, manifold: !!x.manifold.gd, failed: x.failed,
                                          watching: x.watching })),
    // Client (page) coordinates of a latent point on the scatter or the manifold.
    scatterPx(z1, z2) {
      const h = first().scatter, r = h.gd.getBoundingClientRect(), [px, py] = h.toPx(z1, z2);
      return [r.left + px, r.top + py];
    },
    scatterLatent(clientX, clientY) { return first().scatter.at({ clientX, clientY }).z; },
    // The feature layers drawn over the scatter: {name: {x, y}}.
    overlays() {
      const out = {};
      for (const L of (first().overlays && first().overlays.layers) || []) out[L.name] = { x: L.x, y: L.y };
      return out;
    },
    manifoldRing() {
      const x = first(), m = x.manifoldMap, h = x.manifold, [z1, z2] = x.current();
      const r = h.gd.getBoundingClientRect(), [px, py] = h.toPx(m.x[0] * z1 + m.x[1], m.y[0] * z2 + m.y[1]);
      return [r.left + px, r.top + py];
    },
  };
}

export function update(host, component, values) {
  let x = EXPLORERS.get(host);
  if (!x) { x = new Explorer(host); EXPLORERS.set(host, x); LIVE.add(x); }
  x.update(component, values);
}

export function fail(host, message) {
  const x = EXPLORERS.get(host);
  if (x) x.fail(message);
}

export function unmount(host) {
  const x = EXPLORERS.get(host);
  if (x) { x.unmount(); LIVE.delete(x); EXPLORERS.delete(host); }
}
