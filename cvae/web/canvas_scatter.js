// The static site's scatter: the encoded test digits on a canvas, a 2-D slider with the app's
// gestures (gesture.js: hover previews, press-drag moves, release commits, a click selects), with
// what people use Plotly's for: a legend that toggles digits (double-click: only that one),
// zoom (wheel, pinch, buttons), pan (two fingers, Shift+drag, or the pan button) and a reset
// (double-click or the button). It is a surface for the explorer, as the app's Plotly hook is.
import { Gesture, explorerCallbacks } from "./gesture.js";
import { markPath } from "./marks.js";
import { beginOverlay } from "./views.js";

const MARGIN = { left: 44, right: 8, top: 8, bottom: 34 };
const HIT_PX = 6;     // a click within this many pixels of a digit selects it

export class CanvasScatter {
  // box: the element to fill; x: the explorer; points: prepared points (x, y in [0, 1] over
  // bounds, y downwards); bounds: [z1 lo, z1 hi, z2 lo, z2 hi]; palette: a colour per digit;
  // symbols: a marker shape per digit (marks.js).
  constructor(box, x, { points, bounds, palette, symbols = [] }) {
    this.x = x;
    this.points = points;
    this.bounds = bounds;
    this.palette = palette;
    this.symbols = symbols;
    this.hidden = new Set();
    this.box = box;
    box.classList.add("cvae-scatter");
    box.innerHTML = `
      <div class="legend" role="group" aria-label="digits: click to hide or show, double-click to show only one"></div>
      <div class="plot">
        <canvas class="points" role="img" aria-label="encoded test digits"></canvas>
        <canvas class="marks"></canvas>
        <div class="tip" hidden></div>
        <div class="tools">
          <button type="button" data-act="in" title="zoom in" aria-label="zoom in">+</button>
          <button type="button" data-act="out" title="zoom out" aria-label="zoom out">−</button>
          <button type="button" data-act="pan" title="pan: drag moves the view" aria-label="pan" aria-pressed="false">✥</button>
          <button type="button" data-act="reset" title="reset the view" aria-label="reset the view">⟲</button>
        </div>
      </div>`;
    const q = (s) => box.querySelector(s);
    [this.plot, this.base, this.canvas, this.tip] = [q(".plot"), q("canvas.points"), q("canvas.marks"), q(".tip")];
    this.makeLegend(q(".legend"));
    this.latent = this.toLatentArrays();
    this.pointers = new Map();
    this.listen();
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.plot);
    this.layout();
  }

  // ---- the surface the explorer draws on ----
  find() { return this; }
  attached() { return true; }
  ready() { return this.w > 0 && !!this.view; }
  area() { return { left: MARGIN.left, top: MARGIN.top, width: this.pw, height: this.ph }; }
  toPx(z1, z2) {
    const v = this.view;
    return [MARGIN.left + (z1 - v.x0) * v.k, MARGIN.top + (v.y1 - z2) * v.k];
  }
  at(e) {
    const r = this.plot.getBoundingClientRect(), v = this.view;
    const px = e.clientX - r.left - MARGIN.left, py = e.clientY - r.top - MARGIN.top;
    return { z: [v.x0 + px / v.k, v.y1 - py / v.k], inside: px >= 0 && px <= this.pw && py >= 0 && py <= this.ph };
  }
  client(z1, z2) {
    const r = this.plot.getBoundingClientRect(), [px, py] = this.toPx(z1, z2);
    return [r.left + px, r.top + py];
  }
  begin() { return beginOverlay(this.canvas, this.w, this.h, this.area()); }
  detach() { this.resize.disconnect(); }

  // ---- data ----
  toLatentArrays() {
    const { n, x, y } = this.points, [a, b, c, d] = this.bounds;
    const z1 = new Float32Array(n), z2 = new Float32Array(n);
    for (let i = 0; i < n; i++) { z1[i] = a + x[i] * (b - a); z2[i] = d - y[i] * (d - c); }
    return { z1, z2 };
  }

  makeLegend(el) {
    const labels = [...new Set(this.points.label)].filter((l) => l < 255).sort((p, q) => p - q);
    for (const l of labels) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.label = l;
      b.setAttribute("aria-pressed", "true");
      // The digit's colour and shape, drawn as on the plot.
      const swatch = document.createElement("canvas");
      swatch.className = "swatch";
      swatch.width = swatch.height = 24;
      swatch.setAttribute("aria-hidden", "true");
      const sg = swatch.getContext("2d");
      sg.fillStyle = this.palette[l];
      sg.beginPath();
      markPath(sg, this.symbols[l], 12, 12, 9);
      sg.fill();
      b.append(swatch, String(l));
      // A click toggles the digit; a double-click shows only it (again: all of them).
      b.addEventListener("click", () => { this.toggle(l); });
      b.addEventListener("dblclick", () => { this.isolate(l, labels); });
      el.appendChild(b);
    }
    this.legend = el;
  }

  toggle(l) {
    if (this.hidden.has(l)) this.hidden.delete(l); else this.hidden.add(l);
    this.redraw();
  }

  isolate(l, labels) {
    const only = this.hidden.size === labels.length - 1 && !this.hidden.has(l);
    this.hidden = new Set(only ? [] : labels.filter((m) => m !== l));
    this.redraw();
  }

  // ---- the view: equal axes, fitted to the bounds ----
  layout() {
    const w = this.plot.clientWidth, h = this.plot.clientHeight;
    if (!w || !h) return;
    [this.w, this.h] = [w, h];
    [this.pw, this.ph] = [w - MARGIN.left - MARGIN.right, h - MARGIN.top - MARGIN.bottom];
    if (!this.view || !this.zoomed) this.reset(false);
    else this.setView(this.view.cx, this.view.cy, this.view.k);
    this.redraw();
  }

  reset(draw = true) {
    const [a, b, c, d] = this.bounds, k = Math.min(this.pw / (b - a), this.ph / (d - c));
    this.zoomed = false;
    this.setView((a + b) / 2, (c + d) / 2, k);
    this.home = k;
    if (draw) this.redraw();
  }

  setView(cx, cy, k) {
    k = Math.min(Math.max(k, (this.home || k) / 4), (this.home || k) * 200);
    const hw = this.pw / k / 2, hh = this.ph / k / 2;
    this.view = { cx, cy, k, x0: cx - hw, x1: cx + hw, y0: cy - hh, y1: cy + hh };
  }

  zoomAt(px, py, f) {
    const v = this.view, zx = v.x0 + (px - MARGIN.left) / v.k, zy = v.y1 - (py - MARGIN.top) / v.k;
    const k = v.k * f;
    this.zoomed = true;
    // The latent point under (px, py) stays under it.
    this.setView(zx + (MARGIN.left + this.pw / 2 - px) / k, zy - (MARGIN.top + this.ph / 2 - py) / k, k);
    this.redraw();
  }

  panBy(dx, dy) {
    const v = this.view;
    this.zoomed = true;
    this.setView(v.cx - dx / v.k, v.cy + dy / v.k, v.k);
    this.redraw();
  }

  redraw() {
    if (!this.w) return;
    const dpr = globalThis.devicePixelRatio || 1, c = this.base;
    if (c.width !== Math.round(this.w * dpr) || c.height !== Math.round(this.h * dpr)) {
      [c.width, c.height] = [Math.round(this.w * dpr), Math.round(this.h * dpr)];
      [c.style.width, c.style.height] = [`${this.w}px`, `${this.h}px`];
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, this.w, this.h);
    this.drawAxes(g);
    g.save();
    g.beginPath();
    g.rect(MARGIN.left, MARGIN.top, this.pw, this.ph);
    g.clip();
    const { z1, z2 } = this.latent, lab = this.points.label, v = this.view, r = 2.2;
    g.globalAlpha = 0.7;
    for (let l = 0; l < this.palette.length; l++) { // one colour at a time
      if (this.hidden.has(l)) continue;
      g.fillStyle = this.palette[l];
      g.beginPath();
      for (let i = 0; i < lab.length; i++) {
        if (lab[i] !== l) continue;
        const px = MARGIN.left + (z1[i] - v.x0) * v.k, py = MARGIN.top + (v.y1 - z2[i]) * v.k;
        markPath(g, this.symbols[l], px, py, r);
      }
      g.fill();
    }
    g.restore();
    for (const b of this.legend.children) b.setAttribute("aria-pressed", String(!this.hidden.has(Number(b.dataset.label))));
    this.draws = (this.draws || 0) + 1;
    this.x.drawScatter();
  }

  drawAxes(g) {
    const v = this.view, style = getComputedStyle(this.box);
    const ink = style.getPropertyValue("--cvae-ink") || "#444", grid = style.getPropertyValue("--cvae-grid") || "#e6e6e6";
    g.font = "11px sans-serif";
    g.lineWidth = 1;
    const step = niceStep(Math.min(this.pw, this.ph) / v.k / 6);
    g.fillStyle = ink;
    g.textAlign = "center";
    g.textBaseline = "top";
    for (let t = Math.ceil(v.x0 / step) * step; t <= v.x1; t += step) {
      const [px] = this.toPx(t, 0);
      g.strokeStyle = Math.abs(t) < step / 2 ? "#bbb" : grid;
      g.beginPath(); g.moveTo(px, MARGIN.top); g.lineTo(px, MARGIN.top + this.ph); g.stroke();
      g.fillText(fmt(t, step), px, MARGIN.top + this.ph + 4);
    }
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (let t = Math.ceil(v.y0 / step) * step; t <= v.y1; t += step) {
      const [, py] = this.toPx(0, t);
      g.strokeStyle = Math.abs(t) < step / 2 ? "#bbb" : grid;
      g.beginPath(); g.moveTo(MARGIN.left, py); g.lineTo(MARGIN.left + this.pw, py); g.stroke();
      g.fillText(fmt(t, step), MARGIN.left - 5, py);
    }
    g.textAlign = "center";
    g.textBaseline = "bottom";
    g.fillText("z1", MARGIN.left + this.pw / 2, this.h - 1);
    g.save();
    g.translate(11, MARGIN.top + this.ph / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = "middle";
    g.fillText("z2", 0, 0);
    g.restore();
  }

  // The visible test digit nearest to a plot point, within HIT_PX; null when none.
  nearest(px, py) {
    const { z1, z2 } = this.latent, lab = this.points.label, v = this.view;
    let best = null, bestD = HIT_PX * HIT_PX;
    for (let i = 0; i < lab.length; i++) {
      if (this.hidden.has(lab[i])) continue;
      const dx = MARGIN.left + (z1[i] - v.x0) * v.k - px, dy = MARGIN.top + (v.y1 - z2[i]) * v.k - py;
      const d = dx * dx + dy * dy;
      if (d <= bestD) { bestD = d; best = i; }
    }
    return best;
  }

  showTip(i, px, py) {
    if (i === null) { this.tip.hidden = true; return; }
    const { z1, z2 } = this.latent;
    this.tip.hidden = false;
    this.tip.textContent = `digit ${this.points.label[i]} · test #${i} · z = (${z1[i].toFixed(2)}, ${z2[i].toFixed(2)})`;
    this.tip.style.left = `${Math.min(px + 12, this.w - 180)}px`;
    this.tip.style.top = `${Math.max(py - 28, 0)}px`;
  }

  // ---- pointer, wheel and buttons ----
  // The point's gestures are gesture.js's; pan (the pan button or Shift+drag) and two fingers
  // (pinch and pan) are the view's own.
  listen() {
    const p = this.plot;
    const local = (e) => { const r = p.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    const g = this.gesture = new Gesture(explorerCallbacks(this.x), (ev) => {
      const [px, py] = local({ clientX: ev.xy[0], clientY: ev.xy[1] }), i = this.nearest(px, py);
      return i === null ? null : { z: [this.latent.z1[i], this.latent.z2[i]], index: i };
    });
    const at = (e) => ({ id: e.pointerId, touch: e.pointerType === "touch", xy: [e.clientX, e.clientY], ...this.at(e) });
    p.addEventListener("pointerdown", (e) => {
      if (e.target.closest(".tools") || (e.button !== 0 && e.pointerType === "mouse")) return;
      p.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, local(e));
      e.preventDefault();
      if (this.pointers.size === 2) { // a second finger: pinch and pan, the point stays
        this.panning = null;
        g.abort();
        this.pinch = this.twoFingers();
        return;
      }
      if (this.pointers.size > 2 || !this.at(e).inside) return;
      if (this.panMode || e.shiftKey) { const [px, py] = local(e); this.panning = { id: e.pointerId, x: px, y: py }; return; }
      this.tip.hidden = true;
      g.down(at(e));
    });
    p.addEventListener("pointermove", (e) => {
      const [px, py] = local(e);
      if (this.pointers.has(e.pointerId)) this.pointers.set(e.pointerId, [px, py]);
      if (this.pinch && this.pointers.size === 2) return this.movePinch();
      const pan = this.panning;
      if (pan && pan.id === e.pointerId) { this.panBy(px - pan.x, py - pan.y); [pan.x, pan.y] = [px, py]; return; }
      if (g.pressed) return g.move(at(e));
      if (e.pointerType === "touch" || this.pointers.size) return;
      const ev = at(e);
      this.showTip(ev.inside ? this.nearest(px, py) : null, px, py);
      g.move(ev);
    });
    const up = (e) => {
      if (!this.pointers.delete(e.pointerId)) return;
      if (this.pinch) { if (this.pointers.size < 2) this.pinch = null; return; }
      if (this.panning && this.panning.id === e.pointerId) { this.panning = null; return; }
      if (e.type === "pointercancel") g.cancel(at(e)); else g.up(at(e));
    };
    p.addEventListener("pointerup", up);
    p.addEventListener("pointercancel", up);
    p.addEventListener("pointerleave", (e) => {
      if (e.pointerType === "touch" || g.pressed) return;
      this.tip.hidden = true;
      g.leave({ touch: false });
    });
    p.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [px, py] = local(e);
      this.zoomAt(px, py, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.002)));
    }, { passive: false });
    p.addEventListener("dblclick", (e) => { if (!e.target.closest(".tools")) this.reset(); });
    this.box.querySelector(".tools").addEventListener("click", (e) => {
      const act = e.target.closest("button") && e.target.closest("button").dataset.act;
      const mid = [MARGIN.left + this.pw / 2, MARGIN.top + this.ph / 2];
      if (act === "in") this.zoomAt(...mid, 1.5);
      if (act === "out") this.zoomAt(...mid, 1 / 1.5);
      if (act === "reset") this.reset();
      if (act === "pan") {
        this.panMode = !this.panMode;
        e.target.closest("button").setAttribute("aria-pressed", String(this.panMode));
        this.plot.classList.toggle("panning", this.panMode);
      }
    });
  }

  twoFingers() {
    const [[ax, ay], [bx, by]] = [...this.pointers.values()];
    return { mx: (ax + bx) / 2, my: (ay + by) / 2, d: Math.hypot(ax - bx, ay - by) || 1 };
  }

  movePinch() {
    const now = this.twoFingers(), was = this.pinch;
    this.panBy(now.mx - was.mx, now.my - was.my);
    this.zoomAt(now.mx, now.my, now.d / was.d);
    this.pinch = now;
  }
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw)), f = raw / p;
  return p * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}

function fmt(t, step) {
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return (Math.abs(t) < step / 1e6 ? 0 : t).toFixed(digits);
}
