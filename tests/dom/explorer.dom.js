// The explorer (cvae/web/explorer.js) with its views (views.js) on a host of the test's own:
// what the host hands over is shown (the digit, the sliders, the pad, the live region), moves
// go to the host as commits, a second model decodes beside the first, decoding failures are
// said, and the marks (point, hover, selection, feature layers, the manifold's ring) are drawn
// on the surfaces where the point is.
import { test, assert, until, frames } from "./harness.js";
import { BOUNDS, PALETTE, encoded, golden, manifoldMap, pointsPayload, pointer, key, pixels } from "./fixtures.js";
import { Explorer, LIVE, encodedAt, pointFromUrl } from "/cvae/web/explorer.js";
import { beginOverlay } from "/cvae/web/views.js";
import { prepareDecoder, decode } from "/cvae/web/decoder.js";
import { describePoint } from "/cvae/web/describe.js";
import { preparePoints } from "/cvae/web/payload.js";

const g = await golden();
const model = prepareDecoder(g.payload);
// A second model: the first with its output bias moved, so that it decodes otherwise.
const other = JSON.parse(JSON.stringify(g.payload));
other.hash = "other";
{
  const bytes = Uint8Array.from(atob(other.b64), (c) => c.charCodeAt(0)), f = new Float32Array(bytes.buffer);
  for (let i = f.length - 4; i < f.length; i++) f[i] += 1.5;
  other.b64 = btoa(String.fromCharCode(...new Uint8Array(f.buffer)));
}
const model2 = prepareDecoder(other);

// A surface: a 300 x 240 canvas over the bounds (z2 upwards), as the scatters are to the explorer.
function surface(name, [a, b, c, d] = BOUNDS, w = 300, h = 240) {
  const canvas = document.createElement("canvas");
  canvas.className = name;
  document.body.append(canvas);
  const s = {
    canvas, found: 0, detached: 0, attachedNow: true,
    find() { this.found += 1; }, attached() { return this.attachedNow; }, ready() { return true; },
    area: () => ({ left: 0, top: 0, width: w, height: h }),
    toPx: (z1, z2) => [((z1 - a) / (b - a)) * w, ((d - z2) / (d - c)) * h],
    begins: 0,
    begin() { this.begins += 1; return beginOverlay(canvas, w, h, this.area()); },
    detach() { this.detached += 1; },
  };
  return s;
}
const sc = surface("scatter"), sc2 = surface("scatter2"), mf = surface("manifold", [0, 84, 84, 0], 84, 84);
mf.toPx = (ix, iy) => [ix, iy];
const host = document.createElement("div");
host.style.width = "420px";
document.body.append(host);
const sent = [], failures = [];
const x = new Explorer(host, { surfaces: () => ({ scatter: sc, scatter2: sc2, manifold: mf }), onFail: (m, told) => failures.push([m, told]) });
const send = (name, v) => sent.push([name, v]);
const M = manifoldMap(3, [-2, 2], [-1.5, 1.5]);
const data = (more = {}) => ({
  assets: { weights: { hash: g.payload.hash }, points: { hash: "points-1" } }, z: [1, -1], bounds: BOUNDS, step: 0.01,
  selected: null, seq: 0, decodes: false, session: "s1", n_points: 12, palette: PALETTE, digit_px: 140, pad_px: 200,
  manifold: M, hint: "a hint", ...more,
});
const values = { weights: g.payload, points: pointsPayload() };
const $ = (s) => host.querySelector(s);
const pixel = (c, [px, py]) => Array.from(c.getContext("2d").getImageData(Math.round(px), Math.round(py), 1, 1).data);
const same = (c, m, z, n = 28) => { const want = decode(m, z); return pixels(c, n).every((v, i) => Math.abs(v - Math.round(want[i] * 255)) <= 1); };

x.update(data(), values, send);

test("the host's point is shown: the digit, the readout, the sliders, the outputs, the pad, the live region, the URL", () => {
  assert.ok(same($("canvas.digit"), model, [1, -1]));
  assert.match($(".readout").textContent, /^z = \(1\.000, -1\.000\) · committed · decoded in your browser in \d+\.\d ms$/);
  const [s1, s2] = host.querySelectorAll("input[type=range]");
  assert.deepEqual([s1.min, s1.max, s1.step, s1.value], ["-4", "4", "0.01", "1"]);
  assert.deepEqual([s2.min, s2.max, s2.step, s2.value], ["-3", "3", "0.01", "-1"]);
  assert.deepEqual([...host.querySelectorAll("output")].map((o) => o.textContent), ["1.00", "-1.00"]);
  assert.equal($(".said").textContent, describePoint([1, -1], preparePoints(values.points)));
  assert.equal($(".hint").textContent, "a hint");
  assert.equal($("canvas.digit").style.width, "140px");
  const p = new URLSearchParams(location.search);
  assert.deepEqual([p.get("z1"), p.get("z2")], ["1.000", "-1.000"]);
  const pad = $("canvas.pad");
  assert.deepEqual(["aria-valuemin", "aria-valuemax", "aria-valuenow", "aria-valuetext"].map((k) => pad.getAttribute(k)),
                   ["-4", "4", "1.00", "z1 1.00, z2 -1.00"]);
  assert.equal(pad.width, 200);
  assert.equal(pad.style.width, "200px");
  assert.ok(LIVE.has(x));
  assert.ok($(".digit-box.second").hidden && $(".digit-box .caption").hidden, "one model: no second digit, no captions");
  assert.equal(sc2.begins, 0, "nor marks on a second scatter");
  assert.ok(sc.begins > 0 && mf.begins > 0);
});

test("the pad: the point drawn where it is over the encodings drawn faintly, the axes through zero", () => {
  const pad = $("canvas.pad"), s = 200;
  // The point (1, -1): a red disc at (125, 133.3) with a white edge.
  const [r, gg, b] = pixel(pad, [125, 133]);
  assert.ok(r > 240 && gg > 100 && gg < 135 && Math.abs(gg - b) < 4, `the point, committed: ${[r, gg, b]}`);
  assert.ok(pixel(pad, [125 + 7, 133.3]).slice(0, 3).every((v) => v >= 250), "its white edge");
  // Digit #4's encoding in its colour, faint, on the pad's ground.
  const z = encoded(4), q = [((z[0] + 4) / 8) * s, ((3 - z[1]) / 6) * s], [pr, pg, pb] = pixel(pad, q);
  assert.ok(pb - pr > 20 && pr < 0xe0, `digit 4, blue, faint: ${[pr, pg, pb]}`);
  assert.deepEqual(pixel(pad, [10, 30]).slice(0, 3), [0xf0, 0xf2, 0xf6], "the ground");
  const axis = pixel(pad, [100, 30]).slice(0, 3);
  assert.ok(axis[0] < 0xe0, `the z2 axis at z1 = 0: ${axis}`);
  const across = pixel(pad, [30, 100]).slice(0, 3);
  assert.ok(across[0] < 0xe0, `the z1 axis at z2 = 0: ${across}`);
});

test("the pad's pointer: a press previews where it is, a drag follows, the release commits there", () => {
  const pad = $("canvas.pad"), r = pad.getBoundingClientRect();
  const at = (fx, fy) => [r.left + pad.clientLeft + fx * pad.clientWidth, r.top + pad.clientTop + fy * pad.clientHeight];
  sent.length = 0;
  pointer(pad, "pointerdown", at(0.25, 0.5), { button: 2 });
  assert.match($(".readout").textContent, / · committed · /, "not the right button");
  pad.setPointerCapture = () => {};
  pointer(pad, "pointerdown", at(0.25, 0.5));
  assert.match($(".readout").textContent, /^z = \(-2\.000, 0\.000\) · dragging/);
  pointer(pad, "pointermove", at(0.75, 0.25));
  assert.match($(".readout").textContent, /^z = \(2\.000, 1\.500\) · dragging/);
  assert.deepEqual(sent, []);
  pointer(pad, "pointerup", at(0.5, 0));
  assert.equal(sent.length, 1);
  const [name, v] = sent[0];
  assert.equal(name, "commit");
  assert.deepEqual([v.z1, v.z2, v.select, v.decodes, v.seq, v.session], [0, 3, null, true, 1, "s1"]);
  pointer(pad, "pointermove", at(0.1, 0.1));
  assert.match($(".readout").textContent, /^z = \(0\.000, 3\.000\) · committed/, "no drag after the release");
  pointer(pad, "pointerdown", at(0.25, 0.5));
  pointer(pad, "pointercancel", at(0.75, 0.5));
  assert.deepEqual([sent[1][1].z1, sent[1][1].z2], [-2, 0], "a cancelled drag commits where it was shown");
  pointer(pad, "pointerdown", at(1.5, -0.5));
  pointer(pad, "pointerup", at(1.5, -0.5));
  assert.deepEqual([sent[2][1].z1, sent[2][1].z2], [4, 3], "clamped to the bounds");
});

test("the host's echo: its point is shown once it applied our last commit, and a new one of its own after", () => {
  x.update(data({ z: [0.5, 0.5], seq: 2 }), values, send);
  assert.match($(".readout").textContent, /^z = \(4\.000, 3\.000\)/, "our commit 3 is pending: ours stays");
  x.update(data({ z: [4, 3], seq: 3 }), values, send);
  x.update(data({ z: [0.5, 0.5], seq: 3 }), values, send);
  assert.match($(".readout").textContent, /^z = \(0\.500, 0\.500\) · committed/);
  assert.ok(same($("canvas.digit"), model, [0.5, 0.5]));
});

test("Shift+arrows on a slider step ten times its step; the key-up commits; plain keys are the browser's", () => {
  const [s1, s2] = host.querySelectorAll("input[type=range]");
  sent.length = 0;
  key(s1, "keydown", "ArrowRight", { shiftKey: true });
  assert.match($(".readout").textContent, /^z = \(0\.600, 0\.500\) · moving/);
  key(s1, "keydown", "PageUp", { shiftKey: true });
  key(s1, "keyup", "Shift");
  assert.deepEqual([sent[0][1].z1, sent[0][1].z2].map((v) => +v.toFixed(6)), [0.7, 0.5]);
  key(s2, "keydown", "ArrowDown", { shiftKey: true });
  key(s2, "keydown", "PageDown", { shiftKey: true });
  key(s2, "keydown", "ArrowLeft", { shiftKey: true });
  key(s2, "keydown", "ArrowUp", { shiftKey: true });
  key(s2, "keydown", "Home", { shiftKey: true });
  key(s2, "keyup", "ArrowDown");
  assert.deepEqual([sent[1][1].z1, sent[1][1].z2].map((v) => +v.toFixed(6)), [0.7, 0.3]);
  key(s2, "keydown", "ArrowDown");
  key(s2, "keyup", "ArrowDown");
  assert.equal(sent.length, 2, "a plain arrow: the browser's step, its input and change events");
  s2.value = "1.25";
  s2.dispatchEvent(new Event("input"));
  assert.match($(".readout").textContent, /^z = \(0\.700, 1\.250\) · dragging/);
  s2.dispatchEvent(new Event("change"));
  assert.deepEqual([sent[2][1].z1, sent[2][1].z2], [0.7, 1.25]);
  x.update(data({ z: [0.7, 1.25], seq: sent[2][1].seq }), values, send);
});

test("the marks on the scatter: the point as a black ring, a hover as a red ring", () => {
  x.update(data({ z: [0, 0], seq: 99 }), values, send);
  const c = sc.canvas, [mx, my] = sc.toPx(0, 0);
  assert.deepEqual(pixel(c, [mx + 10, my]), [17, 17, 17, 255], "the ring");
  assert.deepEqual(pixel(c, [mx, my]), [17, 17, 17, 255], "its dot");
  assert.deepEqual(pixel(c, [mx + 4, my + 4]).slice(3), [0], "nothing between");
  const dash = Array.from({ length: 40 }, (_, i) => pixel(c, [mx, 20 + i])[3]);
  assert.ok(dash.some((a) => a === 0) && dash.some((a) => a > 30), `a dashed cross-hair: ${dash}`);
  x.preview([2, 1], "hover");
  const [hx, hy] = sc.toPx(2, 1);
  const red = pixel(c, [hx + 6, hy]);
  assert.ok(red[0] === 255 && red[1] < 80 && red[3] >= 200, `the hover ring: ${red}`);
  assert.deepEqual(pixel(c, [mx + 10, my]), [17, 17, 17, 255], "the point stays");
  assert.match($(".readout").textContent, / · preview · /);
  x.preview([2, 1], "drag");
  assert.deepEqual(pixel(c, [hx + 10, hy]), [17, 17, 17, 255], "a drag moves the black ring");
  assert.equal(pixel(c, [mx + 10, my])[3], 0);
  x.endPreview();
  assert.deepEqual(pixel(c, [mx + 10, my]), [17, 17, 17, 255]);
  assert.match($(".readout").textContent, / · committed · /);
});

test("feature layers are drawn on the scatter: lines (solid, dotted, dashed, filled) and markers (dots, stars)", () => {
  const c = sc.canvas, P = (z) => sc.toPx(...z);
  x.setLayers([
    { name: "a", mode: "lines", x: [-3, -1], y: [2, 2], color: "#00ff00", width: 3 },
    { name: "b", mode: "lines", x: [-3, -1], y: [1, 1], color: "#0000ff", width: 3, dash: "dot" },
    { name: "c", mode: "lines", x: [-3, -1], y: [0.5, 0.5], color: "#0000ff", width: 3, dash: "dash" },
    { name: "d", mode: "markers", x: [3], y: [-2], color: "#ff00ff", size: 12 },
    { name: "e", mode: "markers", x: [1], y: [-2], color: "#ffb000", size: 20, symbol: "star", line: "#00ffff" },
    { name: "f", mode: "lines", x: [-3, -2, -2], y: [-1, -1, -2.5], color: "#ff0000", fill: "toself", opacity: 1 },
  ]);
  const row = (z1a, z1b, z2) => { const [xa, y] = P([z1a, z2]), [xb] = P([z1b, z2]); return Array.from({ length: Math.round(xb - xa) - 4 }, (_, i) => pixel(c, [xa + 2 + i, y])); };
  assert.ok(row(-3, -1, 2).every((p) => p[1] === 255 && p[0] === 0 && p[3] === 255), "a solid green line");
  const dots = row(-3, -1, 1), dashes = row(-3, -1, 0.5);
  assert.ok(dots.some((p) => p[3] === 0) && dots.some((p) => p[2] === 255), `dotted: ${dots.map((p) => p[3])}`);
  const runs = (ps) => ps.map((p) => (p[3] > 0 ? 1 : 0)).join("").split(/0+/).filter(Boolean).map((r) => r.length);
  assert.ok(Math.max(...runs(dashes)) > Math.max(...runs(dots)) + 1, `dashes longer than dots: ${runs(dashes)} / ${runs(dots)}`);
  const [dx, dy] = P([3, -2]);
  assert.deepEqual(pixel(c, [dx + 4, dy]), [255, 0, 255, 255], "a dot of diameter 12");
  assert.equal(pixel(c, [dx + 8, dy])[3], 0);
  const [sx, sy] = P([1, -2]);
  assert.deepEqual(pixel(c, [sx, sy + 2]), [255, 176, 0, 255], "the star filled");
  assert.deepEqual(pixel(c, [sx, sy - 10]).slice(0, 3), [0, 255, 255], "its point at the top, outlined");
  assert.equal(pixel(c, [sx + 5, sy - 8])[3], 0, "between its points");
  const [fx, fy] = P([-2.2, -1.3]), tint = pixel(c, [fx, fy]);
  assert.ok(tint[0] === 255 && tint[3] > 20 && tint[3] < 60, `filled faintly: ${tint}`);
  x.setLayers(null);
  assert.equal(pixel(c, [dx, dy])[3], 0, "gone");
});

test("two models: the second decodes the same point beside the first; the selected digit ringed on both scatters", () => {
  const v = { ...values, weights2: other, points2: pointsPayload(undefined, undefined, [-8, 8, -6, 6], "points-2") };
  x.update(data({ z: [1, 1], seq: 100, compare: { name: "B model" }, model_name: "A model", selected: 4,
                  assets: { weights: { hash: g.payload.hash }, points: { hash: "points-1" }, weights2: { hash: "other" }, points2: { hash: "points-2" } } }), v, send);
  assert.ok(!$(".digit-box.second").hidden);
  assert.equal($(".digit-box .caption").textContent, "A: A model");
  assert.equal($(".digit-box.second .caption").textContent, "B: B model");
  assert.ok(same($("canvas.digit2"), model2, [1, 1]));
  assert.ok(!same($("canvas.digit2"), model, [1, 1]), "the second model's own decode");
  const px = Math.max(112, Math.min(140, Math.floor((host.querySelector(".cvae-explorer").clientWidth - 12) / 2)));
  assert.equal($("canvas.digit2").style.width, `${px}px`, "two digits share the column");
  const ring = (s, z) => { const [a, b] = s.toPx(...z); return pixel(s.canvas, [a + 15, b]); };
  assert.deepEqual(ring(sc, encoded(4)), [0, 114, 178, 255], "the selection on the first scatter");
  // The second model's encodings of the same digits are over other ranges.
  const p2 = preparePoints(v.points2), z2 = encodedAt(p2, 4);
  assert.deepEqual(ring(sc2, z2), [0, 114, 178, 255], "and where the second model encodes it");
  x.preview([2, 2], "drag");
  assert.ok(same($("canvas.digit2"), model2, [2, 2]), "the second digit follows the drag");
  x.endPreview();
  x.update(data({ z: [1, 1], seq: 100, compare: { name: "B" }, assets: { weights: { hash: g.payload.hash }, points: { hash: "points-1" }, weights2: { hash: "broken" }, points2: { hash: "p" } } }),
           { ...values, weights2: { ...other, format: "nope" }, points2: v.points2 }, send);
  const err = $(".digit-box.second .cvae-error");
  assert.ok(!err.hidden);
  assert.match(err.textContent, /^The second model's decoder could not be prepared: /);
  assert.match($(".digit-box .caption").textContent, /^A: this model$/);
  x.update(data({ z: [1, 1], seq: 100 }), values, send);
  assert.ok($(".digit-box.second").hidden && $(".digit-box .caption").hidden, "one model again");
  assert.equal($("canvas.digit").style.width, "140px");
});

test("the manifold's ring where the point falls in its grid, none outside it", () => {
  x.update(data({ z: [0, 0], seq: 101 }), values, send);
  const c = mf.canvas, [px, py] = [M.x[0] * 0 + M.x[1], M.y[0] * 0 + M.y[1]];
  const r = pixel(c, [px + 14, py]);
  assert.ok(r[0] === 255 && r[1] < 80 && r[3] === 255, `the ring, half a cell wide: ${r}`);
  assert.equal(pixel(c, [px, py])[3], 0);
  x.preview([3.5, 0], "key");
  assert.ok(pixel(c, [0, 0])[3] === 0 && !Array.from(c.getContext("2d").getImageData(0, 0, 84, 84).data).some((v, i) => i % 4 === 3 && v > 0),
            "outside the grid's range: no ring");
  x.endPreview();
});

test("a decoder that cannot be prepared is said, and the host told; a good one after clears it", () => {
  failures.length = 0;
  x.update(data({ assets: { weights: { hash: "bad" }, points: { hash: "points-1" } } }), { ...values, weights: { ...g.payload, format: "x" } }, send);
  const err = $(".cvae-error");
  assert.ok(!err.hidden);
  assert.match(err.textContent, /^The decoder could not be prepared: /);
  assert.equal(failures.length, 1);
  assert.equal(failures[0][0], err.textContent);
  assert.equal($(".readout").textContent, "");
  x.update(data({ seq: 102 }), values, send);
  assert.ok(err.hidden);
  assert.match($(".readout").textContent, /^z = /);
});

test("a point off the screen: while it moves, a copy of the digit floats in view", async () => {
  const spacer = document.createElement("div");
  spacer.style.height = "3000px";
  document.body.prepend(spacer);
  await until(() => !x.digitInView, 3000, "the digit out of view");
  x.preview([1, 2], "drag");
  assert.ok(!$("canvas.float").hidden);
  const f = $("canvas.float"), want = pixels($("canvas.digit"));
  assert.deepEqual(pixels(f), want, "the digit's copy");
  x.commit([1, 2]);
  assert.ok($("canvas.float").hidden, "gone once committed");
  spacer.remove();
  await until(() => x.digitInView, 3000, "in view again");
  x.preview([1, 1], "drag");
  assert.ok($("canvas.float").hidden, "not while the digit is in view");
  x.endPreview();
});

test("unmounting removes the explorer and lets its surfaces go", () => {
  const before = [sc.detached, mf.detached];
  x.unmount();
  assert.ok(!host.querySelector(".cvae-explorer"));
  assert.ok(!LIVE.has(x));
  assert.deepEqual([sc.detached, mf.detached], [before[0] + 1, before[1] + 1]);
});

test("a link's point: both numbers, clamped to the bounds", () => {
  assert.deepEqual(pointFromUrl("?z1=9&z2=-9", BOUNDS), [4, -3]);
  assert.equal(pointFromUrl("?z1=1", BOUNDS), null);
  assert.deepEqual(encodedAt(null, 1), null);
});
