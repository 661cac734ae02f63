// The static site without its data.js: an alert says what to do, in place of the explorer.
import { test, assert } from "./harness.js";
import { sitePage } from "./fixtures.js";

delete globalThis.CVAE_SITE;
await sitePage();
await import("/cvae/web/site.js");

test("without data.js the page says to keep the folder's files together", () => {
  const box = document.getElementById("explorer"), note = box.querySelector(".cvae-error");
  assert.equal(box.children.length, 1);
  assert.equal(box.textContent, "data.js did not load: keep the folder's files together.", "nothing else");
  assert.equal(note.getAttribute("role"), "alert");
  assert.equal(note.textContent, "data.js did not load: keep the folder's files together.");
  assert.equal(document.getElementById("model").textContent, "loading…");
});
