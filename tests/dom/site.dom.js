// The static site (cvae/web/site.js) as a visitor uses it: it opens at a link's point, the
// pad's keys and the sliders move the point, the scatter previews, drags, selects and zooms,
// the legend hides digits, the link follows the point, the manifold tab decodes its grid.
import { test, assert, until, frames } from "./harness.js";
import { BOUNDS, LABELS, encoded, siteData, sitePage, pointer, key, pixels } from "./fixtures.js";
import { prepareDecoder, decode } from "/cvae/web/decoder.js";

history.replaceState(null, "", `${location.pathname}${location.search}&z1=1.5&z2=-9`);
globalThis.CVAE_SITE = await siteData();
await sitePage();
await import("/cvae/web/site.js");
await import("/cvae/web/hooks.js");
const X = globalThis.cvaeExplorer, $ = (id) => document.getElementById(id);
const model = prepareDecoder(CVAE_SITE.weights);
const stats = () => X.stats()[0];
await until(() => stats().scatter && stats().paints > 0, 5000, "the scatter and the digit");
const plot = document.querySelector("#scatter .plot"), pad = document.querySelector("canvas.pad");
const readout = () => document.querySelector(".readout").textContent;
const linkText = () => $("link").textContent;
const expectDigit = (z, canvas = document.querySelector("canvas.digit")) => {
  const want = Array.from(decode(model, z), (v) => Math.round(v * 255)), got = pixels(canvas);
  assert.ok(want.some((v) => v > 0), "the decode is not blank");
  assert.ok(got.every((v, i) => Math.abs(v - want[i]) <= 1), `the canvas shows the decode at ${z}`);
};
const click = (xy, more) => { pointer(plot, "pointerdown", xy, more); pointer(plot, "pointerup", xy, more); };
const at = (z) => X.scatterPx(z[0], z[1]);
const near = (a, b, tol = 1e-3) => Math.abs(a - b) <= tol;

test("the page names the model and opens at the link's point, clamped to the bounds", () => {
  assert.equal($("model").textContent, "tiny.pt · a test model");
  assert.equal(document.title, "CVAE latent explorer · tiny.pt");
  assert.equal(linkText(), "a link to z = (1.500, -3.000)");
  const href = new URL($("link").href);
  assert.equal(href.searchParams.get("z1"), "1.500");
  assert.equal(href.searchParams.get("z2"), "-3.000");
  assert.match(readout(), /^z = \(1\.500, -3\.000\) · committed · decoded in your browser/);
  expectDigit([1.5, -3]);
  assert.deepEqual(document.querySelectorAll("input[type=range]")[1].value, "-3");
  assert.equal(document.querySelector(".hint").textContent, "drag the pad");
  assert.equal(document.querySelector("canvas.digit").style.width, "140px", "the site's digit size");
  assert.equal(pad.style.width, "200px", "the site's pad size");
  assert.equal(stats().seq, 0);
});

test("the pad's arrow keys move the point by a fiftieth of the range, Shift by a tenth; key-up commits it", async () => {
  pad.focus();
  key(pad, "keydown", "ArrowRight");
  assert.match(readout(), /^z = \(1\.660, -3\.000\) · moving/);
  assert.equal(linkText(), "a link to z = (1.500, -3.000)", "not committed before the key is up");
  key(pad, "keyup", "ArrowRight");
  await until(() => linkText() === "a link to z = (1.660, -3.000)", 2000, "the link at the new point");
  assert.equal(new URLSearchParams(location.search).get("z1"), "1.660", "the page's URL keeps the point");
  key(pad, "keydown", "ArrowUp", { shiftKey: true });
  key(pad, "keyup", "ArrowUp");
  await until(() => linkText() === "a link to z = (1.660, -2.400)", 2000, "shift+up");
  key(pad, "keydown", "ArrowLeft");
  key(pad, "keydown", "ArrowDown");
  key(pad, "keyup", "ArrowDown");
  await until(() => linkText() === "a link to z = (1.500, -2.520)", 2000, "left and down");
  expectDigit([1.5, -2.52]);
  assert.equal(pad.getAttribute("aria-valuetext"), "z1 1.50, z2 -2.52");
  key(pad, "keydown", "a");
  key(pad, "keyup", "a");
  await frames();
  assert.equal(linkText(), "a link to z = (1.500, -2.520)", "other keys do nothing");
});

test("a slider previews while dragged and commits on release", async () => {
  const s = document.querySelectorAll("input[type=range]")[0];
  s.value = "-2.5";
  s.dispatchEvent(new Event("input", { bubbles: true }));
  assert.match(readout(), /^z = \(-2\.500, -2\.520\) · dragging/);
  s.dispatchEvent(new Event("change", { bubbles: true }));
  await until(() => linkText() === "a link to z = (-2.500, -2.520)", 2000, "the slider's commit");
  assert.equal(document.querySelectorAll(".zrow output")[0].textContent, "-2.50");
});

test("hovering the scatter previews the point under the pointer and names the digit there; leaving ends it", async () => {
  pointer(plot, "pointermove", at([1, 1]), { buttons: 0 });
  assert.match(readout(), /^z = \(1\.00\d, 1\.00\d\) · preview|^z = \(0\.99\d, 0\.99\d\) · preview/);
  const tip = document.querySelector("#scatter .tip");
  assert.ok(tip.hidden, "no digit near (1, 1)");
  const z5 = encoded(5);
  pointer(plot, "pointermove", at(z5), { buttons: 0 });
  assert.ok(!tip.hidden, "the tip names the digit under the pointer");
  assert.equal(tip.textContent, `digit 5 · test #5 · z = (${z5[0].toFixed(2)}, ${z5[1].toFixed(2)})`);
  pointer(plot, "pointerleave", at(z5), { buttons: 0 });
  assert.ok(tip.hidden);
  assert.match(readout(), /^z = \(-2\.500, -2\.520\) · committed/);
});

test("press, drag and release moves the point to where it was released", async () => {
  const [x0, y0] = at([0, 0]);
  pointer(plot, "pointerdown", [x0, y0]);
  pointer(plot, "pointermove", [x0 + 20, y0 - 10]);
  assert.match(readout(), / · dragging · /);
  pointer(plot, "pointerup", [x0 + 20, y0 - 10]);
  const z = X.scatterLatent(x0 + 20, y0 - 10);
  await until(() => linkText() === `a link to z = (${z[0].toFixed(3)}, ${z[1].toFixed(3)})`, 2000, "the drag's commit");
  assert.ok(z[0] > 0 && z[1] > 0);
});

test("a click on a test digit selects it: its reconstruction, its caption, the point moves there", async () => {
  const z3 = encoded(3);
  click(at(z3));
  await until(() => !$("selection").hidden, 2000, "the selection");
  assert.equal($("selection-title").textContent, "Selected: test digit #3, a 3");
  assert.equal(linkText(), `a link to z = (${z3[0].toFixed(3)}, ${z3[1].toFixed(3)})`);
  assert.equal($("reconstruction-caption").textContent, `reconstruction at z_mean = (${z3[0].toFixed(2)}, ${z3[1].toFixed(2)})`);
  expectDigit(z3, $("reconstruction"));
  assert.equal($("original-caption").textContent, "the originals were not included (the site was written without MNIST)");
  assert.ok(pixels($("original")).every((v) => v === 0), "a black square for the original");
  assert.ok($("loss").hidden, "no loss without the losses");
  assert.equal(stats().selected, 3);
  key(pad, "keydown", "ArrowDown");
  key(pad, "keyup", "ArrowDown");
  await until(() => linkText() !== `a link to z = (${z3[0].toFixed(3)}, ${z3[1].toFixed(3)})`, 2000, "a move");
  assert.equal(stats().selected, 3, "the selection stays while the point moves");
  assert.equal($("selection-title").textContent, "Selected: test digit #3, a 3");
  $("clear").click();
  await until(() => $("selection").hidden, 2000, "the selection cleared");
  assert.equal(stats().selected, null);
});

test("a click off every digit moves the point there and selects nothing", async () => {
  const xy = at([3.5, 2.5]), z = X.scatterLatent(...xy);
  click(xy);
  await until(() => linkText() === `a link to z = (${z[0].toFixed(3)}, ${z[1].toFixed(3)})`, 2000, "the click's commit");
  assert.ok($("selection").hidden);
});

test("the legend has a button per digit; a click hides a digit (it can no longer be clicked), a double-click shows only one", async () => {
  const buttons = [...document.querySelectorAll("#scatter .legend button")];
  assert.deepEqual(buttons.map((b) => b.textContent), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  const b3 = buttons[3];
  b3.click();
  assert.equal(b3.getAttribute("aria-pressed"), "false");
  const z3 = encoded(3), xy = at(z3);
  click(xy);
  const z = X.scatterLatent(...xy);
  await until(() => linkText() === `a link to z = (${z[0].toFixed(3)}, ${z[1].toFixed(3)})`, 2000, "a commit, not a selection");
  assert.ok($("selection").hidden, "a hidden digit is not selected");
  b3.click();
  assert.equal(b3.getAttribute("aria-pressed"), "true");
  buttons[5].dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  assert.deepEqual(buttons.map((b) => b.getAttribute("aria-pressed") === "true"), buttons.map((_, i) => i === 5));
  buttons[5].dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  assert.ok(buttons.every((b) => b.getAttribute("aria-pressed") === "true"), "again: all of them");
  buttons[2].dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  buttons[5].dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  assert.deepEqual(buttons.map((b) => b.getAttribute("aria-pressed") === "true"), buttons.map((_, i) => i === 5), "from one to another");
  buttons[5].dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
});

test("the zoom buttons zoom about the plot's centre by 1.5; reset and a double-click fit the bounds again", async () => {
  const tools = (act) => document.querySelector(`#scatter .tools button[data-act=${act}]`);
  const mid = () => X.scatterLatent(...centre());
  const centre = () => { const r = plot.getBoundingClientRect(); return [r.left + 44 + (plot.clientWidth - 52) / 2, r.top + 8 + (plot.clientHeight - 42) / 2]; };
  const c0 = mid(), [ax, ay] = at([2, 1]), [cx, cy] = centre();
  tools("in").click();
  const c1 = mid(), [bx, by] = at([2, 1]);
  assert.ok(near(c0[0], c1[0]) && near(c0[1], c1[1]), "the centre stays");
  assert.near((bx - cx) / (ax - cx), 1.5, 1e-6, "x");
  assert.near((by - cy) / (ay - cy), 1.5, 1e-6, "y");
  tools("out").click();
  assert.near(at([2, 1])[0], ax, 1e-6);
  tools("in").click();
  tools("reset").click();
  assert.near(at([2, 1])[0], ax, 1e-6, "reset");
  tools("in").click();
  plot.dispatchEvent(new MouseEvent("dblclick", { bubbles: true, clientX: cx, clientY: cy }));
  assert.near(at([2, 1])[0], ax, 1e-6, "double-click");
});

test("the bounds fill the plot with equal axes", () => {
  const r = plot.getBoundingClientRect(), pw = plot.clientWidth - 52, ph = plot.clientHeight - 42;
  const k = Math.min(pw / (BOUNDS[1] - BOUNDS[0]), ph / (BOUNDS[3] - BOUNDS[2]));
  const [x0, y0] = at([0, 0]), [x1, y1] = at([1, 1]);
  assert.near(x1 - x0, k, 1e-6);
  assert.near(y0 - y1, k, 1e-6);
  assert.near(x0, r.left + 44 + pw / 2, 1e-6);
  assert.near(y0, r.top + 8 + ph / 2, 1e-6);
});

test("the wheel zooms about the pointer: the point under it stays", () => {
  // A wheel event's coordinates are whole pixels.
  const xy = at([2, 1]).map(Math.round), z = X.scatterLatent(...xy), [ox, oy] = at([0, 0]);
  plot.dispatchEvent(new WheelEvent("wheel", { bubbles: true, cancelable: true, clientX: xy[0], clientY: xy[1], deltaY: -100 }));
  const z2 = X.scatterLatent(...xy);
  assert.near(z2[0], z[0], 1e-6);
  assert.near(z2[1], z[1], 1e-6);
  const [px] = at([0, 0]);
  assert.near((xy[0] - px) / (xy[0] - ox), Math.exp(0.2), 1e-6, "zoomed by exp(0.002 per pixel of wheel)");
  plot.dispatchEvent(new WheelEvent("wheel", { bubbles: true, cancelable: true, clientX: xy[0], clientY: xy[1], deltaY: 3, deltaMode: 1 }));
  assert.near((xy[0] - at([0, 0])[0]) / (xy[0] - ox), Math.exp(0.2 - 0.15), 1e-6, "a line of wheel: exp(0.05)");
  document.querySelector("#scatter .tools button[data-act=reset]").click();
});

test("in pan mode a drag moves the view, not the point", async () => {
  const pan = document.querySelector("#scatter .tools button[data-act=pan]"), before = linkText();
  pan.click();
  assert.equal(pan.getAttribute("aria-pressed"), "true");
  assert.ok(plot.classList.contains("panning"));
  const [x0, y0] = at([0, 0]);
  pointer(plot, "pointerdown", [x0, y0]);
  pointer(plot, "pointermove", [x0 + 30, y0 + 20]);
  pointer(plot, "pointerup", [x0 + 30, y0 + 20]);
  const [x1, y1] = at([0, 0]);
  assert.near(x1 - x0, 30, 1e-6);
  assert.near(y1 - y0, 20, 1e-6);
  await frames();
  assert.equal(linkText(), before);
  pan.click();
  assert.equal(pan.getAttribute("aria-pressed"), "false");
  assert.ok(!plot.classList.contains("panning"));
  // Shift+drag pans too.
  pointer(plot, "pointerdown", [x1, y1], { shiftKey: true });
  pointer(plot, "pointermove", [x1 - 30, y1 - 20], { shiftKey: true });
  pointer(plot, "pointerup", [x1 - 30, y1 - 20], { shiftKey: true });
  assert.near(at([0, 0])[0], x0, 1e-6);
  await frames();
  assert.equal(linkText(), before);
});

test("the manifold tab shows the grid decoded in the browser, rows from the highest z2, with the ring at the point", async () => {
  const tab = $("tab-manifold");
  tab.click();
  assert.equal(tab.getAttribute("aria-selected"), "true");
  assert.equal($("tab-scatter").getAttribute("aria-selected"), "false");
  assert.ok(!$("manifold-panel").hidden && $("scatter-panel").hidden);
  const img = document.querySelector("#manifold canvas.image");
  await until(() => img.getContext("2d").getImageData(2 * 28, 2 * 28, 28, 28).data.some((v, i) => i % 4 !== 3 && v > 0), 5000, "the grid");
  const cell = (i, j) => { const d = img.getContext("2d").getImageData(j * 28, i * 28, 28, 28).data; return Array.from({ length: 784 }, (_, p) => d[4 * p]); };
  const same = (got, z) => { const want = decode(model, z); return got.every((v, p) => Math.abs(v - Math.round(want[p] * 255)) <= 1); };
  assert.ok(same(cell(0, 0), [-2, 1.5]), "top left: lowest z1, highest z2");
  assert.ok(same(cell(2, 2), [2, -1.5]), "bottom right");
  assert.ok(same(cell(1, 1), [0, 0]), "the centre");
  assert.equal(img.getAttribute("aria-label"), "3 x 3 digits decoded over z1 in [-2,2], z2 in [-1.5,1.5]");
  $("tab-scatter").click();
  assert.ok($("manifold-panel").hidden && !$("scatter-panel").hidden);
});
