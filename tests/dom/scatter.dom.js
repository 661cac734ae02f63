// context: {"viewport": {"width": 800, "height": 700}, "device_scale_factor": 2, "has_touch": true}
// The static site's canvas scatter (cvae/web/canvas_scatter.js) on a high-density screen with
// touch, driving a stand-in explorer that records what it is told: the digits drawn in their
// colours, the axes, the tip, the mouse's and a finger's gestures, two fingers' pinch and pan,
// the zoom's limits, a resize.
import { test, assert, frames } from "./harness.js";
import { BOUNDS, PALETTE, SYMBOLS, encoded, pointsPayload, pointer } from "./fixtures.js";
import { CanvasScatter } from "/cvae/web/canvas_scatter.js";
import { preparePoints } from "/cvae/web/payload.js";

const told = [];
const x = {
  live: null, draws: 0,
  preview(z, source) { this.live = { z, source }; told.push(["preview", source]); },
  endPreview() { this.live = null; told.push(["endPreview"]); },
  commit(z, select = null) { this.live = null; told.push(["commit", select]); this.last = z; },
  drawScatter() { this.draws += 1; },
};
const written = [], placed = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (t, ...rest) {
  if (this.canvas.classList.contains("points")) {
    written.push(String(t));
    const m = this.getTransform(), [px, py] = rest;
    // Where it is written, in CSS pixels of the plot (the canvas is at 2 device pixels to one).
    placed.push({ t: String(t), x: +((m.a * px + m.c * py + m.e) / 2).toFixed(2), y: +((m.b * px + m.d * py + m.f) / 2).toFixed(2),
                  turned: Math.sign(m.b) || 0, align: this.textAlign, base: this.textBaseline, font: this.font });
  }
  return fillText.call(this, t, ...rest);
};
const box = document.createElement("div");
box.style.width = "700px";
document.body.append(box);
const s = new CanvasScatter(box, x, { points: preparePoints(pointsPayload()), bounds: BOUNDS, palette: PALETTE, symbols: SYMBOLS });
const plot = box.querySelector(".plot"), base = box.querySelector("canvas.points"), tip = box.querySelector(".tip");
// Synthetic pointers are not the browser's own: capturing them is left out.
plot.setPointerCapture = () => {};
const r0 = () => plot.getBoundingClientRect();
const client = (z) => s.client(z[0], z[1]);
const rgba = (c, [px, py]) => { const r = r0(); return Array.from(c.getContext("2d").getImageData(Math.round(2 * (px - r.left)), Math.round(2 * (py - r.top)), 1, 1).data); };
const touch = (type, xy, id) => pointer(plot, type, xy, { pointerType: "touch", pointerId: id, isPrimary: id === 11 });
const rgbOf = (css) => { const c = document.createElement("canvas").getContext("2d"); c.fillStyle = css; c.fillRect(0, 0, 1, 1); return Array.from(c.getImageData(0, 0, 1, 1).data.slice(0, 3)); };
const near3 = (a, b) => a.every((v, i) => Math.abs(v - b[i]) <= 2);
const GRID = rgbOf(getComputedStyle(box).getPropertyValue("--cvae-grid") || "#e6e6e6");
const reset = () => box.querySelector("button[data-act=reset]").click();

test("the canvas covers the plot in device pixels; the bounds fill it with equal axes", () => {
  assert.equal(plot.clientWidth, 700);
  assert.equal(plot.clientHeight, 560);
  assert.equal(base.width, 1400);
  assert.equal(base.height, 1120);
  assert.equal(base.style.width, "700px");
  assert.equal(base.style.height, "560px");
  // 648 x 518 px of plot for 8 x 6 of latent: 81 px a unit, centred.
  const [ax, ay] = client([0, 0]), [bx, by] = client([1, 1]), r = r0();
  assert.equal(bx - ax, 81);
  assert.equal(ay - by, 81);
  assert.equal(ax - r.left, 44 + 324);
  assert.equal(ay - r.top, 8 + 259);
  assert.deepEqual(s.area(), { left: 44, top: 8, width: 648, height: 518 });
  const g = s.begin();
  assert.equal(g.canvas.width, 1400, "the marks' canvas too");
  assert.equal(g.canvas.style.height, "560px");
});

test("each digit is drawn in its colour where it is encoded; a hidden digit is not", async () => {
  for (const i of [1, 4, 7]) { // (off the grid's lines)
    const [r, g, b, a] = rgba(base, client(encoded(i)));
    assert.ok(near3([r, g, b], rgbOf(PALETTE[i])), `digit ${i}'s colour: ${[r, g, b]}`);
    assert.ok(a > 150 && a < 200, "drawn at 0.7 opacity");
  }
  const b4 = box.querySelector(".legend button[data-label='4']");
  b4.click();
  assert.equal(rgba(base, client(encoded(4)))[3], 0, "hidden");
  assert.ok(rgba(base, client(encoded(1)))[3] > 0, "the others stay");
  b4.click();
  assert.ok(rgba(base, client(encoded(4)))[3] > 0, "shown again");
  // The legend's swatches: each digit's colour.
  for (const b of box.querySelectorAll(".legend button")) {
    const sw = b.querySelector("canvas.swatch"), [r, g, bl] = sw.getContext("2d").getImageData(12, 12, 1, 1).data;
    assert.ok(near3([r, g, bl], rgbOf(PALETTE[b.dataset.label])), `${b.dataset.label}'s swatch`);
    assert.equal(sw.width, 24);
  }
});

test("the axes: a tick a unit apart, labelled, the zero lines darker than the grid; finer ticks when zoomed", () => {
  written.length = 0;
  reset();
  assert.deepEqual(written, ["-4", "-3", "-2", "-1", "0", "1", "2", "3", "4", "-3", "-2", "-1", "0", "1", "2", "3", "z1", "z2"]);
  const p = placed.slice(-18), by = (t, i = 0) => p.filter((q) => q.t === t)[i];
  // z1's ticks under the plot area (648 x 518 px at (44, 8)), centred on their lines; z2's left of it.
  assert.deepEqual(by("-4"), { t: "-4", x: 44, y: 8 + 518 + 4, turned: 0, align: "center", base: "top", font: "11px sans-serif" });
  assert.deepEqual(by("4"), { t: "4", x: 44 + 648, y: 530, turned: 0, align: "center", base: "top", font: "11px sans-serif" });
  assert.deepEqual(by("3", 1), { t: "3", x: 44 - 5, y: 8 + 259 - 3 * 81, turned: 0, align: "right", base: "middle", font: "11px sans-serif" });
  assert.deepEqual(by("-3", 1), { t: "-3", x: 39, y: 8 + 259 + 3 * 81, turned: 0, align: "right", base: "middle", font: "11px sans-serif" });
  assert.deepEqual(by("z1"), { t: "z1", x: 44 + 324, y: 560 - 1, turned: 0, align: "center", base: "bottom", font: "11px sans-serif" });
  assert.deepEqual(by("z2"), { t: "z2", x: 11, y: 8 + 259, turned: -1, align: "center", base: "middle", font: "11px sans-serif" });
  const r = r0(), [zx] = client([0, 0]), [gx] = client([1, 0]), y = r.top + 8 + 3;
  assert.deepEqual(rgba(base, [zx - 0.25, y]).slice(0, 3), [0xbb, 0xbb, 0xbb], "the zero line");
  assert.deepEqual(rgba(base, [gx - 0.25, y]).slice(0, 3), GRID, "a grid line");
  const [, zy] = client([0, 0]), [, gy] = client([0, 1]), xx = r.left + 44 + 3;
  assert.deepEqual(rgba(base, [xx, zy - 0.25]).slice(0, 3), [0xbb, 0xbb, 0xbb], "the zero line across");
  assert.deepEqual(rgba(base, [xx, gy - 0.25]).slice(0, 3), GRID);
  assert.ok(!near3(GRID, [0xbb, 0xbb, 0xbb]));
  written.length = 0;
  for (let i = 0; i < 3; i++) box.querySelector("button[data-act=in]").click();
  const last = written.slice(-20);
  // 81 * 3.375 px a unit: a tick every 0.2, written with one decimal, zero as 0.0.
  assert.ok(last.includes("0.0") && last.includes("0.2") && last.includes("-0.2"), JSON.stringify(last));
  assert.ok(!last.some((t) => t === "-0.0"));
  assert.ok(last.every((t) => /^(-?\d\.\d|z1|z2)$/.test(t)), JSON.stringify(last));
  written.length = 0;
  for (let i = 0; i < 12; i++) box.querySelector("button[data-act=in]").click();
  assert.ok(written.slice(-8).some((t) => /^-?\d\.\d{2,}$/.test(t)), JSON.stringify(written.slice(-8)));
  reset();
});

test("hovering a digit names it in a tip beside the pointer; a mouse's hover previews, leaving ends it", () => {
  told.length = 0;
  const xy = client(encoded(4)), z = encoded(4), r = r0();
  pointer(plot, "pointermove", xy, { buttons: 0 });
  assert.ok(!tip.hidden);
  assert.equal(tip.textContent, `digit 4 · test #4 · z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`);
  assert.near(parseFloat(tip.style.left), xy[0] - r.left + 12, 1e-3);
  assert.near(parseFloat(tip.style.top), xy[1] - r.top - 28, 1e-3);
  assert.deepEqual(told, [["preview", "hover"]]);
  assert.ok(Math.abs(x.live.z[0] - z[0]) < 1e-6 && Math.abs(x.live.z[1] - z[1]) < 1e-6, "the point under the pointer");
  // In the right margin: outside the plot area.
  pointer(plot, "pointermove", [r.left + 697, r.top + 100], { buttons: 0 });
  assert.ok(tip.hidden, "no digit there (and outside the plot area)");
  assert.deepEqual(told.at(-1), ["endPreview"], "outside the plot area the hover ends");
  pointer(plot, "pointermove", client([3.9, 3.1]), { buttons: 0 });
  pointer(plot, "pointerleave", client([3.9, 3.1]), { buttons: 0 });
  assert.deepEqual(told.slice(-2), [["preview", "hover"], ["endPreview"]]);
  // A digit near the right edge: its tip is moved left to fit.
  s.showTip(4, 690, 5);
  assert.equal(tip.style.left, `${700 - 180}px`);
  assert.equal(tip.style.top, "0px");
  s.showTip(null, 0, 0);
  assert.ok(tip.hidden);
});

test("a mouse's press-drag-release commits where released; a click on a digit selects it; other buttons do nothing", () => {
  told.length = 0;
  const [cx, cy] = client([1, 1]);
  pointer(plot, "pointerdown", [cx, cy], { button: 2 });
  pointer(plot, "pointerup", [cx, cy], { button: 2 });
  assert.deepEqual(told, [], "a right button");
  pointer(plot, "pointerdown", [cx, cy]);
  pointer(plot, "pointermove", [cx + 10, cy]);
  pointer(plot, "pointerup", [cx + 10, cy]);
  assert.deepEqual(told, [["preview", "drag"], ["commit", null]]);
  assert.ok(Math.abs(x.last[0] - (1 + 10 / 81)) < 1e-6 && Math.abs(x.last[1] - 1) < 1e-6, JSON.stringify(x.last));
  told.length = 0;
  const d = client(encoded(7));
  pointer(plot, "pointerdown", [d[0] + 3, d[1] - 3]);
  pointer(plot, "pointerup", [d[0] + 3, d[1] - 3]);
  assert.deepEqual(told, [["commit", 7]], "within 6 px of digit 7");
  told.length = 0;
  pointer(plot, "pointerdown", [d[0] + 5, d[1] - 5]);
  pointer(plot, "pointerup", [d[0] + 5, d[1] - 5]);
  assert.deepEqual(told, [["commit", null]], "7 px off: a move");
  told.length = 0;
  const r = r0();
  pointer(plot, "pointerdown", [r.left + 20, r.top + 100]);
  pointer(plot, "pointerup", [r.left + 20, r.top + 100]);
  assert.deepEqual(told, [], "a press in the margin");
  const tool = box.querySelector("button[data-act=pan]").getBoundingClientRect();
  pointer(box.querySelector("button[data-act=pan]"), "pointerdown", [tool.left + 2, tool.top + 2]);
  pointer(plot, "pointerup", [tool.left + 2, tool.top + 2]);
  assert.deepEqual(told, [], "a press on the tools");
});

test("a finger's press moves the point at once; the browser taking the pointer commits it where it was shown", () => {
  told.length = 0;
  const [cx, cy] = client([-1, 1]);
  touch("pointerdown", [cx, cy], 11);
  assert.deepEqual(told, [["preview", "drag"]]);
  touch("pointermove", [cx + 20, cy], 11);
  touch("pointercancel", [cx + 40, cy], 11);
  assert.deepEqual(told.map((t) => t[0]), ["preview", "preview", "commit"]);
  assert.ok(Math.abs(x.last[0] - (-1 + 20 / 81)) < 1e-6, "where it was last shown");
  told.length = 0;
  touch("pointermove", [cx, cy], 11);
  assert.deepEqual(told, [], "a finger has no hover");
  touch("pointerdown", [cx, cy], 11);
  touch("pointerup", [cx, cy], 11);
  assert.deepEqual(told.map((t) => t[0]), ["preview", "commit"]);
});

test("two fingers pinch and pan the view; the point stays", () => {
  reset();
  told.length = 0;
  const [cx, cy] = client([0, 0]);
  touch("pointerdown", [cx - 50, cy], 11);
  touch("pointerdown", [cx + 50, cy], 12);
  assert.deepEqual(told, [["preview", "drag"], ["endPreview"]], "the first finger's move is dropped");
  // Apart to twice the distance, about the same middle: twice the zoom there.
  touch("pointermove", [cx - 100, cy], 11);
  touch("pointermove", [cx + 100, cy], 12);
  const [ax] = client([0, 0]), [bx] = client([1, 0]);
  assert.ok(Math.abs(ax - cx) < 1e-6, "the middle stays");
  assert.ok(Math.abs(bx - ax - 162) < 1e-6, `twice the scale: ${bx - ax}`);
  // Both move down by 30: the view pans with them.
  touch("pointermove", [cx - 100, cy + 30], 11);
  touch("pointermove", [cx + 100, cy + 30], 12);
  assert.ok(Math.abs(client([0, 0])[1] - (cy + 30)) < 1e-6, "panned down");
  touch("pointerup", [cx - 100, cy + 30], 11);
  touch("pointermove", [cx + 120, cy + 30], 12);
  touch("pointerup", [cx + 120, cy + 30], 12);
  assert.deepEqual(told, [["preview", "drag"], ["endPreview"]], "no commit");
  assert.ok(Math.abs(client([0, 0])[1] - (cy + 30)) < 1e-6, "one finger left pans nothing");
  reset();
});

test("the legend's double-click: only that digit; again: all; on a hidden digit while another is the only one: only it", () => {
  const b = (l) => box.querySelector(`.legend button[data-label='${l}']`), dbl = (l) => b(l).dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  const shown = () => [...box.querySelectorAll(".legend button")].filter((e) => e.getAttribute("aria-pressed") === "true").map((e) => e.dataset.label).join("");
  dbl(2);
  assert.equal(shown(), "2");
  dbl(5);
  assert.equal(shown(), "5");
  b(5).click();
  assert.equal(shown(), "");
  b(5).click();
  dbl(5);
  assert.equal(shown(), "0123456789");
});

test("while a mouse is pressed its leaving ends nothing; a third finger is no gesture; a press hides the tip", () => {
  told.length = 0;
  const [cx, cy] = client([1, 0]);
  pointer(plot, "pointermove", client(encoded(4)), { buttons: 0 });
  assert.ok(!tip.hidden);
  pointer(plot, "pointerdown", [cx, cy]);
  assert.ok(tip.hidden, "a press hides the tip");
  pointer(plot, "pointermove", [cx + 10, cy]);
  pointer(plot, "pointerleave", [cx + 10, cy]);
  assert.deepEqual(told.slice(1), [["preview", "drag"]], "the drag goes on");
  pointer(plot, "pointerup", [cx + 10, cy]);
  assert.deepEqual(told.at(-1), ["commit", null]);
  reset();
  told.length = 0;
  touch("pointerdown", [cx, cy], 11);
  touch("pointerdown", [cx + 50, cy], 12);
  touch("pointerdown", [cx + 100, cy], 13);
  touch("pointerup", [cx + 100, cy], 13);
  touch("pointerup", [cx + 50, cy], 12);
  touch("pointerup", [cx, cy], 11);
  assert.deepEqual(told, [["preview", "drag"], ["endPreview"]], "three fingers: no commit");
  told.length = 0;
  const pan = box.querySelector("button[data-act=pan]");
  pan.click();
  pointer(plot, "pointerdown", [cx, cy]);
  pointer(plot, "pointermove", client(encoded(4)), { pointerId: 2, buttons: 0 });
  assert.ok(tip.hidden, "no hover while a pointer is held");
  pointer(plot, "pointerup", [cx, cy]);
  pan.click();
  assert.deepEqual(told, []);
  reset();
});

test("a double-click on the tools is not a reset", () => {
  reset();
  box.querySelector("button[data-act=in]").click();
  const unit = client([1, 0])[0] - client([0, 0])[0];
  box.querySelector("button[data-act=in]").dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  assert.equal(client([1, 0])[0] - client([0, 0])[0], unit);
  reset();
});

test("a scatter with no room yet is not ready; it lays itself out once it has some", async () => {
  const hidden = document.createElement("div");
  hidden.style.display = "none";
  hidden.style.width = "400px";
  document.body.append(hidden);
  const h = new CanvasScatter(hidden, x, { points: preparePoints(pointsPayload()), bounds: BOUNDS, palette: PALETTE });
  assert.ok(!h.ready());
  hidden.style.display = "block";
  await frames(3);
  assert.ok(h.ready());
  assert.equal(hidden.querySelector("canvas.points").width, 800);
  h.detach();
  hidden.style.width = "300px";
  await frames(3);
  assert.equal(hidden.querySelector("canvas.points").width, 800, "detached: no longer laid out");
  hidden.remove();
});

test("a double-click on the plot fits the bounds again; the wheel zooms about the pointer", () => {
  reset();
  const unit = () => client([1, 0])[0] - client([0, 0])[0];
  box.querySelector("button[data-act=in]").click();
  plot.dispatchEvent(new MouseEvent("dblclick", { bubbles: true, clientX: 300, clientY: 300 }));
  assert.equal(unit(), 81);
  const xy = client([2, 1]).map(Math.round), z = s.at({ clientX: xy[0], clientY: xy[1] }).z;
  plot.dispatchEvent(new WheelEvent("wheel", { bubbles: true, cancelable: true, clientX: xy[0], clientY: xy[1], deltaY: -100 }));
  const z2 = s.at({ clientX: xy[0], clientY: xy[1] }).z;
  assert.ok(Math.abs(z2[0] - z[0]) < 1e-9 && Math.abs(z2[1] - z[1]) < 1e-9, "the point under the wheel stays");
  assert.ok(Math.abs(unit() - 81 * Math.exp(0.2)) < 1e-9, String(unit()));
  const e = new WheelEvent("wheel", { bubbles: true, cancelable: true, clientX: xy[0], clientY: xy[1], deltaY: 2, deltaMode: 1 });
  plot.dispatchEvent(e);
  assert.ok(e.defaultPrevented, "the page does not scroll");
  assert.ok(Math.abs(unit() - 81 * Math.exp(0.1)) < 1e-9, `a line of wheel is 25 pixels' worth: ${unit()}`);
  reset();
});

test("in pan mode, or with Shift, a drag moves the view and not the point; a hidden digit is not clicked", () => {
  reset();
  told.length = 0;
  const pan = box.querySelector("button[data-act=pan]");
  pan.click();
  assert.equal(pan.getAttribute("aria-pressed"), "true");
  assert.ok(plot.classList.contains("panning"));
  const [x0, y0] = client([0, 0]);
  pointer(plot, "pointerdown", [x0, y0]);
  pointer(plot, "pointermove", [x0 + 30, y0 + 20]);
  pointer(plot, "pointerup", [x0 + 30, y0 + 20]);
  assert.deepEqual(client([0, 0]).map((v, i) => +(v - [x0, y0][i]).toFixed(6)), [30, 20]);
  pan.click();
  assert.equal(pan.getAttribute("aria-pressed"), "false");
  assert.ok(!plot.classList.contains("panning"));
  pointer(plot, "pointerdown", [x0 + 30, y0 + 20], { shiftKey: true });
  pointer(plot, "pointermove", [x0, y0], { shiftKey: true });
  pointer(plot, "pointerup", [x0, y0], { shiftKey: true });
  assert.deepEqual(client([0, 0]).map((v, i) => +(v - [x0, y0][i]).toFixed(6)), [0, 0]);
  assert.deepEqual(told, [], "the point stays");
  const b7 = box.querySelector(".legend button[data-label='7']");
  b7.click();
  const d = client(encoded(7));
  pointer(plot, "pointerdown", d);
  pointer(plot, "pointerup", d);
  assert.deepEqual(told, [["commit", null]], "a move, not a selection");
  b7.click();
  reset();
});

test("the zoom stops at a quarter of the fitted scale and at 200 times it", () => {
  reset();
  const unit = () => client([1, 0])[0] - client([0, 0])[0];
  for (let i = 0; i < 6; i++) box.querySelector("button[data-act=out]").click();
  assert.ok(Math.abs(unit() - 81 / 4) < 1e-9, String(unit()));
  for (let i = 0; i < 30; i++) box.querySelector("button[data-act=in]").click();
  assert.ok(Math.abs(unit() - 81 * 200) < 1e-6, String(unit()));
  reset();
  assert.equal(unit(), 81);
});

test("a resized plot fits the bounds again, or keeps a zoomed view's centre and scale", async () => {
  reset();
  box.style.width = "500px";
  await frames(3);
  assert.equal(base.width, 1000, "redrawn at the new size");
  // 448 x 518 px: 56 px a unit.
  assert.equal(client([1, 0])[0] - client([0, 0])[0], 56);
  box.querySelector("button[data-act=in]").click();
  const before = client([0, 0])[0] - r0().left;
  box.style.width = "600px";
  await frames(3);
  assert.equal(client([1, 0])[0] - client([0, 0])[0], 84, "the zoomed scale kept");
  assert.equal(client([0, 0])[0] - r0().left, before + 50, "its centre kept in the middle");
  box.style.width = "700px";
  await frames(3);
  reset();
});
