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

test("finds the nearest wherever they are in the payload, and says the two most frequent digits", () => {
  const zs = [], labels = [];
  for (let i = 0; i < 100; i++) { zs.push([3, 3]); labels.push(1); } // listed first, far away
  for (let i = 0; i < 10; i++) { zs.push([0.01 * i, 0]); labels.push(2); } // the nearest, but 10 of them
  for (let i = 0; i < 30; i++) { zs.push([0.5, 0.001 * i]); labels.push(6); }
  for (let i = 0; i < 10; i++) { zs.push([-0.7, 0]); labels.push(0); }
  for (let i = 0; i < 20; i++) { zs.push([0, 0.9]); labels.push(5); } // the 51st to 70th
  // Shuffled the same way each time: the order of the payload says nothing.
  const idx = zs.map((_, i) => i).sort((i, j) => ((i * 7919) % 173) - ((j * 7919) % 173));
  const p = points(idx.map((i) => zs[i]), idx.map((i) => labels[i]));
  // 2s and 0s tie at 10: the smaller digit is said (not said here: only two digits are).
  assert.equal(describePoint([0, 0], p), "z = (0.00, 0.00): of the 50 nearest test digits, 30 are 6s and 10 are 0s.");
});

test("equal counts are said in the digits' order; one digit is 'a' or 'an' as spoken", () => {
  assert.equal(describePoint([0, 0], points([[0.1, 0], [0.2, 0]], [8, 1])),
               "z = (0.00, 0.00): of the 2 nearest test digits, 1 is a 1 and 1 is an 8.");
  assert.equal(describePoint([0, 0], points([[0.1, 0], [0.2, 0], [0.3, 0]], [9, 8, 9])),
               "z = (0.00, 0.00): of the 3 nearest test digits, 2 are 9s and 1 is an 8.");
});

test("equally near digits past the 50th are left out by their order in the payload", () => {
  const labels = [...Array(50).fill(3), ...Array(10).fill(5)];
  const p = points(labels.map(() => [1, 1]), labels);
  assert.equal(describePoint([1, 1], p), "z = (1.00, 1.00): of the 50 nearest test digits, 50 are 3s.");
});

test("encodings without a digit label (255: none; 10 and up) are not counted", () => {
  const p = points([[0, 0], [0, 0], [0.05, 0], [0.1, 0], [0.2, 0]], [255, 10, 11, 4, 4]);
  assert.equal(describePoint([0, 0], p), "z = (0.00, 0.00): of the 2 nearest test digits, 2 are 4s.");
  // When none of the nearest has a digit label, only the point is said.
  assert.equal(describePoint([0, 0], points([[0, 0], [0.1, 0]], [255, 255])), "z = (0.00, 0.00).");
});

test("the nearest digits are far when the farthest of them is more than 1 away", () => {
  assert.equal(describePoint([0, 0], points([[1, 0], [0, 0.5]], [2, 2])),
               "z = (0.00, 0.00): of the 2 nearest test digits, 2 are 2s.");
  assert.equal(describePoint([0, 0], points([[1.5, 0], [0, 0.5]], [2, 2])),
               "z = (0.00, 0.00): of the 2 nearest test digits, 2 are 2s; the farthest of them is 1.5 away, so few digits are encoded here.");
});

test("reads the encodings over the payload's own ranges, z2 from the top", () => {
  const range = [[-1, 7], [2, 3]];
  const p = points([[6, 2.9], [6, 2.1], [0, 2.9]], [7, 1, 4], range);
  assert.equal(describePoint([6, 2.9], p, 1), "z = (6.00, 2.90): of the 1 nearest test digits, 1 is a 7.");
  assert.equal(describePoint([6, 2.1], p, 1), "z = (6.00, 2.10): of the 1 nearest test digits, 1 is a 1.");
  assert.equal(describePoint([0, 2.9], p, 1), "z = (0.00, 2.90): of the 1 nearest test digits, 1 is a 4.");
});
