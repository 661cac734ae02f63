// The Plotly charts that st.plotly_chart draws, found in the page and never redrawn here:
// the only module that touches a Plotly graph div. It relies on the div's axes
// (_fullLayout.xaxis/yaxis: _offset, _length, p2l, l2p) and its event emitter (on), stable in
// plotly.js for years; the browser tests guard them.
//
// A hook is a "surface" for the explorer: at(e) (the latent point under a pointer), toPx(z1, z2)
// (figure pixels), area() (the plot area) and begin() (a cleared 2-D context over the figure,
// clipped to the plot area), the same as the static site's canvas scatter offers.
import { Gesture, explorerCallbacks } from "./gesture.js";
import { beginOverlay } from "./views.js";

export class PlotHook {
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
    if (!this.selector) return null;
    const gd = document.querySelector(this.selector);
    if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || typeof gd.on !== "function") return null;
    const box = gd.querySelector(".svg-container");
    if (!box) return null;
    const top = [...box.children].filter((c) => c.tagName.toLowerCase() === "svg").pop();
    box.insertBefore(this.canvas, top || null); // under the hover labels, over the points
    if (this.gd !== gd) { this.gd = gd; this.onAttach(gd); }
    return gd;
  }

  ready() { return !!(this.gd && this.gd._fullLayout); }

  axes() {
    const fl = this.gd._fullLayout;
    return { x: fl.xaxis, y: fl.yaxis, w: fl.width, h: fl.height };
  }

  area() {
    const { x, y } = this.axes();
    return { left: x._offset, top: y._offset, width: x._length, height: y._length };
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

  client(z1, z2) {
    const r = this.gd.getBoundingClientRect(), [px, py] = this.toPx(z1, z2);
    return [r.left + px, r.top + py];
  }

  begin() {
    const { w, h } = this.axes();
    return beginOverlay(this.canvas, w, h, this.area());
  }

  detach() { this.canvas.remove(); }
}

// The scatter as a 2-D slider (gesture.js decides what the pointer means): Plotly's events in,
// plain pointer events to the gesture. `x` is the explorer (bounds, drawScatter and what
// explorerCallbacks uses). Returns the function that removes the window listeners.
export function listenScatter(hook, gd, x) {
  gd.on("plotly_afterplot", () => x.drawScatter());
  gd.on("plotly_relayout", () => x.drawScatter());
  // Plotly's own hover names the test digit under the cursor: what a click selects.
  gd.on("plotly_hover", (ev) => {
    const p = ev && ev.points && ev.points[0];
    const idx = p ? testIndex(x, p) : null;
    hook.hovered = Number.isInteger(idx) ? { index: idx, z: [p.x, p.y] } : null;
  });
  gd.on("plotly_unhover", () => { hook.hovered = null; });
  const g = new Gesture(explorerCallbacks(x), () => hook.hovered);
  const at = (e) => ({ id: e.pointerId, touch: e.pointerType === "touch", xy: [e.clientX, e.clientY], ...hook.at(e) });
  // A finger on the scatter moves the point; the page does not scroll under it.
  gd.style.touchAction = "none";
  for (const el of gd.querySelectorAll(".nsewdrag, .draglayer")) el.style.touchAction = "none";
  const ours = () => { const dm = gd._fullLayout.dragmode; return dm === false || dm === "false"; };
  gd.addEventListener("pointermove", (e) => {
    if (hook.gd === gd && x.bounds && !g.pressed) g.move(at(e));
  });
  // While the button is down Plotly lays a cover over the page (its drag machinery), so
  // the drag's moves and the release are heard on the window.
  const move = (e) => {
    if (!g.pressed || hook.gd !== gd) return;
    g.move(at(e));
    if (e.pointerType === "touch") e.preventDefault();
  };
  window.addEventListener("pointermove", move, true);
  gd.addEventListener("pointerleave", (e) => g.leave({ touch: e.pointerType === "touch" }));
  gd.addEventListener("pointerdown", (e) => {
    if (e.button === 0 && ours() && x.bounds) g.down(at(e));
  }, true);
  const up = (e) => {
    if (!g.pressed) return;
    if (e.type === "pointercancel") g.cancel(at(e)); else g.up(at(e));
  };
  window.addEventListener("pointerup", up, true);
  window.addEventListener("pointercancel", up, true);
  return () => {
    window.removeEventListener("pointerup", up, true);
    window.removeEventListener("pointercancel", up, true);
    window.removeEventListener("pointermove", move, true);
  };
}

// The test-set index of a hovered point. The scatter sends no indices (they were a sixth of
// its bytes): trace "d" holds the digits labelled d in test-set order, and the encodings
// payload has every label in that order, so the k-th point of trace d is the k-th d.
export function testIndex(x, p) {
  if (Number.isInteger(p.customdata)) return p.customdata;
  const d = Number(p.data && p.data.name), k = p.pointNumber;
  if (!x.points || x.points.n !== x.nPoints || !Number.isInteger(d) || !Number.isInteger(k)) return null;
  if (!x.byLabel || x.byLabel.points !== x.points) {
    const lists = Array.from({ length: 256 }, () => []);
    x.points.label.forEach((l, i) => lists[l].push(i));
    x.byLabel = { points: x.points, lists };
  }
  const list = x.byLabel.lists[d];
  return list && k < list.length ? list[k] : null;
}
