// Latent pad: the CVAE decoder runs here, in the browser, so dragging morphs the
// digit every frame with no server round trip. Python (ui/pad.py) sends the
// decoder weights once (cvae/webexport.py: float32-le base64 + shapes + hash);
// this module keeps them per page, keyed by hash, and afterwards gets only the hash.
// On release the point goes back to Python as the trigger value "release".

const MODELS = new Map(); // weights hash -> prepared decoder (kept across reruns and remounts)
const MAPS = new Map();   // points hash -> {n, x, y, label} (the faint map of encodings)
const PADS = new WeakMap(); // component root -> Pad
const KEEP = 4;           // models/maps kept per page (a retrain makes a new hash)
// Tableau-10, the order Plotly's default qualitative palette uses for digits 0-9.
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function remember(map, key, value) {
  map.set(key, value);
  while (map.size > KEEP) map.delete(map.keys().next().value);
}

function base64Bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// ---- the decoder -------------------------------------------------------------

// PyTorch layouts in, loop-friendly layouts out: activations are kept as
// (row, column, channel) so the innermost loop walks both arrays contiguously.
function prepareDecoder(p) {
  if (p.format !== "cvae-decoder/1") throw new Error(`unknown decoder format ${p.format}`);
  const bytes = base64Bytes(p.b64);
  if (bytes.length !== 4 * p.n_floats) throw new Error("decoder payload has the wrong length");
  const view = new DataView(bytes.buffer);
  const tensor = (name) => {
    const t = p.tensors[name];
    const n = t.shape.reduce((a, b) => a * b, 1);
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = view.getFloat32(4 * (t.offset + i), true);
    return { a, shape: t.shape };
  };
  const S = p.side, [F1, F2] = p.filters, D = p.latent_dim;
  // Dense rows are (channel, row, col) in PyTorch's view(); reorder to (row, col, channel).
  const dw = tensor("dense.weight").a, db = tensor("dense.bias").a;
  const denseW = new Float64Array(dw.length), denseB = new Float64Array(db.length);
  for (let c = 0; c < F2; c++)
    for (let q = 0; q < S * S; q++) {
      const from = c * S * S + q, to = q * F2 + c;
      denseB[to] = db[from];
      for (let d = 0; d < D; d++) denseW[to * D + d] = dw[from * D + d];
    }
  // ConvTranspose2d weights (in, out, k, k) -> (in, kh, kw, out).
  const deconv = (name, stride, pad, hIn, hOut) => {
    const { a, shape: [cin, cout, k] } = tensor(name + ".weight");
    const w = new Float64Array(a.length);
    for (let c = 0; c < cin; c++)
      for (let o = 0; o < cout; o++)
        for (let t = 0; t < k * k; t++) w[(c * k * k + t) * cout + o] = a[(c * cout + o) * k * k + t];
    return { w, b: tensor(name + ".bias").a, cin, cout, k, stride, pad, hIn, hOut,
             y: new Float64Array(hOut * hOut * cout) };
  };
  return {
    D, S, size: p.image_size, denseW, denseB, h0: new Float64Array(S * S * F2),
    // Keras "same" transposed convs: stride 2 gives 2n+1 rows, the first 2n are kept.
    layers: [deconv("deconv1", 2, 0, S, 2 * S), deconv("deconv2", 2, 0, 2 * S, 4 * S),
             deconv("deconv3", 1, 1, 4 * S, p.image_size)],
  };
}

// y[oy, ox, o] = b[o] + sum x[i, j, c] * w[c, kh, kw, o] over oy = i*stride + kh - pad
// (likewise ox); rows/columns past hOut are cropped. Zero inputs (after ReLU) are skipped.
function deconv(x, L) {
  const { w, b, cin, cout, k, stride, pad, hIn, hOut, y } = L;
  for (let q = 0; q < hOut * hOut; q++) y.set(b, q * cout);
  for (let i = 0; i < hIn; i++)
    for (let j = 0; j < hIn; j++) {
      const xb = (i * hIn + j) * cin;
      for (let kh = 0; kh < k; kh++) {
        const oy = i * stride + kh - pad;
        if (oy < 0 || oy >= hOut) continue;
        for (let kw = 0; kw < k; kw++) {
          const ox = j * stride + kw - pad;
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

const relu = (a) => { for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] = 0; return a; };

// z (array of latent_dim numbers) -> Float32Array(size*size) of pixel probabilities.
function decode(m, z) {
  const h = m.h0;
  for (let r = 0; r < h.length; r++) {
    let s = m.denseB[r];
    for (let d = 0; d < m.D; d++) s += m.denseW[r * m.D + d] * z[d];
    h[r] = s > 0 ? s : 0;
  }
  const [l1, l2, l3] = m.layers;
  const logits = deconv(relu(deconv(relu(deconv(h, l1)), l2)), l3); // one channel: (row, col)
  const out = new Float32Array(logits.length);
  for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-logits[i]));
  return out;
}

// ---- the encodings map -----------------------------------------------------------

function preparePoints(p) {
  if (p.format !== "cvae-points/1") throw new Error(`unknown points format ${p.format}`);
  const bytes = base64Bytes(p.b64);
  const view = new DataView(bytes.buffer);
  const n = p.n, x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = view.getUint16(4 * i, true) / 65535;
    y[i] = view.getUint16(4 * i + 2, true) / 65535;
  }
  return { n, x, y, label: bytes.subarray(4 * n, 5 * n) };
}

// ---- the component ---------------------------------------------------------------

class Pad {
  constructor(root) {
    this.root = document.createElement("div");
    this.root.className = "cvae-pad";
    this.root.innerHTML = `
      <canvas class="pad" tabindex="0" role="slider" aria-label="latent point: drag, or use the arrow keys"></canvas>
      <canvas class="digit" width="28" height="28" role="img" aria-label="decoded digit"></canvas>
      <div class="readout"></div>`;
    root.appendChild(this.root);
    [this.pad, this.digit, this.readout] = this.root.children;
    this.ctx = this.pad.getContext("2d");
    this.dctx = this.digit.getContext("2d");
    this.z = [0, 0];
    this.shown = null;      // the z last decoded and painted
    this.dragging = false;
    this.requested = new Set();
    this.stats = { decodes: 0, decodeMs: 0, lastDecodeMs: 0, frames: 0, releases: 0 };
    this.frame = 0;
    this.listen();
    // Keep pad and digit side by side in narrow columns: shrink both to fit.
    this.resize = new ResizeObserver(() => { if (this.maxSize && this.fit()) this.schedule(); });
    this.resize.observe(this.root);
  }

  // Side of the pad and of the digit in CSS pixels; true if it changed.
  fit() {
    const gap = 14, room = Math.floor((this.root.clientWidth - gap) / 2);
    const size = Math.max(96, Math.min(this.maxSize, room > 0 ? room : this.maxSize));
    if (size === this.sizePx) return false;
    [this.sizePx, this.background, this.shown] = [size, null, null];
    return true;
  }

  update(data, setTriggerValue) {
    this.send = setTriggerValue;
    this.z1Range = data.z1_range;
    this.z2Range = data.z2_range;
    this.maxSize = data.size;
    this.fit();
    const need = {};
    this.model = this.asset(MODELS, data.weights, prepareDecoder, "weights", need);
    this.modelHash = data.weights.hash;
    this.points = data.points ? this.asset(MAPS, data.points, preparePoints, "points", need) : null;
    if (Object.keys(need).length) this.send("need", need);
    // Python's point (slider, scatter click, release) moves the handle, unless the
    // user is holding it right now.
    if (!this.dragging) this.z = [Number(data.z[0]), Number(data.z[1])];
    const theme = getComputedStyle(this.root).getPropertyValue("--st-secondary-background-color");
    const bgKey = JSON.stringify([data.points && data.points.hash, !!this.points, data.z1_range, data.z2_range,
                                  this.sizePx, theme]);
    if (bgKey !== this.bgKey) [this.bgKey, this.background] = [bgKey, null];
    this.shown = null;
    this.schedule();
  }

  asset(cache, ref, prepare, kind, need) {
    if (ref.payload && !cache.has(ref.hash)) remember(cache, ref.hash, prepare(ref.payload));
    const value = cache.get(ref.hash);
    if (!value && !this.requested.has(ref.hash)) {
      this.requested.add(ref.hash); // ask once: the server resends on "need"
      need[kind] = ref.hash;
    }
    return value || null;
  }

  // pad pixel <-> latent coordinates; z2 grows upwards.
  toLatent(px, py) {
    const [a, b] = this.z1Range, [c, d] = this.z2Range, s = this.sizePx;
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    return [clamp(a + (px / s) * (b - a), a, b), clamp(d - (py / s) * (d - c), c, d)];
  }

  toPixel([z1, z2]) {
    const [a, b] = this.z1Range, [c, d] = this.z2Range, s = this.sizePx;
    return [((z1 - a) / (b - a)) * s, ((d - z2) / (d - c)) * s];
  }

  listen() {
    const at = (e) => {
      // Relative to the canvas's content box (inside its border), in CSS pixels.
      const r = this.pad.getBoundingClientRect(), k = this.sizePx / this.pad.clientWidth;
      return this.toLatent((e.clientX - r.left - this.pad.clientLeft) * k,
                           (e.clientY - r.top - this.pad.clientTop) * k);
    };
    this.pad.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      this.pad.setPointerCapture(e.pointerId);
      this.dragging = true;
      this.z = at(e);
      this.schedule();
      e.preventDefault();
    });
    this.pad.addEventListener("pointermove", (e) => {
      if (!this.dragging) return;
      this.z = at(e);
      this.schedule();
    });
    const release = (e) => {
      if (!this.dragging) return;
      this.dragging = false;
      if (e.type === "pointerup") this.z = at(e);
      this.render();
      this.commit();
    };
    this.pad.addEventListener("pointerup", release);
    this.pad.addEventListener("pointercancel", release);
    this.pad.addEventListener("keydown", (e) => {
      const dir = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
      if (!dir) return;
      e.preventDefault();
      const step = (e.shiftKey ? 0.1 : 0.02);
      const [a, b] = this.z1Range, [c, d] = this.z2Range;
      this.z = [Math.min(b, Math.max(a, this.z[0] + dir[0] * step * (b - a))),
                Math.min(d, Math.max(c, this.z[1] + dir[1] * step * (d - c)))];
      this.schedule();
    });
    this.pad.addEventListener("keyup", (e) => {
      if (e.key.startsWith("Arrow")) this.commit();
    });
  }

  commit() {
    this.stats.releases += 1;
    this.send("release", { z1: this.z[0], z2: this.z[1] });
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    if (this.shown && this.shown[0] === this.z[0] && this.shown[1] === this.z[1]) return;
    this.shown = this.z.slice();
    this.stats.frames += 1;
    this.drawPad();
    if (this.model) {
      const t0 = performance.now();
      const img = decode(this.model, this.z);
      const ms = performance.now() - t0;
      Object.assign(this.stats, { decodes: this.stats.decodes + 1, decodeMs: this.stats.decodeMs + ms, lastDecodeMs: ms });
      this.paintDigit(img);
      this.readout.textContent =
        `z = (${this.z[0].toFixed(2)}, ${this.z[1].toFixed(2)}) · decoded in your browser in ${ms.toFixed(1)} ms`;
    } else {
      this.readout.textContent = "loading the decoder…";
    }
  }

  paintDigit(img) {
    const n = this.model.size, im = this.dctx.createImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      const g = Math.round(img[i] * 255); // white digit on black, as MNIST
      im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = g;
      im.data[4 * i + 3] = 255;
    }
    this.dctx.putImageData(im, 0, 0);
    this.digit.style.width = this.digit.style.height = `${this.sizePx}px`;
  }

  // The axes and the encodings are drawn once into an offscreen canvas; each frame
  // copies it and draws the handle on top.
  drawBackground() {
    const s = this.sizePx, dpr = window.devicePixelRatio || 1;
    const bg = document.createElement("canvas");
    bg.width = bg.height = Math.round(s * dpr);
    const g = bg.getContext("2d");
    g.scale(dpr, dpr);
    const style = getComputedStyle(this.root);
    g.fillStyle = style.getPropertyValue("--st-secondary-background-color") || "#f0f2f6";
    g.fillRect(0, 0, s, s);
    if (this.points) {
      const { n, x, y, label } = this.points;
      g.globalAlpha = 0.35;
      for (let i = 0; i < n; i++) {
        g.fillStyle = label[i] < 10 ? COLORS[label[i]] : "#888";
        g.fillRect(x[i] * s - 0.75, y[i] * s - 0.75, 1.5, 1.5);
      }
      g.globalAlpha = 1;
    }
    // Axes through z = 0 where they fall inside the ranges.
    g.strokeStyle = "rgba(128,128,128,0.6)";
    g.lineWidth = 1;
    const [ox, oy] = this.toPixel([0, 0]);
    g.beginPath();
    if (ox >= 0 && ox <= s) { g.moveTo(ox, 0); g.lineTo(ox, s); }
    if (oy >= 0 && oy <= s) { g.moveTo(0, oy); g.lineTo(s, oy); }
    g.stroke();
    g.fillStyle = "rgba(128,128,128,0.9)";
    g.font = "10px sans-serif";
    g.fillText(`z₁ ${this.z1Range[0]}…${this.z1Range[1]}`, 4, s - 4);
    g.fillText(`z₂ ${this.z2Range[0]}…${this.z2Range[1]}`, 4, 12);
    this.background = bg;
  }

  drawPad() {
    const s = this.sizePx, dpr = window.devicePixelRatio || 1, px = Math.round(s * dpr);
    if (this.pad.width !== px) {
      this.pad.width = this.pad.height = px;
      this.pad.style.width = this.pad.style.height = `${s}px`;
    }
    if (!this.background) this.drawBackground();
    const g = this.ctx;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(this.background, 0, 0);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const [hx, hy] = this.toPixel(this.z);
    g.beginPath();
    g.arc(hx, hy, 7, 0, 2 * Math.PI);
    g.fillStyle = this.dragging ? "rgba(255,75,75,0.9)" : "rgba(255,75,75,0.7)";
    g.fill();
    g.lineWidth = 2;
    g.strokeStyle = "white";
    g.stroke();
  }
}

// Inspection hooks for tests and benchmarks: decode with the decoder a mounted pad
// holds (exactly the code the pad paints with) and read its counters.
globalThis.cvaeLatentPad = {
  pads: new Set(),
  decode(points) {
    const pad = [...this.pads].find((p) => p.model);
    if (!pad) throw new Error("no latent pad has its decoder yet");
    return points.map((z) => Array.from(decode(pad.model, z)));
  },
  // Milliseconds per decode over n decodes around a circle, without painting.
  timeDecode(n) {
    const pad = [...this.pads].find((p) => p.model);
    if (!pad) throw new Error("no latent pad has its decoder yet");
    const t0 = performance.now();
    for (let i = 0; i < n; i++) decode(pad.model, [2 * Math.cos(i / 10), 2 * Math.sin(i / 10)]);
    return (performance.now() - t0) / n;
  },
  stats() {
    return [...this.pads].map((p) => ({ ...p.stats, z: p.z.slice(), hasModel: !!p.model, hash: p.modelHash }));
  },
  // Drop every cached decoder and map, as a fresh page would have none; the next
  // rerun then finds only hashes and must ask the server for the payloads again.
  forget() {
    MODELS.clear();
    MAPS.clear();
    for (const p of this.pads) {
      [p.model, p.points, p.bgKey] = [null, null, null];
      p.requested.clear();
    }
  },
};

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let pad = PADS.get(parentElement);
  if (!pad) {
    pad = new Pad(parentElement);
    PADS.set(parentElement, pad);
    globalThis.cvaeLatentPad.pads.add(pad);
  }
  pad.update(data, setTriggerValue);
  return () => {
    globalThis.cvaeLatentPad.pads.delete(pad);
    PADS.delete(parentElement);
    pad.resize.disconnect();
    pad.root.remove();
  };
}
