// The loss histogram over 2,000 test digits: its range is the 0.1th to the 99.9th percentile,
// its bars as tall as their counts, the tallest 76 px.
import { test, assert, until } from "./harness.js";
import { encoded, lossPayload, siteData, sitePage, pointer } from "./fixtures.js";

// −ELBO 105 + i nats for test digit i (784·BCE 100 + i, KL 5).
const n = 2000;
globalThis.CVAE_SITE = await siteData({ loss: lossPayload(Array.from({ length: n }, (_, i) => 100 + i), new Array(n).fill(5)) });
const written = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (t, ...rest) {
  if (this.canvas.id === "loss-hist") written.push(String(t));
  return fillText.call(this, t, ...rest);
};
await sitePage();
await import("/cvae/web/hooks.js");
await import("/cvae/web/site.js");
const X = globalThis.cvaeExplorer, $ = (id) => document.getElementById(id);
await until(() => X.stats()[0].scatter, 5000, "the scatter");

test("the range: the 2nd lowest to the 1,999th of 2,000; the bars' heights from their counts", async () => {
  const xy = X.scatterPx(...encoded(3)), plot = document.querySelector("#scatter .plot");
  pointer(plot, "pointerdown", xy);
  pointer(plot, "pointerup", xy);
  await until(() => written.length === 2, 2000, "the histogram");
  assert.equal($("loss-text").textContent, "784·BCE 103.0 + KL 5.0 = −ELBO 108.0 nats: harder than 0% of test digits.");
  assert.deepEqual(written, ["106", "2103 nats"]);
  const c = $("loss-hist"), g = c.getContext("2d");
  // 40 bins of 49.9 nats: 48 to 52 digits each; the tallest from y = 2, none above.
  const top = (b) => { for (let y = 0; y < 90; y++) if (g.getImageData(8 * b + 4, y, 1, 1).data[3] > 0) return y; return 90; };
  const tops = Array.from({ length: 40 }, (_, b) => top(b));
  assert.equal(Math.min(...tops), 2, `the tallest: ${tops}`);
  assert.ok(Math.max(...tops) <= 2 + 76 - 69, `every bar near the top: ${tops}`);
});
