// The static site as `python -m cvae site` writes it: one classic script at the end of the
// page (cvae/web/bundle.py), run while the page is still loading, in a frame of its own.
import { test, assert, until } from "./harness.js";
import { siteData } from "./fixtures.js";

globalThis.SITE_FOR_FRAME = await siteData();
const html = await (await fetch("/cvae/web/site.html")).text();
const frame = document.createElement("iframe");
frame.style.width = "1200px";
frame.style.height = "800px";
frame.srcdoc = html.replace('<script src="data.js"></script>', '<script src="/tests/dom/frame_data.js"></script>')
  .replace('<script src="explorer.js"></script>', '<script src="/bundle/site.js"></script>')
  .replaceAll('href="explorer.css"', 'href="/cvae/web/explorer.css"').replaceAll('href="site.css"', 'href="/cvae/web/site.css"');
const loaded = new Promise((resolve) => frame.addEventListener("load", resolve, { once: true }));
document.body.append(frame);
await loaded;

test("the page starts once parsed: the model named, the digit decoded, the link at the point", async () => {
  const d = frame.contentDocument;
  await until(() => d.getElementById("model").textContent === "tiny.pt · a test model", 5000, "the model's line");
  assert.equal(d.getElementById("link").textContent, "a link to z = (0.000, 0.000)");
  assert.match(d.querySelector(".readout").textContent, /^z = \(0\.000, 0\.000\) · committed · decoded in your browser/);
  assert.equal(frame.contentWindow.cvaeExplorer.stats()[0].hasModel, true);
});
