// The static site's host: the page itself holds the point (no server). It reads the model and
// the encodings from data.js (globalThis.CVAE_SITE, written by `python -m cvae site`), starts
// the explorer on the same modules as the app, and answers its commits as Python does: the
// point moves, a click selects a digit, the commit's number is echoed, the URL keeps the point.
import { Explorer, pointFromUrl } from "./explorer.js";
import { base64Bytes, preparePoints } from "./payload.js";
import { decode } from "./decoder.js";
import { paintImage } from "./views.js";
import { CanvasScatter } from "./canvas_scatter.js";
import { ManifoldView } from "./manifold.js";

function start() {
  const S = globalThis.CVAE_SITE, $ = (id) => document.getElementById(id);
  if (!S) return failPage("data.js did not load: keep the folder's files together.");
  $("model").textContent = S.model.line;
  document.title = `CVAE latent explorer · ${S.model.name}`;
  const points = preparePoints(S.points);
  const state = { z: pointFromUrl(globalThis.location.search, S.bounds) || [0, 0], selected: null, seq: 0 };
  state.z = state.z.map((v, k) => Math.min(S.bounds[2 * k + 1], Math.max(S.bounds[2 * k], v)));
  const values = { weights: S.weights, points: S.points };
  const assets = { weights: { hash: S.weights.hash }, points: { hash: S.points.hash } };
  const data = () => ({
    assets, z: state.z, bounds: S.bounds, step: S.step, selected: state.selected, seq: state.seq, decodes: true,
    session: "site", n_points: points.n, palette: S.palette, digit_px: S.digit_px, pad_px: S.pad_px,
    manifold: S.manifold.map, hint: S.hint,
  });
  let x = null;
  // The commit trigger: applied at once, then the explorer hears back as it does from Python.
  const send = (name, v) => {
    if (name !== "commit") return;
    state.z = [v.z1, v.z2];
    state.seq = v.seq;
    if (Number.isInteger(v.select) && v.select >= 0 && v.select < points.n) state.selected = v.select;
    queueMicrotask(() => { x.update(data(), values, send); showSelection(); link(); });
  };
  // The test digits' sheet, when the site was written with MNIST beside it.
  const sheet = S.digits ? Object.assign(new Image(), { src: S.digits.file, alt: "" }) : null;
  let manifold = null;
  x = new Explorer($("explorer"), {
    surfaces: (ex) => ({
      scatter: new CanvasScatter($("scatter"), ex, { points, bounds: S.bounds, palette: S.palette, symbols: S.symbols }),
      manifold: (manifold = new ManifoldView($("manifold"), ex, S.manifold)),
    }),
  });
  x.update(data(), values, send);
  link();

  // The manifold's tab: decoded the first time it is opened.
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll("[role=tab]")) {
        const on = t === tab;
        t.setAttribute("aria-selected", String(on));
        $(t.getAttribute("aria-controls")).hidden = !on;
      }
      if (tab.getAttribute("aria-controls") === "manifold-panel" && x.model) manifold.draw(x.model).then(() => x.drawManifold());
      x.drawScatter();
      x.drawManifold();
    });
  }

  function link() {
    const a = $("link"), url = new URL(globalThis.location.href);
    url.searchParams.set("z1", state.z[0].toFixed(3));
    url.searchParams.set("z2", state.z[1].toFixed(3));
    a.href = url.href;
    a.textContent = `a link to z = (${state.z[0].toFixed(3)}, ${state.z[1].toFixed(3)})`;
  }

  // A clicked test digit beside its reconstruction (decoded at its z_mean).
  function showSelection() {
    const i = state.selected, box = $("selection");
    if (i === null || !x.model) { box.hidden = true; return; }
    box.hidden = false;
    const label = points.label[i], [a, b, c, d] = S.bounds;
    const z = [a + points.x[i] * (b - a), d - points.y[i] * (d - c)];
    $("selection-title").textContent = `Selected: test digit #${i}, a ${label}`;
    const recon = $("reconstruction");
    paintImage(recon.getContext("2d"), decode(x.model, z), 28);
    $("reconstruction-caption").textContent = `reconstruction at z_mean = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
    const orig = $("original"), g = orig.getContext("2d");
    if (sheet) {
      const draw = () => {
        g.clearRect(0, 0, 28, 28);
        g.drawImage(sheet, (i % S.digits.columns) * 28, Math.floor(i / S.digits.columns) * 28, 28, 28, 0, 0, 28, 28);
      };
      if (sheet.complete) draw(); else sheet.addEventListener("load", draw, { once: true });
      $("original-caption").textContent = `original #${i} (label ${label})`;
    } else {
      g.fillStyle = "#000"; g.fillRect(0, 0, 28, 28);
      $("original-caption").textContent = "the originals were not included (the site was written without MNIST)";
    }
    showLoss(i);
  }

  // The clicked digit's loss, precomputed by `python -m cvae site` (784·BCE and KL of every
  // test digit), and where it stands among them.
  let losses = null;
  function showLoss(i) {
    const box = $("loss");
    if (!S.loss || i === null) { box.hidden = true; return; }
    if (!losses) losses = lossArrays(S.loss);
    box.hidden = false;
    const r = losses.recon[i], k = losses.kl[i], e = r + k;
    let below = 0;
    for (let j = 0; j < losses.n; j++) if (losses.elbo[j] < e) below += 1;
    const harder = (100 * below) / losses.n;
    $("loss-text").textContent = `784·BCE ${r.toFixed(1)} + KL ${k.toFixed(1)} = −ELBO ${e.toFixed(1)} nats: ` +
      `harder than ${harder.toFixed(0)}% of test digits.`;
    drawHistogram($("loss-hist"), losses.sorted, e);
  }
  $("clear").addEventListener("click", () => { state.selected = null; showSelection(); x.update(data(), values, send); });
}

export function lossArrays(L) {
  const read = (b64, step, size) => {
    const bytes = base64Bytes(b64), v = new DataView(bytes.buffer), out = new Float64Array(L.n);
    for (let i = 0; i < L.n; i++) out[i] = (size === 1 ? v.getUint8(i) : v.getUint16(2 * i, true)) * step;
    return out;
  };
  const recon = read(L.recon, L.steps[0], 2), kl = read(L.kl, L.steps[1], L.kl_bytes);
  const elbo = recon.map((r, i) => r + kl[i]);
  return { n: L.n, recon, kl, elbo, sorted: Float64Array.from(elbo).sort() };
}

// The test digits' −ELBO as 40 bars over their 0.1%..99.9% range, the digit as a dark line.
function drawHistogram(c, sorted, value) {
  const g = c.getContext("2d"), W = c.width, H = c.height, bins = 40, n = sorted.length;
  const lo = sorted[Math.floor(0.001 * (n - 1))], hi = sorted[Math.ceil(0.999 * (n - 1))];
  const counts = new Array(bins).fill(0), at = (v) => Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)));
  for (const v of sorted) counts[at(v)] += 1;
  const top = Math.max(...counts);
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#0072b2";
  counts.forEach((cnt, b) => { const h = ((H - 14) * cnt) / top; g.fillRect((b * W) / bins + 0.5, H - 12 - h, W / bins - 1, h); });
  const x = Math.min(W - 1, Math.max(1, ((value - lo) / (hi - lo)) * W));
  g.fillStyle = "#111";
  g.fillRect(x - 1, 0, 2.5, H - 12);
  g.font = "10px sans-serif";
  g.textAlign = "left"; // (the context keeps the last draw's "right")
  g.fillText(lo.toFixed(0), 0, H - 1);
  g.textAlign = "right";
  g.fillText(`${hi.toFixed(0)} nats`, W, H - 1);
}

function failPage(message) {
  const el = document.getElementById("explorer");
  el.innerHTML = "";
  const note = document.createElement("div");
  note.className = "cvae-error";
  note.setAttribute("role", "alert");
  note.textContent = message;
  el.appendChild(note);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
