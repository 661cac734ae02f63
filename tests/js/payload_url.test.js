// The points payload read back (quantised positions, labels, refusals), the cache of prepared
// payloads, where a test digit is encoded (the selected digit's ring), and the point a link names (?z1=&z2=) and the one the page writes into its URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { base64Bytes, preparePoints, remember } from "../../cvae/web/payload.js";
import { encodedAt, pointFromUrl, pointToUrl } from "../../cvae/web/explorer.js";

// Two points as cvae/core/payloads.py writes them: (x, y) uint16 little-endian, then the labels.
function payload(pairs, labels, extra = {}) {
  const bytes = new Uint8Array(5 * pairs.length), view = new DataView(bytes.buffer);
  pairs.forEach(([x, y], i) => { view.setUint16(4 * i, x, true); view.setUint16(4 * i + 2, y, true); });
  labels.forEach((l, i) => { bytes[4 * pairs.length + i] = l; });
  return { format: "cvae-points/1", n: pairs.length, b64: Buffer.from(bytes).toString("base64"), ...extra };
}

test("base64Bytes gives the bytes, high ones included", () => {
  assert.deepEqual([...base64Bytes(Buffer.from([0, 1, 127, 128, 255]).toString("base64"))], [0, 1, 127, 128, 255]);
  assert.equal(base64Bytes("").length, 0);
});

test("preparePoints reads each point's place in [0, 1] and its label", () => {
  const p = preparePoints(payload([[0, 65535], [65535, 0], [32768, 256]], [7, 255, 0]));
  assert.equal(p.n, 3);
  assert.deepEqual([...p.x], [0, 1, Math.fround(32768 / 65535)]);
  assert.deepEqual([...p.y], [1, 0, Math.fround(256 / 65535)]);
  assert.deepEqual([...p.label], [7, 255, 0]);
  assert.ok(p.x instanceof Float32Array && p.y instanceof Float32Array);
});

test("preparePoints refuses another format or a payload of the wrong size", () => {
  assert.throws(() => preparePoints(payload([[1, 2]], [3], { format: "cvae-points/2" })), /unknown points format/);
  assert.throws(() => preparePoints(payload([[1, 2]], [3], { n: 2 })), /holds 5 bytes, expected 10/);
  assert.equal(preparePoints(payload([], [])).n, 0);
});

test("remember makes each payload once and keeps the last few by use of their hash", () => {
  const map = new Map();
  let made = 0;
  const make = (v) => () => { made += 1; return v; };
  assert.equal(remember(map, "a", make("A"), 2), "A");
  assert.equal(remember(map, "a", make("other"), 2), "A"); // the same hash: not made again
  assert.equal(made, 1);
  remember(map, "b", make("B"), 2);
  remember(map, "c", make("C"), 2); // the oldest, "a", goes
  assert.deepEqual([...map.keys()], ["b", "c"]);
  assert.equal(remember(map, "a", make("A2"), 2), "A2");
  assert.equal(made, 4);
  const four = new Map();
  for (const k of "abcde") remember(four, k, make(k)); // the default keeps 4
  assert.deepEqual([...four.keys()], ["b", "c", "d", "e"]);
});

const BOUNDS = [-3, 2, -1, 4];

test("pointFromUrl takes a link's point, clamped to the bounds, or none", () => {
  assert.deepEqual(pointFromUrl("?z1=0.75&z2=-0.5", BOUNDS), [0.75, -0.5]);
  assert.deepEqual(pointFromUrl("?z2=3.5&z1=-2", BOUNDS), [-2, 3.5]);
  assert.deepEqual(pointFromUrl("?z1=-9&z2=9", BOUNDS), [-3, 4]);
  assert.deepEqual(pointFromUrl("?z1=9&z2=-9", BOUNDS), [2, -1]);
  assert.deepEqual(pointFromUrl("?z1=-3&z2=4", BOUNDS), [-3, 4]);
  for (const q of ["", "?z1=1", "?z2=1", "?z1=banana&z2=1", "?z1=1&z2=NaN", "?z1=Infinity&z2=0", "?z1=&z2="]) {
    assert.equal(pointFromUrl(q, BOUNDS), null, q);
  }
});

test("pointToUrl writes the point to 3 decimals, once, keeping the other parameters", () => {
  const calls = [];
  globalThis.location = { href: "http://h/x/index.html?model=shipped&z1=0.000&z2=0.000" };
  globalThis.history = { state: { k: 1 }, replaceState: (s, t, u) => { calls.push([s, String(u)]); globalThis.location.href = String(u); } };
  try {
    pointToUrl([0.12345, -1.5]);
    assert.deepEqual(calls, [[{ k: 1 }, "http://h/x/index.html?model=shipped&z1=0.123&z2=-1.500"]]);
    pointToUrl([0.1234, -1.5004]); // the same link: no new write
    assert.equal(calls.length, 1);
    pointToUrl([0.1234, -1.4994]);
    assert.deepEqual(calls.map((c) => c[1]), ["http://h/x/index.html?model=shipped&z1=0.123&z2=-1.500",
      "http://h/x/index.html?model=shipped&z1=0.123&z2=-1.499"]);
    globalThis.history.replaceState = () => { throw new Error("a file: page refuses"); };
    pointToUrl([1, 1]); // refused: no error escapes
  } finally {
    delete globalThis.location;
    delete globalThis.history;
  }
});

test("encodedAt: a test digit's encoding from its payload's own ranges, none for no digit", () => {
  // z1 over [-2, 6], z2 over [-1, 3] (y downwards: 0 is z2's top).
  const p = preparePoints(payload([[0, 0], [65535, 65535], [16384, 49152]], [1, 2, 3],
                                  { z1_range: [-2, 6], z2_range: [-1, 3] }));
  assert.deepEqual(encodedAt(p, 0), [-2, 3]);
  assert.deepEqual(encodedAt(p, 1), [6, -1]);
  const [z1, z2] = encodedAt(p, 2);
  assert.ok(Math.abs(z1 - (-2 + 8 * 16384 / 65535)) < 1e-6 && Math.abs(z2 - (3 - 4 * 49152 / 65535)) < 1e-6, [z1, z2]);
  for (const i of [null, undefined, -1, 3, 1.5, "1"]) assert.equal(encodedAt(p, i), null, String(i));
  assert.equal(encodedAt(null, 0), null);
});
