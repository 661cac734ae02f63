// The static site written with MNIST beside it: a clicked digit's original (from the digits'
// sheet) beside its reconstruction, its loss and where it stands among the test digits.
import { test, assert, until } from "./harness.js";
import { encoded, lossPayload, siteData, sitePage, pointer, pixels } from "./fixtures.js";

// A sheet of 4 columns: test digit i's cell is grey level 20 (i + 1).
const sheet = document.createElement("canvas");
[sheet.width, sheet.height] = [4 * 28, 3 * 28];
const sg = sheet.getContext("2d");
for (let i = 0; i < 12; i++) {
  sg.fillStyle = `rgb(${20 * (i + 1)}, ${20 * (i + 1)}, ${20 * (i + 1)})`;
  sg.fillRect((i % 4) * 28, Math.floor(i / 4) * 28, 28, 28);
}
const recon = Array.from({ length: 12 }, (_, i) => 100 + 10 * i), kl = Array.from({ length: 12 }, (_, i) => 5 + 0.5 * i);
// (A blob, not a data: URL, which Chromium loads at once: the sheet arrives after the page starts.)
const sheetUrl = URL.createObjectURL(await new Promise((resolve) => sheet.toBlob(resolve, "image/png")));
globalThis.CVAE_SITE = await siteData({ digits: { file: sheetUrl, columns: 4, levels: 256 },
                                        loss: lossPayload(recon, kl) });
// What is written on the loss histogram.
const written = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (t, ...rest) {
  if (this.canvas.id === "loss-hist") written.push([String(t), this.textAlign, rest[0], rest[1]]);
  return fillText.call(this, t, ...rest);
};
await sitePage();
await import("/cvae/web/hooks.js");
const { lossArrays } = await import("/cvae/web/site.js");
const X = globalThis.cvaeExplorer, $ = (id) => document.getElementById(id);
const plot = document.querySelector("#scatter .plot");
const click = (i) => {
  const xy = X.scatterPx(...encoded(i));
  pointer(plot, "pointerdown", xy);
  pointer(plot, "pointerup", xy);
};
// A click at once, before the digits' sheet has loaded: its original is drawn when it has.
click(6);
await until(() => X.stats()[0].scatter && X.stats()[0].paints > 0, 5000, "the scatter");
const select = async (i, label = i) => {
  click(i);
  await until(() => $("selection-title").textContent === `Selected: test digit #${i}, a ${label}`, 2000, `digit #${i} selected`);
};
const rgb = (c, x, y) => Array.from(c.getContext("2d").getImageData(x, y, 1, 1).data);

test("a selected digit's original is its cell of the digits' sheet", async () => {
  const o = $("original");
  await until(() => pixels(o).every((v) => v === 140), 3000, "digit #6's cell, drawn once the sheet had loaded");
  await select(6);
  await until(() => pixels(o).every((v) => v === 140), 3000, "digit #6's cell: column 2, row 1");
  assert.equal($("original-caption").textContent, "original #6 (label 6)");
  await select(3);
  await until(() => pixels(o).every((v) => v === 80), 3000, "digit #3's cell: column 3, row 0");
});

test("its loss, and the share of test digits it is harder than", async () => {
  await select(3);
  assert.ok(!$("loss").hidden);
  assert.equal($("loss-text").textContent, "784·BCE 130.0 + KL 6.5 = −ELBO 136.5 nats: harder than 25% of test digits.");
  await select(0);
  assert.equal($("loss-text").textContent, "784·BCE 100.0 + KL 5.0 = −ELBO 105.0 nats: harder than 0% of test digits.");
  await select(9);
  assert.equal($("loss-text").textContent, "784·BCE 190.0 + KL 9.5 = −ELBO 199.5 nats: harder than 75% of test digits.");
});

test("the histogram: 40 bars over the test digits' range, the digit a dark line, the range written under it", async () => {
  written.length = 0;
  await select(3);
  const c = $("loss-hist"), blue = [0, 114, 178, 255], none = [0, 0, 0, 0];
  // −ELBO 105 + 10.5 i: 105..220.5; bin 0 holds 105, bin 39 holds 220.5, bin 1 none; each bar full height.
  assert.deepEqual(rgb(c, 4, 40), blue, "bin 0");
  assert.deepEqual(rgb(c, 4, 3), blue, "a bar of the highest count is 76 px tall");
  assert.deepEqual(rgb(c, 4, 1), none, "and no taller");
  assert.deepEqual(rgb(c, 12, 40), none, "bin 1 is empty");
  assert.deepEqual(rgb(c, 316, 40), blue, "bin 39");
  assert.deepEqual(rgb(c, 4, 80), none, "the bars stand on the axis, 12 px above the bottom");
  assert.equal(rgb(c, 6, 40)[3], 255, "a bar 7 px wide from half a pixel in");
  assert.ok(rgb(c, 7, 40)[3] < 200 && rgb(c, 0, 40)[3] < 200, "its edges half covered: a gap to the next");
  // The digit: 136.5 at (136.5 - 105) / 115.5 of 320 px = 87.3, from the top (over the bars) to the axis.
  assert.deepEqual(rgb(c, 87, 0), [17, 17, 17, 255], "the digit's line");
  assert.deepEqual(rgb(c, 87, 77), [17, 17, 17, 255], "the digit's line");
  assert.deepEqual(rgb(c, 87, 79), none);
  assert.deepEqual(rgb(c, 84, 1), none);
  assert.deepEqual(rgb(c, 90, 1), none);
  assert.deepEqual(written, [["105", "left", 0, 89], ["221 nats", "right", 320, 89]], "the range under the bars, each end inside the canvas, every time");
  await select(0);
  assert.deepEqual(rgb(c, 1, 1), [17, 17, 17, 255], "the lowest at the left edge");
  assert.deepEqual(rgb(c, 3, 1), none);
  await select(11, 255);
  assert.deepEqual(rgb(c, 318, 1), [17, 17, 17, 255], "the highest at the right edge");
});

test("the losses' payload: uint16 recon, uint8 or uint16 KL, in their steps", () => {
  const L = lossArrays(lossPayload([1, 2.5, 3000], [0.5, 300, 1.2], 2));
  assert.equal(L.n, 3);
  assert.deepEqual(Array.from(L.recon), [1, 2.5, 3000]);
  assert.deepEqual(Array.from(L.kl).map((v) => +v.toFixed(6)), [0.5, 300, 1.2]);
  assert.deepEqual(Array.from(L.elbo).map((v) => +v.toFixed(6)), [1.5, 302.5, 3001.2]);
  assert.deepEqual(Array.from(L.sorted).map((v) => +v.toFixed(6)), [1.5, 302.5, 3001.2]);
  const M = lossArrays(lossPayload([7, 3], [25.5, 0.1]));
  assert.deepEqual(Array.from(M.kl).map((v) => +v.toFixed(6)), [25.5, 0.1]);
  assert.deepEqual(Array.from(M.sorted).map((v) => +v.toFixed(6)), [3.1, 32.5], "sorted by value");
});

test("clearing the selection hides the digit and its loss", async () => {
  await select(2);
  $("clear").click();
  await until(() => $("selection").hidden, 2000, "the selection hidden");
});
