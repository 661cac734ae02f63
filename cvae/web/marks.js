// The digits' marker shapes, drawn on a canvas as Plotly draws them in the app (the names are
// cvae/draw/palette.py's DIGIT_SYMBOLS, sent with the palette): each adds a closed subpath of
// radius r around (x, y), so one fill draws every point of a digit.

function polygon(g, x, y, r, n, turn = -Math.PI / 2, inner = null) {
  const k = inner ? 2 * n : n;
  for (let i = 0; i < k; i++) {
    const a = turn + (i * 2 * Math.PI) / k, rr = inner && i % 2 ? inner * r : r;
    const px = x + rr * Math.cos(a), py = y + rr * Math.sin(a);
    if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
  }
  g.closePath();
}

function cross(g, x, y, r, w, turn) {
  // a plus sign of half-width w, turned by `turn` (an x is a plus turned by 45 degrees)
  const pts = [[-w, -r], [w, -r], [w, -w], [r, -w], [r, w], [w, w], [w, r], [-w, r], [-w, w], [-r, w], [-r, -w], [-w, -w]];
  const c = Math.cos(turn), s = Math.sin(turn);
  pts.forEach(([u, v], i) => {
    const px = x + u * c - v * s, py = y + u * s + v * c;
    if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
  });
  g.closePath();
}


export function markPath(g, symbol, x, y, r) {
  switch (symbol) {
    case "square": g.rect(x - r * 0.85, y - r * 0.85, 1.7 * r, 1.7 * r); return;
    case "diamond": polygon(g, x, y, r * 1.15, 4); return;
    case "triangle-up": polygon(g, x, y + r * 0.15, r * 1.15, 3); return;
    case "triangle-down": polygon(g, x, y - r * 0.15, r * 1.15, 3, Math.PI / 2); return;
    case "cross": cross(g, x, y, r, r * 0.35, 0); return;
    case "x": cross(g, x, y, r * 1.1, r * 0.35, Math.PI / 4); return;
    case "star": polygon(g, x, y, r * 1.3, 5, -Math.PI / 2, 0.45); return;
    case "hexagon": polygon(g, x, y, r, 6); return;
    case "pentagon": polygon(g, x, y, r * 1.05, 5); return;
    default: g.moveTo(x + r, y); g.arc(x, y, r, 0, 2 * Math.PI); g.closePath();
  }
}
