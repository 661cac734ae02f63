// The static site with a decoder it cannot prepare: the error is said, and the manifold's tab
// opens without decoding (no error of its own).
import { test, assert, frames } from "./harness.js";
import { siteData, sitePage } from "./fixtures.js";

const data = await siteData();
globalThis.CVAE_SITE = { ...data, weights: { ...data.weights, format: "cvae-decoder/0" } };
await sitePage();
await import("/cvae/web/site.js");

test("the decoder's error is shown; the manifold's tab opens with nothing decoded", async () => {
  const err = document.querySelector("#explorer .cvae-error");
  assert.ok(!err.hidden);
  assert.match(err.textContent, /^The decoder could not be prepared: /);
  document.getElementById("tab-manifold").click();
  await frames(3);
  assert.ok(!document.getElementById("manifold-panel").hidden);
  const img = document.querySelector("#manifold canvas.image");
  assert.ok(!img.getContext("2d").getImageData(0, 0, img.width, img.height).data.some((v) => v > 0), "nothing drawn");
});
