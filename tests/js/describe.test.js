// The point in words: the nearest test digits' labels, counted in the browser's encodings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describePoint, say } from "../../cvae/web/describe.js";

// Encodings as payload.js prepares them: x, y in [0, 1] over the ranges (y from the top).
function points(zs, labels, range = [[-4, 4], [-4, 4]]) {
  const [[a, b], [c, d]] = range;
  return { n: zs.length, x: Float32Array.from(zs, (z) => (z[0] - a) / (b - a)),
           y: Float32Array.from(zs, (z) => (d - z[1]) / (d - c)), label: Uint8Array.from(labels), range };
}

test("counts the labels of the 50 nearest test digits", () => {
  const zs = [], labels = [];
  for (let i = 0; i < 41; i++) { zs.push([0.3 + i * 1e-3, -1.2]); labels.push(7); }
  for (let i = 0; i < 6; i++) { zs.push([0.35, -1.25 - i * 1e-3]); labels.push(9); }
  for (let i = 0; i < 3; i++) { zs.push([0.2, -1.3]); labels.push(4); }
  for (let i = 0; i < 100; i++) { zs.push([3, 3]); labels.push(1); } // far away: not among the 50
  assert.equal(describePoint([0.3, -1.2], points(zs, labels)),
               "z = (0.30, −1.20): of the 50 nearest test digits, 41 are 7s and 6 are 9s.");
});

test("says when the nearest digits are far away, and reads one digit right", () => {
  const p = points([[3, 3], [3.1, 3], [3, 3.1]], [8, 8, 1]);
  assert.equal(describePoint([-3, -3], p),
               "z = (−3.00, −3.00): of the 3 nearest test digits, 2 are 8s and 1 is a 1; the farthest of them is 8.6 away, so few digits are encoded here.");
  assert.equal(describePoint([0, 0], null), "z = (0.00, 0.00).");
  assert.equal(say(-0.001), "0.00");
});
