// The browser tests' hooks (cvae/web/hooks.js, globalThis.cvaeExplorer): what they read of the
// explorers on the page is what the explorers show.
import { test, assert } from "./harness.js";
import { BOUNDS, PALETTE, golden, manifoldMap, pointsPayload } from "./fixtures.js";
import { Explorer } from "/cvae/web/explorer.js";
import { prepareDecoder, decode } from "/cvae/web/decoder.js";

const before = globalThis.cvaeExplorer;
await import("/cvae/web/hooks.js");
const H = globalThis.cvaeExplorer;
const g = await golden(), model = prepareDecoder(g.payload);
const surface = (dx) => ({
  find() {}, attached: () => true, ready: () => true, area: () => ({ left: 0, top: 0, width: 10, height: 10 }),
  toPx: (a, b) => [a, b], begin: () => document.createElement("canvas").getContext("2d"),
  client: (a, b) => [a + dx, b - dx], at: (e) => ({ z: [e.clientX / 2, e.clientY / 3], inside: true }),
});
const M = manifoldMap(3, [-2, 2], [-1.5, 1.5]);
const data = (more = {}) => ({
  assets: { weights: { hash: g.payload.hash }, points: { hash: "p" } }, z: [1, -1], bounds: BOUNDS, step: 0.01, selected: 2,
  seq: 0, decodes: false, session: "s", n_points: 12, palette: PALETTE, digit_px: 140, pad_px: 200, manifold: M, hint: "", ...more,
});

let refused = null;
try { H.decode([[0, 0]]); } catch (e) { refused = e.message; }

test("the hooks are installed on the page, and say so when no explorer has its decoder", () => {
  assert.equal(before, undefined);
  assert.equal(typeof H.stats, "function");
  assert.equal(refused, "no explorer has its decoder yet");
});

const empty = new Explorer(document.body.appendChild(document.createElement("div")));
const x = new Explorer(document.body.appendChild(document.createElement("div")),
                       { surfaces: () => ({ scatter: surface(100), scatter2: surface(200), manifold: surface(300) }) });
x.update(data(), { weights: g.payload, points: pointsPayload() }, () => {});

test("decode: the first explorer with a decoder decodes, as the decoder does", () => {
  const got = H.decode([[0.5, 0.5], [-1, 2]]);
  assert.equal(got.length, 2);
  assert.ok(Array.isArray(got[0]) && got[0].length === 784);
  const want = Array.from(decode(model, [-1, 2]));
  assert.ok(got[1].every((v, i) => v === want[i]));
  assert.ok(H.timeDecode(5) > 0);
});

test("stats: each explorer's counts and state", () => {
  const all = H.stats();
  assert.equal(all.length, 2);
  const [e, s] = all;
  assert.equal(e.hasModel, false);
  assert.equal(s.hasModel, true);
  assert.deepEqual(s.committed, [1, -1]);
  assert.deepEqual(s.shown, [1, -1]);
  assert.equal(s.selected, 2);
  assert.equal(s.scatter, true);
  assert.equal(s.manifold, true);
  assert.equal(e.scatter, false);
  assert.equal(s.live, null);
  assert.equal(s.float, false);
  assert.equal(s.compare, null);
  assert.equal(s.scatter2, false);
  assert.equal(s.hasModel2, false);
  assert.equal(s.failed2, null);
  assert.equal(s.seq, 0);
  assert.ok(s.paints >= 1 && s.updates === 1);
  x.preview([2, 2], "drag");
  const t = H.stats()[1];
  assert.deepEqual(t.live, { z: [2, 2], source: "drag" });
  t.live.z = [0, 0];
  assert.deepEqual(x.live.z, [2, 2], "a copy");
  x.endPreview();
});

test("the surfaces' coordinates, the layers, the manifold's ring", () => {
  assert.deepEqual(H.scatterPx(1, 2), [101, -98]);
  assert.deepEqual(H.scatter2Px(1, 2), [201, -198]);
  assert.deepEqual(H.scatterLatent(4, 9), [2, 3]);
  assert.deepEqual(H.overlays(), {});
  x.setLayers([{ name: "path", x: [1, 2], y: [3, 4], mode: "lines" }, { name: "star", x: [0], y: [0], mode: "markers" }]);
  assert.deepEqual(H.overlays(), { path: { x: [1, 2], y: [3, 4] }, star: { x: [0], y: [0] } });
  const [px, py] = [M.x[0] * 1 + M.x[1], M.y[0] * -1 + M.y[1]];
  assert.deepEqual(H.manifoldRing(), [px + 300, py - 300]);
});

test("with a second model: its decode and its stats", () => {
  const other = { ...g.payload, hash: "other" };
  x.update(data({ compare: { name: "B" }, assets: { weights: { hash: g.payload.hash }, points: { hash: "p" }, weights2: { hash: "other" } } }),
           { weights: g.payload, points: pointsPayload(), weights2: other }, () => {});
  const s = H.stats()[1];
  assert.equal(s.compare, "B");
  assert.equal(s.hasModel2, true);
  assert.deepEqual(s.shown2, [1, -1]);
  assert.equal(s.scatter2, true);
  const want = Array.from(decode(prepareDecoder(other), [0.25, 0]));
  assert.ok(H.decode2([[0.25, 0]])[0].every((v, i) => v === want[i]));
  empty.unmount();
});
