// The app's Plotly scatter as the explorer's surface (cvae/web/plotly_hook.js), on a stand-in
// for Plotly's graph div: what plotly.js offers the hook (_fullLayout's axes with _offset,
// _length, p2l and l2p; on(event, fn); the .svg-container), nothing else.
import { test, assert } from "./harness.js";
import { pointsPayload, pointer } from "./fixtures.js";
import { PlotHook, listenScatter, testIndex } from "/cvae/web/plotly_hook.js";
import { preparePoints } from "/cvae/web/payload.js";

// A graph div of 500 x 400 px, its plot area 400 x 300 at (60, 40), over z1 in [-4, 4] and z2 in [-3, 3].
function graphDiv(id) {
  const gd = document.createElement("div");
  gd.id = id;
  Object.assign(gd.style, { position: "absolute", left: "30px", top: "20px", width: "500px", height: "400px" });
  gd.innerHTML = `<div class="svg-container"><svg class="main-svg"></svg><div class="draglayer"></div><svg class="main-svg top"></svg></div>`;
  const handlers = {};
  gd.on = (name, fn) => { (handlers[name] ||= []).push(fn); };
  gd.emit = (name, ev) => (handlers[name] || []).forEach((fn) => fn(ev));
  const axis = (offset, length, lo, hi, flip) => ({
    _offset: offset, _length: length,
    l2p: (v) => (flip ? (hi - v) : (v - lo)) / (hi - lo) * length,
    p2l: (p) => (flip ? hi - (p / length) * (hi - lo) : lo + (p / length) * (hi - lo)),
  });
  gd._fullLayout = { xaxis: axis(60, 400, -4, 4, false), yaxis: axis(40, 300, -3, 3, true), width: 500, height: 400, dragmode: false };
  document.body.append(gd);
  return gd;
}

const attached = [];
const gd = graphDiv("plot1");
const hook = new PlotHook("#plot1", (g) => attached.push(g));
const told = [];
const x = {
  bounds: [-4, 4, -3, 3], live: null, draws: 0, nPoints: 12, points: preparePoints(pointsPayload()),
  preview(z, source) { this.live = { z, source }; told.push(["preview", source, z.map((v) => +v.toFixed(3))]); },
  endPreview() { this.live = null; told.push(["endPreview"]); },
  commit(z, select = null) { this.live = null; told.push(["commit", z.map((v) => +v.toFixed(3)), select]); },
  drawScatter() { this.draws += 1; },
};

test("the hook finds the graph div once Plotly has drawn it, lays its canvas under the top layer, and tells the host once", () => {
  const none = new PlotHook(null, () => {});
  assert.equal(none.find(), null, "no selector: nothing");
  const early = new PlotHook("#absent", () => {});
  assert.equal(early.find(), null);
  assert.equal(hook.find(), gd);
  assert.deepEqual(attached, [gd]);
  const box = gd.querySelector(".svg-container");
  assert.deepEqual([...box.children].map((c) => c.className.baseVal ?? c.className), ["main-svg", "draglayer", "cvae-overlay", "main-svg top"]);
  assert.ok(hook.attached() && hook.ready());
  assert.equal(hook.find(), gd);
  assert.equal(attached.length, 1, "found again: not told again");
  assert.equal(hook.canvas.style.pointerEvents, "none");
  assert.equal(hook.canvas.style.position, "absolute");
});

test("a graph div Plotly has not finished is not taken", () => {
  for (const [id, spoil] of [["p2", (g) => { delete g._fullLayout; }], ["p3", (g) => { delete g._fullLayout.xaxis; }],
                             ["p4", (g) => { g.on = null; }], ["p5", (g) => { g.querySelector(".svg-container").remove(); }]]) {
    const g = graphDiv(id);
    spoil(g);
    const h = new PlotHook(`#${id}`, () => assert.ok(false, "not attached"));
    assert.equal(h.find(), null, id);
    assert.ok(!h.attached());
    g.remove();
  }
  const g6 = graphDiv("p6");
  g6.querySelectorAll("svg").forEach((s) => s.remove());
  const h6 = new PlotHook("#p6", () => {});
  assert.equal(h6.find(), g6);
  assert.equal(g6.querySelector(".svg-container").lastElementChild, h6.canvas, "no svg: at the end");
  g6.remove();
});

test("Plotly's axes map latent points to the figure's pixels and back", () => {
  const r = gd.getBoundingClientRect();
  assert.deepEqual(hook.area(), { left: 60, top: 40, width: 400, height: 300 });
  assert.deepEqual(hook.toPx(0, 0), [260, 190]);
  assert.deepEqual(hook.toPx(-4, 3), [60, 40]);
  assert.deepEqual(hook.client(4, -3), [r.left + 460, r.top + 340]);
  const a = hook.at({ clientX: r.left + 160, clientY: r.top + 115 });
  assert.deepEqual(a.z, [-2, 1.5]);
  assert.ok(a.inside);
  for (const [px, py, inside] of [[59, 100, false], [60, 40, true], [460, 340, true], [461, 100, false], [100, 39, false], [100, 341, false]]) {
    assert.equal(hook.at({ clientX: r.left + px, clientY: r.top + py }).inside, inside, `${px}, ${py}`);
  }
  const g = hook.begin();
  assert.deepEqual([hook.canvas.width, hook.canvas.height], [500, 400]);
  assert.equal(g.canvas, hook.canvas);
});

const stop = listenScatter(hook, gd, x);
const r = gd.getBoundingClientRect();
const at = (z) => hook.client(z[0], z[1]);

test("Plotly's redraws redraw the marks; fingers on the plot do not scroll the page", () => {
  const n = x.draws;
  gd.emit("plotly_afterplot");
  gd.emit("plotly_relayout");
  assert.equal(x.draws, n + 2);
  assert.equal(gd.style.touchAction, "none");
  assert.equal(gd.querySelector(".draglayer").style.touchAction, "none");
});

test("a test digit's index: its customdata, or its place among the digits of its trace's label", () => {
  assert.equal(testIndex(x, { customdata: 7 }), 7);
  assert.equal(testIndex(x, { data: { name: "3" }, pointNumber: 0 }), 3);
  assert.equal(testIndex(x, { data: { name: "3" }, pointNumber: 1 }), 10, "the second 3");
  assert.equal(testIndex(x, { data: { name: "3" }, pointNumber: 2 }), null, "there is no third");
  assert.equal(testIndex(x, { data: { name: "0" }, pointNumber: 0 }), 0);
  assert.equal(testIndex(x, { data: { name: "9" }, pointNumber: 0 }), 9);
  assert.equal(testIndex(x, { data: { name: "drawn" }, pointNumber: 0 }), null, "another trace");
  assert.equal(testIndex(x, { data: { name: "3" } }), null);
  assert.equal(testIndex({ ...x, nPoints: 11, byLabel: null }, { data: { name: "3" }, pointNumber: 0 }), null, "encodings of another run");
  assert.equal(testIndex({ ...x, points: null }, { data: { name: "3" }, pointNumber: 0 }), null);
  const y = { ...x, byLabel: null };
  testIndex(y, { data: { name: "1" }, pointNumber: 0 });
  y.points = preparePoints(pointsPayload(undefined, [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 255]));
  assert.equal(testIndex(y, { data: { name: "1" }, pointNumber: 1 }), 1, "new encodings: indexed again");
});

test("hovering previews; pressing with Plotly's drag off, dragging and releasing commits; a click on a hovered digit selects it", () => {
  told.length = 0;
  const [hx, hy] = at([1, 1]);
  pointer(gd, "pointermove", [hx, hy], { buttons: 0 });
  assert.deepEqual(told, [["preview", "hover", [1, 1]]]);
  pointer(gd, "pointerdown", [hx, hy]);
  pointer(window.document.body, "pointermove", [hx + 40, hy]);
  pointer(window.document.body, "pointerup", [hx + 40, hy]);
  assert.deepEqual(told.slice(1), [["preview", "drag", [1.8, 1]], ["commit", [1.8, 1], null]], "heard on the window under Plotly's cover");
  told.length = 0;
  gd.emit("plotly_hover", { points: [{ data: { name: "3" }, pointNumber: 1, x: -1, y: -2 }] });
  const xy = at([-1, -2]);
  pointer(gd, "pointerdown", xy);
  pointer(document.body, "pointerup", xy);
  assert.deepEqual(told, [["commit", [-1, -2], 10]]);
  gd.emit("plotly_unhover");
  told.length = 0;
  pointer(gd, "pointerdown", xy);
  pointer(document.body, "pointerup", xy);
  assert.deepEqual(told, [["commit", [-1, -2], null]], "unhovered: a move");
  told.length = 0;
  gd.emit("plotly_hover", { points: [{ data: { name: "drawn" }, pointNumber: 0, x: 0, y: 0 }] });
  pointer(gd, "pointerdown", xy);
  pointer(document.body, "pointerup", xy);
  assert.deepEqual(told, [["commit", [-1, -2], null]], "a point that is no test digit");
  gd.emit("plotly_hover", {});
  gd.emit("plotly_hover", null);
});

test("Plotly's own drag modes, other buttons and presses outside the plot area are left alone; leaving ends a hover", () => {
  told.length = 0;
  gd._fullLayout.dragmode = "zoom";
  const xy = at([0, 0]);
  pointer(gd, "pointerdown", xy);
  pointer(document.body, "pointerup", xy);
  assert.deepEqual(told, [], "zoom mode: Plotly's");
  gd._fullLayout.dragmode = "false";
  pointer(gd, "pointerdown", xy, { button: 1 });
  pointer(document.body, "pointerup", xy, { button: 1 });
  assert.deepEqual(told, [], "the middle button");
  pointer(gd, "pointerdown", [r.left + 20, r.top + 20]);
  pointer(document.body, "pointerup", [r.left + 20, r.top + 20]);
  assert.deepEqual(told, [], "outside the plot area");
  pointer(gd, "pointerdown", xy);
  pointer(document.body, "pointerup", xy);
  assert.deepEqual(told, [["commit", [0, 0], null]], "dragmode \"false\" as a string too");
  gd._fullLayout.dragmode = false;
  told.length = 0;
  pointer(gd, "pointermove", xy, { buttons: 0 });
  pointer(gd, "pointerleave", xy, { buttons: 0 });
  assert.deepEqual(told, [["preview", "hover", [0, 0]], ["endPreview"]]);
  told.length = 0;
  pointer(document.body, "pointermove", xy, { buttons: 0 });
  pointer(document.body, "pointerup", xy);
  assert.deepEqual(told, [], "the window's pointer is the hook's only during a press");
});

test("a finger: its press moves the point, its drag is not the page's scroll; the browser's cancel commits where shown", () => {
  told.length = 0;
  const xy = at([2, 2]), t = { pointerType: "touch", pointerId: 5 };
  pointer(gd, "pointerdown", xy, t);
  assert.deepEqual(told, [["preview", "drag", [2, 2]]]);
  const e = pointer(document.body, "pointermove", [xy[0] + 20, xy[1]], t);
  assert.ok(e.defaultPrevented, "no scroll");
  pointer(document.body, "pointercancel", [xy[0] + 30, xy[1]], t);
  assert.deepEqual(told.slice(1), [["preview", "drag", [2.4, 2]], ["commit", [2.4, 2], null]]);
  const m = pointer(document.body, "pointermove", xy, { pointerType: "mouse" });
  assert.ok(!m.defaultPrevented);
});

test("a graph div that Streamlit replaced: the old one's events are ignored; the listeners go when asked", () => {
  told.length = 0;
  const other = graphDiv("plot9");
  hook.gd = other;
  const xy = at([0, 0]);
  pointer(gd, "pointermove", xy, { buttons: 0 });
  assert.deepEqual(told, [], "the hook is on another graph div now");
  hook.gd = gd;
  pointer(gd, "pointerdown", xy);
  hook.gd = other;
  pointer(document.body, "pointermove", [xy[0] + 40, xy[1]]);
  assert.deepEqual(told, [], "a drag heard on the window for an old graph div");
  hook.gd = gd;
  pointer(document.body, "pointerup", xy);
  told.length = 0;
  stop();
  pointer(gd, "pointerdown", xy);
  pointer(document.body, "pointermove", [xy[0] + 40, xy[1]]);
  pointer(document.body, "pointerup", [xy[0] + 40, xy[1]]);
  assert.deepEqual(told, [], "after stop(): the window's moves and releases are not heard");
  other.remove();
  gd.remove();
  assert.ok(!hook.attached(), "a graph div gone from the page");
  hook.detach();
  assert.ok(!hook.canvas.isConnected);
});
