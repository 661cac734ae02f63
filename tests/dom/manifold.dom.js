// The static site's manifold (cvae/web/manifold.js): the grid decoded in the browser, row 0 the
// highest z2, once per model; a surface for the explorer's ring in the image's pixels.
import { test, assert, until, frames } from "./harness.js";
import { golden, pixels } from "./fixtures.js";
import { ManifoldView } from "/cvae/web/manifold.js";
import { prepareDecoder, decode } from "/cvae/web/decoder.js";

const g = await golden();
const model = prepareDecoder(g.payload), model2 = prepareDecoder({ ...g.payload });
const calls = { n: 0 };
const x = { drawManifold() { calls.n += 1; } };
const make = (spec, width = "300px") => {
  const box = document.createElement("div");
  box.style.width = width;
  document.body.append(box);
  return [new ManifoldView(box, x, spec), box];
};
const cell = (img, i, j) => { const d = img.getContext("2d").getImageData(j * 28, i * 28, 28, 28).data; return Array.from({ length: 784 }, (_, p) => d[4 * p]); };
const shows = (got, z) => { const want = decode(model, z); return got.every((v, p) => Math.abs(v - Math.round(want[p] * 255)) <= 1); };

test("a 4 x 4 grid: columns from the lowest z1, rows from the highest z2, evenly spaced over the ranges", async () => {
  const [m, box] = make({ n: 4, z1_range: [-3, 3], z2_range: [-2, 1] });
  const img = box.querySelector("canvas.image");
  assert.equal(img.width, 112);
  assert.equal(img.height, 112);
  assert.equal(img.getAttribute("role"), "img");
  assert.equal(await m.draw(model), true);
  for (const [i, j] of [[0, 0], [0, 3], [3, 0], [1, 2], [3, 3]]) {
    assert.ok(shows(cell(img, i, j), [-3 + 2 * j, 1 - i]), `cell ${i}, ${j}`);
  }
  assert.equal(m.draw(model), m.draw(model), "once per model");
  assert.equal(await m.draw(model), true);
});

test("a grid of one digit decodes the middle of the ranges", async () => {
  const [m, box] = make({ n: 1, z1_range: [-3, 1], z2_range: [0, 2] });
  assert.equal(await m.draw(model), true);
  assert.ok(shows(cell(box.querySelector("canvas.image"), 0, 0), [-1, 1]));
});

test("a new model while the grid is drawn: the first draw stops, the new one draws the whole grid", async () => {
  const [m, box] = make({ n: 30, z1_range: [-3, 3], z2_range: [-3, 3] });
  const first = m.draw(model), second = m.draw(model2);
  assert.equal(await first, false);
  assert.equal(await second, true);
  const img = box.querySelector("canvas.image");
  assert.ok(shows(cell(img, 29, 29), [3, -3]), "the last cell");
  assert.ok(shows(cell(img, 0, 0), [-3, 3]), "the first cell");
});

test("the ring's surface: image pixels scaled to the shown size, a cleared overlay over it, redrawn on resize", async () => {
  const [m, box] = make({ n: 4, z1_range: [-3, 3], z2_range: [-2, 1] }, "224px");
  assert.ok(m.ready());
  assert.deepEqual(m.area(), { left: 0, top: 0, width: 224, height: 224 });
  assert.deepEqual(m.toPx(56, 28), [112, 56], "twice the image's 112 px");
  const r = box.querySelector(".grid").getBoundingClientRect();
  assert.deepEqual(m.client(56, 28), [r.left + 112, r.top + 56]);
  const gctx = m.begin(), c = box.querySelector("canvas.marks");
  assert.equal(c.width, 224);
  assert.equal(gctx.canvas, c);
  const n0 = calls.n;
  box.style.width = "112px";
  await until(() => calls.n > n0, 2000, "the ring redrawn after a resize");
  assert.deepEqual(m.toPx(56, 28), [56, 28]);
  m.detach();
  const n1 = calls.n;
  box.style.width = "200px";
  await frames(4);
  assert.equal(calls.n, n1, "not after detach");
  const [hidden] = make({ n: 2, z1_range: [0, 1], z2_range: [0, 1] }, "0px");
  assert.ok(!hidden.ready(), "not ready while it has no width");
  assert.ok(m.find() === m && m.attached());
});
