// What the DOM tests show: the golden decoder (tests/js/decoder_golden.json, a small model of
// random weights), a few encoded test digits at known points, and the static site's data
// (globalThis.CVAE_SITE, as `python -m cvae site` writes it) built from them.

export const PALETTE = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2",
                        "#d55e00", "#cc79a7", "#000000", "#999933", "#882255"];
export const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross",
                        "x", "triangle-down", "star", "hexagon", "pentagon"];
export const BOUNDS = [-4, 4, -3, 3];

// Test digits: #0..#9 one of each label on a ring, #10 a second 3, #11 an unlabelled one (255).
export const DIGITS = [
  ...Array.from({ length: 10 }, (_, i) => [2.5 * Math.cos(i * 0.6), 2 * Math.sin(i * 0.6)]),
  [-1, -2], [1, 0.5]];
export const LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 255];

export async function golden() {
  return (await fetch("/tests/js/decoder_golden.json")).json();
}

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));

// The encodings payload (cvae/core/payloads.py points_payload): uint16 x, y over the ranges, then labels.
export function pointsPayload(zs = DIGITS, labels = LABELS, [a, b, c, d] = BOUNDS, hash = "points-1") {
  const n = zs.length, bytes = new Uint8Array(5 * n), v = new DataView(bytes.buffer);
  zs.forEach(([z1, z2], i) => {
    v.setUint16(4 * i, Math.round(((z1 - a) / (b - a)) * 65535), true);
    v.setUint16(4 * i + 2, Math.round(((d - z2) / (d - c)) * 65535), true);
    bytes[4 * n + i] = labels[i];
  });
  return { format: "cvae-points/1", n, b64: b64(bytes), z1_range: [a, b], z2_range: [c, d], hash };
}

// Where test digit i is once quantised (what the page shows).
export function encoded(i, [a, b, c, d] = BOUNDS) {
  const [z1, z2] = DIGITS[i];
  const x = Math.round(((z1 - a) / (b - a)) * 65535) / 65535, y = Math.round(((d - z2) / (d - c)) * 65535) / 65535;
  return [Math.fround(a + Math.fround(x) * (b - a)), Math.fround(d - Math.fround(y) * (d - c))];
}

// cvae/core/latent.py manifold_map.
export function manifoldMap(n, [a, b], [c, d], cell = 28) {
  const px = (z1, z2) => [((z1 - a) / (b - a) * (n - 1) + 0.5) * cell, ((d - z2) / (d - c) * (n - 1) + 0.5) * cell];
  const [x0, y0] = px(a, c), [x1, y1] = px(b, d), sx = (x1 - x0) / (b - a), sy = (y1 - y0) / (d - c);
  return { x: [sx, x0 - sx * a], y: [sy, y0 - sy * c], inside: [a, b, c, d], cell, side: n * cell };
}

// cvae/site.py loss_payload: recon in steps of 0.05 as uint16, KL in steps of 0.1 as uint8 (or uint16).
export function lossPayload(recon, kl, klBytes = 1) {
  const n = recon.length, r = new Uint8Array(2 * n), k = new Uint8Array(klBytes * n);
  const rv = new DataView(r.buffer), kv = new DataView(k.buffer);
  recon.forEach((x, i) => rv.setUint16(2 * i, Math.round(x / 0.05), true));
  kl.forEach((x, i) => (klBytes === 1 ? kv.setUint8(i, Math.round(x / 0.1)) : kv.setUint16(2 * i, Math.round(x / 0.1), true)));
  return { n, steps: [0.05, 0.1], samples: 1, kl_bytes: klBytes, recon: b64(r), kl: b64(k) };
}

export async function siteData(more = {}) {
  const g = await golden();
  const n = 3, z1r = [-2, 2], z2r = [-1.5, 1.5];
  return {
    model: { name: "tiny.pt", line: "tiny.pt · a test model" },
    weights: g.payload, points: pointsPayload(), bounds: BOUNDS, step: 0.01, palette: PALETTE, symbols: SYMBOLS,
    digit_px: 140, pad_px: 200, hint: "drag the pad",
    manifold: { n, z1_range: z1r, z2_range: z2r, map: manifoldMap(n, z1r, z2r) },
    digits: null, loss: null, encodings: "test",
    ...more,
  };
}

// The static site's page (cvae/web/site.html's body), in this document.
export async function sitePage() {
  const html = await (await fetch("/cvae/web/site.html")).text();
  const body = new DOMParser().parseFromString(html, "text/html").body;
  for (const s of body.querySelectorAll("script, noscript")) s.remove();
  document.body.prepend(...body.children);
}

// Pointer events as a mouse or a finger makes them, at client coordinates.
export function pointer(el, type, [x, y], more = {}) {
  const e = new PointerEvent(type, { bubbles: true, cancelable: true, composed: true, clientX: x, clientY: y,
                                     pointerId: 1, pointerType: "mouse", button: 0, buttons: type === "pointerup" ? 0 : 1,
                                     isPrimary: true, ...more });
  el.dispatchEvent(e);
  return e;
}

export function key(el, type, k, more = {}) {
  el.dispatchEvent(new KeyboardEvent(type, { key: k, bubbles: true, cancelable: true, ...more }));
}

// The decoded digit's pixels (grey levels, 28 x 28) on a canvas.
export function pixels(canvas, n = 28) {
  const d = canvas.getContext("2d").getImageData(0, 0, n, n).data;
  return Array.from({ length: n * n }, (_, i) => d[4 * i]);
}
