// The payloads Python sends (cvae/core/payloads.py), read into typed arrays.

export function base64Bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// The encodings: n points quantised to uint16 over the explorer's bounds (x to the right,
// y downwards, both in [0, 1]), then one label byte each.
export function preparePoints(p) {
  if (p.format !== "cvae-points/1") throw new Error(`unknown points format ${p.format}`);
  const bytes = base64Bytes(p.b64), view = new DataView(bytes.buffer), n = p.n;
  if (bytes.length !== 5 * n) throw new Error(`points payload holds ${bytes.length} bytes, expected ${5 * n}`);
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = view.getUint16(4 * i, true) / 65535;
    y[i] = view.getUint16(4 * i + 2, true) / 65535;
  }
  return { n, x, y, label: bytes.subarray(4 * n, 5 * n), range: [p.z1_range, p.z2_range] };
}

// Keeps the last `keep` prepared payloads by hash (a model switch back and forth costs nothing).
export function remember(map, key, make, keep = 4) {
  if (!map.has(key)) {
    map.set(key, make());
    while (map.size > keep) map.delete(map.keys().next().value);
  }
  return map.get(key);
}
