// The decoder: a loop over the layer list Python declares (cvae/core/payloads.py
// decoder_payload). Nothing here names a layer; the architecture comes from p.layers.
import { base64Bytes } from "./payload.js";

const ACT = {
  relu: (a) => { for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] = 0; return a; },
  sigmoid: (a) => { for (let i = 0; i < a.length; i++) a[i] = 1 / (1 + Math.exp(-a[i])); return a; },
  linear: (a) => a,
};

// PyTorch layouts in; activations are kept as (row, column, channel) so that the inner
// loops walk both arrays contiguously.
export function prepareDecoder(p) {
  if (p.format !== "cvae-decoder/2") throw new Error(`unknown decoder format ${p.format}`);
  const bytes = base64Bytes(p.b64);
  if (bytes.length !== 4 * p.n_floats) throw new Error(`decoder payload holds ${bytes.length} bytes, expected ${4 * p.n_floats}`);
  const view = new DataView(bytes.buffer);
  const tensor = (name) => {
    const t = p.tensors[name];
    if (!t) throw new Error(`decoder payload lacks ${name}`);
    const n = t.shape.reduce((a, b) => a * b, 1), a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = view.getFloat32(4 * (t.offset + i), true);
    return { a, shape: t.shape };
  };
  const layers = p.layers.map((L) => {
    const act = ACT[L.activation];
    if (!act) throw new Error(`unknown activation ${L.activation} in layer ${L.name}`);
    const w = tensor(`${L.name}.weight`), b = tensor(`${L.name}.bias`);
    if (L.kind === "dense") {
      const [nOut, nIn] = w.shape;
      if (nOut !== L.out || nIn !== L.in) throw new Error(`layer ${L.name}: weight ${w.shape} does not match ${L.in} -> ${L.out}`);
      // A reshape to (C, H, W) (PyTorch's view, channel-major) becomes (H, W, C) here.
      let order = null;
      if (L.reshape) {
        const [C, H, W] = L.reshape;
        order = new Int32Array(nOut);
        for (let c = 0; c < C; c++) for (let q = 0; q < H * W; q++) order[q * C + c] = c * H * W + q;
      }
      const W2 = new Float64Array(w.a.length), B2 = new Float64Array(nOut);
      for (let r = 0; r < nOut; r++) {
        const from = order ? order[r] : r;
        B2[r] = b.a[from];
        for (let d = 0; d < nIn; d++) W2[r * nIn + d] = w.a[from * nIn + d];
      }
      return { kind: "dense", act, nIn, nOut, w: W2, b: B2, y: new Float64Array(nOut) };
    }
    if (L.kind === "conv_transpose") {
      const [cin, cout, k] = w.shape;
      if (cin !== L.in || cout !== L.out || k !== L.kernel) throw new Error(`layer ${L.name}: weight ${w.shape} does not match the layer list`);
      const w2 = new Float64Array(w.a.length); // (in, out, kh, kw) -> (in, kh, kw, out)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++)
          for (let t = 0; t < k * k; t++) w2[(c * k * k + t) * cout + o] = w.a[(c * cout + o) * k * k + t];
      return { kind: "conv_transpose", act, w: w2, b: b.a, cin, cout, k, stride: L.stride, crop: L.crop[0],
               hIn: L.size_in, hOut: L.size_out, y: new Float64Array(L.size_out * L.size_out * cout) };
    }
    throw new Error(`the browser decoder has no layer kind ${L.kind}`);
  });
  const last = layers[layers.length - 1];
  if (last.kind !== "conv_transpose" || last.cout !== 1 || last.hOut !== p.image_size)
    throw new Error("the decoder does not end in one channel of the image size");
  return { latentDim: p.latent_dim, size: p.image_size, layers };
}

function dense(x, L) {
  const { w, b, nIn, nOut, y } = L;
  for (let r = 0; r < nOut; r++) {
    let s = b[r];
    for (let d = 0; d < nIn; d++) s += w[r * nIn + d] * x[d];
    y[r] = s;
  }
  return y;
}

// y[oy, ox, o] = b[o] + sum x[i, j, c] * w[c, kh, kw, o], oy = i*stride + kh - crop (likewise
// ox); rows/columns outside [0, hOut) are the "same" crop. Zero inputs (after ReLU) are skipped.
function convTranspose(x, L) {
  const { w, b, cin, cout, k, stride, crop, hIn, hOut, y } = L;
  for (let q = 0; q < hOut * hOut; q++) y.set(b, q * cout);
  for (let i = 0; i < hIn; i++)
    for (let j = 0; j < hIn; j++) {
      const xb = (i * hIn + j) * cin;
      for (let kh = 0; kh < k; kh++) {
        const oy = i * stride + kh - crop;
        if (oy < 0 || oy >= hOut) continue;
        for (let kw = 0; kw < k; kw++) {
          const ox = j * stride + kw - crop;
          if (ox < 0 || ox >= hOut) continue;
          const yb = (oy * hOut + ox) * cout;
          for (let c = 0; c < cin; c++) {
            const v = x[xb + c];
            if (v === 0) continue;
            const wb = ((c * k + kh) * k + kw) * cout;
            for (let o = 0; o < cout; o++) y[yb + o] += v * w[wb + o];
          }
        }
      }
    }
  return y;
}

// z (latent_dim numbers) -> Float32Array(size*size) of pixel probabilities.
export function decode(m, z) {
  let h = Float64Array.from(z);
  for (const L of m.layers) h = L.act(L.kind === "dense" ? dense(h, L) : convTranspose(h, L));
  return Float32Array.from(h);
}
