// The point in words, for a screen reader (the explorer's live region) and for anyone: where
// it is and what the decoder shows there, read from the test digits encoded nearest to it
// ("z = (0.30, −1.20): of the 50 nearest test digits, 41 are 7s and 6 are 9s").

export const NEAREST = 50;

// A number as a screen reader should say it: two decimals, a true minus sign.
export function say(v) {
  const s = Math.abs(v).toFixed(2);
  return v < 0 && Number(s) !== 0 ? `−${s}` : s;
}

function digits(count, d) {
  const an = d === 8 ? "an" : "a";
  return count === 1 ? `1 is ${an} ${d}` : `${count} are ${d}s`;
}

// points: the prepared encodings (payload.js preparePoints: x, y in [0, 1], label, range).
export function describePoint(z, points, k = NEAREST) {
  const head = `z = (${say(z[0])}, ${say(z[1])})`;
  if (!points || !points.n || !points.range) return `${head}.`;
  const [[a, b], [c, d]] = points.range, n = points.n;
  const dist = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const dx = a + points.x[i] * (b - a) - z[0], dy = d - points.y[i] * (d - c) - z[1];
    dist[i] = dx * dx + dy * dy;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => dist[i] - dist[j] || i - j);
  const near = order.slice(0, Math.min(k, n)).filter((i) => points.label[i] < 10);
  if (!near.length) return `${head}.`;
  const counts = new Map();
  for (const i of near) counts.set(points.label[i], (counts.get(points.label[i]) || 0) + 1);
  const top = [...counts].sort((p, q) => q[1] - p[1] || p[0] - q[0]);
  const parts = top.slice(0, 2).map(([dg, cnt]) => digits(cnt, dg));
  const far = Math.sqrt(dist[near[near.length - 1]]);
  return `${head}: of the ${near.length} nearest test digits, ${parts.join(" and ")}` +
    (far > 1 ? `; the farthest of them is ${far.toFixed(1)} away, so few digits are encoded here.` : ".");
}
