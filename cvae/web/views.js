// What shows the point: the digit canvas and its readout, the z1/z2 sliders, the pad, and the
// marks drawn over a scatter or a manifold (rings, cross-hairs, the feature layers). Views
// report moves to the explorer (preview, commit) and never decide what a move means.

export function explorerDom(host) {
  const root = document.createElement("div");
  root.className = "cvae-explorer";
  root.innerHTML = `
    <div class="digits">
      <figure class="digit-box">
        <canvas class="digit" width="28" height="28" role="img" aria-label="decoded digit"></canvas>
        <figcaption class="caption" hidden></figcaption>
        <div class="cvae-error" role="alert" hidden></div>
      </figure>
      <figure class="digit-box second" hidden>
        <canvas class="digit2" width="28" height="28" role="img" aria-label="the second model's decode of the same point"></canvas>
        <figcaption class="caption"></figcaption>
        <div class="cvae-error" role="alert" hidden></div>
      </figure>
    </div>
    <canvas class="float" width="28" height="28" aria-hidden="true" hidden></canvas>
    <div class="readout" aria-live="off"></div>
    <label class="zrow"><span>z1</span><input type="range" aria-label="z1"><output></output></label>
    <label class="zrow"><span>z2</span><input type="range" aria-label="z2"><output></output></label>
    <canvas class="pad" tabindex="0" role="slider" aria-label="latent pad: drag, or use the arrow keys"></canvas>
    <div class="hint"></div>
    <p class="said" role="status" aria-live="polite" aria-atomic="true"></p>`;
  host.appendChild(root);
  const q = (s) => root.querySelector(s);
  const second = q(".digit-box.second");
  return {
    root, digit: q("canvas.digit"), float: q("canvas.float"), error: q(".cvae-error"), readout: q(".readout"), pad: q("canvas.pad"),
    caption: q(".digit-box .caption"), second: { box: second, digit: q("canvas.digit2"), caption: second.querySelector(".caption"),
                                                 error: second.querySelector(".cvae-error") },
    hint: q(".hint"), said: q(".said"), sliders: [...root.querySelectorAll("input[type=range]")], outputs: [...root.querySelectorAll("output")],
  };
}

// Pixel probabilities (n x n) as white on black, as MNIST.
export function paintImage(ctx, img, n) {
  const im = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const g = Math.round(img[i] * 255);
    im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = g;
    im.data[4 * i + 3] = 255;
  }
  ctx.putImageData(im, 0, 0);
}

// Sliders repaint on every input event and commit on release or key-up; Shift+arrow steps 10x.
export function listenSliders(sliders, x) {
  sliders.forEach((s, k) => {
    const zAt = () => { const z = x.current().slice(); z[k] = Number(s.value); return z; };
    s.addEventListener("input", () => x.preview(zAt(), "slider"));
    s.addEventListener("change", () => x.commit(zAt()));
    let shiftMoved = false;
    s.addEventListener("keydown", (e) => {
      if (!e.shiftKey) return; // plain arrows: the browser's own steps ("input" and "change" follow)
      const dir = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -1, PageUp: 1 }[e.key];
      if (!dir) return;
      e.preventDefault();
      const z = x.current().slice();
      z[k] += dir * 10 * x.step;
      x.preview(z, "key");
      shiftMoved = true;
    });
    s.addEventListener("keyup", () => { if (shiftMoved) { shiftMoved = false; x.commit(x.current()); } });
  });
}

// The pad: a touch-friendly 2-D slider with the encodings drawn faintly.
export class Pad {
  constructor(canvas, x) {
    this.canvas = canvas;
    this.x = x;
    this.px = 0;
    this.key = null;
    this.backgrounds = 0;
    this.listen();
  }

  fit(maxPx, room) {
    const s = Math.max(120, Math.min(maxPx, room || maxPx));
    if (s !== this.px) { this.px = s; this.key = null; }
  }

  toLatent(e) {
    const c = this.canvas, r = c.getBoundingClientRect(), s = this.px, [a, b, lo, hi] = this.x.bounds;
    const px = (e.clientX - r.left - c.clientLeft) * s / c.clientWidth;
    const py = (e.clientY - r.top - c.clientTop) * s / c.clientHeight;
    return this.x.clamp([a + (px / s) * (b - a), hi - (py / s) * (hi - lo)]);
  }

  listen() {
    const p = this.canvas, x = this.x;
    p.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !x.bounds) return;
      p.setPointerCapture(e.pointerId);
      this.dragging = true;
      x.preview(this.toLatent(e), "pad");
      e.preventDefault();
    });
    p.addEventListener("pointermove", (e) => { if (this.dragging) x.preview(this.toLatent(e), "pad"); });
    const end = (e) => {
      if (!this.dragging) return;
      this.dragging = false;
      x.commit(e.type === "pointerup" ? this.toLatent(e) : x.current());
    };
    p.addEventListener("pointerup", end);
    p.addEventListener("pointercancel", end);
    p.addEventListener("keydown", (e) => {
      const dir = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
      if (!dir || !x.bounds) return;
      e.preventDefault();
      const [a, b, c, d] = x.bounds, f = e.shiftKey ? 0.1 : 0.02, z = x.current();
      x.preview([z[0] + dir[0] * f * (b - a), z[1] + dir[1] * f * (d - c)], "key");
    });
    p.addEventListener("keyup", (e) => { if (e.key.startsWith("Arrow") && x.live) x.commit(x.live.z); });
  }

  draw({ bounds, points, pointsHash, palette, z, live, background }) {
    if (!bounds) return;
    const s = this.px, dpr = globalThis.devicePixelRatio || 1, px = Math.round(s * dpr), [a, b, c, d] = bounds;
    // A slider's required values (its left-right axis is z1); the text says both coordinates.
    const aria = { "aria-valuemin": a, "aria-valuemax": b, "aria-valuenow": z[0].toFixed(2),
                   "aria-valuetext": `z1 ${z[0].toFixed(2)}, z2 ${z[1].toFixed(2)}` };
    for (const [k, v] of Object.entries(aria)) if (this.canvas.getAttribute(k) !== String(v)) this.canvas.setAttribute(k, v);
    if (this.canvas.width !== px) {
      this.canvas.width = this.canvas.height = px;
      this.canvas.style.width = this.canvas.style.height = `${s}px`;
    }
    // The encodings drawn faintly: redrawn only when what they show changes (10,000 rects).
    const key = JSON.stringify([s, dpr, bounds, pointsHash, palette]);
    if (key !== this.key) {
      this.key = key;
      this.bg = padBackground(s, dpr, bounds, points, palette, background);
      this.backgrounds += 1;
    }
    const g = this.canvas.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(this.bg, 0, 0);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.beginPath();
    g.arc(((z[0] - a) / (b - a)) * s, ((d - z[1]) / (d - c)) * s, 7, 0, 2 * Math.PI);
    g.fillStyle = live ? "rgba(255,75,75,0.95)" : "rgba(255,75,75,0.75)";
    g.fill();
    g.lineWidth = 2;
    g.strokeStyle = "white";
    g.stroke();
  }
}

function padBackground(s, dpr, bounds, points, palette, background) {
  const bg = document.createElement("canvas");
  bg.width = bg.height = Math.round(s * dpr);
  const g = bg.getContext("2d"), [a, b, c, d] = bounds;
  g.scale(dpr, dpr);
  g.fillStyle = background || "#f0f2f6";
  g.fillRect(0, 0, s, s);
  if (points && palette) {
    // The points were quantised over the same ranges as the pad.
    const { n, x, y, label } = points;
    g.globalAlpha = 0.35;
    for (let i = 0; i < n; i++) {
      g.fillStyle = palette[label[i]] || "#888";
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

// A cleared 2-D context over an overlay canvas of w x h CSS pixels, clipped to the area.
export function beginOverlay(c, w, h, area) {
  const dpr = globalThis.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    [c.width, c.height] = [Math.round(w * dpr), Math.round(h * dpr)];
    [c.style.width, c.style.height] = [`${w}px`, `${h}px`];
  }
  const g = c.getContext("2d");
  g.setTransform(1, 0, 0, 1, 0, 0);
  g.clearRect(0, 0, c.width, c.height);
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.beginPath();
  g.rect(area.left, area.top, area.width, area.height);
  g.clip();
  return g;
}

export function ring(g, px, py, r, color, width) {
  g.beginPath();
  g.arc(px, py, r, 0, 2 * Math.PI);
  g.lineWidth = width;
  g.strokeStyle = color;
  g.stroke();
}

// The marks on a scatter surface: the feature layers, the committed (or dragged) point as a
// black ring with cross-hairs, a hovered point as a red ring and the selected test digit (where
// this scatter's model encodes it) as a blue double ring.
export function drawMarks(g, surface, { layers, marker, hover, selected = null }) {
  const area = surface.area();
  const line = (z, color, dash) => {
    const [px, py] = surface.toPx(z[0], z[1]);
    g.save();
    g.setLineDash(dash);
    g.lineWidth = 1;
    g.strokeStyle = color;
    g.beginPath();
    g.moveTo(px, area.top); g.lineTo(px, area.top + area.height);
    g.moveTo(area.left, py); g.lineTo(area.left + area.width, py);
    g.stroke();
    g.restore();
    return [px, py];
  };
  for (const layer of layers || []) drawLayer(g, surface, layer);
  const [mx, my] = line(marker, "rgba(17,17,17,0.6)", [2, 3]);
  ring(g, mx, my, 10, "#111111", 3);
  g.beginPath(); g.arc(mx, my, 3, 0, 2 * Math.PI); g.fillStyle = "#111111"; g.fill();
  if (hover) {
    const [hx, hy] = line(hover, "rgba(255,59,48,0.8)", []);
    ring(g, hx, hy, 6, "#ff3b30", 2);
  }
  if (selected) {
    const [sx, sy] = surface.toPx(selected[0], selected[1]);
    ring(g, sx, sy, 15, "#ffffff", 5);
    ring(g, sx, sy, 15, SELECTED_RING, 3);
  }
}

export const SELECTED_RING = "#0072b2"; // the selected test digit's ring (blue: apart from the black point and red hover)

// Feature layers from Python (ui/explorer.py overlay_layers): lines, markers, stars.
function drawLayer(g, surface, L) {
  const pts = L.x.map((v, i) => surface.toPx(v, L.y[i]));
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

// The manifold's ring: where the point falls in the grid (m: ui/explorer.py manifold_map).
export function drawManifoldRing(g, surface, m, z) {
  const [z1, z2] = z, [a, b, c, d] = m.inside;
  if (z1 < a || z1 > b || z2 < c || z2 > d) return false;
  const [px, py] = surface.toPx(m.x[0] * z1 + m.x[1], m.y[0] * z2 + m.y[1]);
  const scale = surface.area().width / m.side;
  ring(g, px, py, Math.max(8, (m.cell * scale) / 2), "#ff3b30", 3);
  return true;
}
