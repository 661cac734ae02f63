// The digits' marker shapes on a canvas (marks.js), read back from a recording stand-in for
// the canvas's path context: what outline each name draws, where, and how big.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { markPath } from "../../cvae/web/marks.js";

// The names the app sends with its palette (cvae/draw/palette.py DIGIT_SYMBOLS), digit 0 first.
const palette = readFileSync(new URL("../../cvae/draw/palette.py", import.meta.url), "utf8");
const SYMBOLS = [...palette.match(/DIGIT_SYMBOLS = \(([^)]*)\)/)[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);

// A path context that keeps its subpaths as lists of points, as a canvas builds them: moveTo
// and rect start a subpath, lineTo and arc extend the current one (arc first draws a line to
// its start), closePath closes it and starts the next at its first point. Arcs are kept as
// points 1/64 of a turn apart, and also as drawn.
function recorder() {
  const paths = [], arcs = [];
  let cur = null;
  const start = (px, py) => { cur = { pts: [[px, py]], closed: false }; paths.push(cur); };
  const to = (px, py) => { if (cur) cur.pts.push([px, py]); else start(px, py); };
  return {
    paths, arcs,
    moveTo: start,
    lineTo: to,
    rect(x, y, w, h) {
      start(x, y); to(x + w, y); to(x + w, y + h); to(x, y + h);
      cur.closed = true; start(x, y);
    },
    arc(cx, cy, r, a0, a1, ccw = false) {
      assert.ok(!ccw, "arcs drawn clockwise");
      arcs.push({ cx, cy, r, a0, a1 });
      const n = Math.max(1, Math.round(((a1 - a0) / (2 * Math.PI)) * 64));
      for (let i = 0; i <= n; i++) {
        const a = a0 + ((a1 - a0) * i) / n;
        to(cx + r * Math.cos(a), cy + r * Math.sin(a));
      }
    },
    closePath() {
      assert.ok(cur, "closePath with no subpath");
      cur.closed = true;
      const [px, py] = cur.pts[0];
      start(px, py);
    },
  };
}

// The outlines drawn: subpaths that enclose something (a lone point left by closePath does not),
// each with repeated points (a line to where the pen already is, a closing point) dropped.
function outlines(g) {
  const near = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1]) < 1e-9;
  return g.paths.map((s) => {
    const pts = s.pts.filter((p, i) => i === 0 || !near(p, s.pts[i - 1]));
    if (pts.length > 1 && near(pts[0], pts[pts.length - 1])) pts.pop();
    return { pts, closed: s.closed };
  }).filter((s) => s.pts.length > 1);
}

function draw(symbol, x, y, r) {
  const g = recorder();
  markPath(g, symbol, x, y, r);
  return g;
}

function only(symbol, x, y, r) {
  const o = outlines(draw(symbol, x, y, r));
  assert.equal(o.length, 1, `${symbol}: one subpath`);
  return o[0].pts;
}

const area = (pts) => pts.reduce((s, [px, py], i) => {
  const [qx, qy] = pts[(i + 1) % pts.length];
  return s + (px * qy - qx * py) / 2;
}, 0);

function inside(pts, [x, y]) {
  let in_ = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i], [xj, yj] = pts[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) in_ = !in_;
  }
  return in_;
}

// The outline relative to (x, y), in units of r: the shape itself.
const shape = (symbol, x = 50, y = 30, r = 10) => only(symbol, x, y, r).map(([px, py]) => [(px - x) / r, (py - y) / r]);
const close = (a, b, tol = 1e-9) => Math.abs(a - b) <= tol;
const polar = (pts) => pts.map(([u, v]) => ({ d: Math.hypot(u, v), a: Math.atan2(v, u) }));

test("the palette names ten symbols, the circle first", () => {
  assert.equal(SYMBOLS.length, 10);
  assert.equal(new Set(SYMBOLS).size, 10);
  assert.equal(SYMBOLS[0], "circle");
});

test("every symbol is one closed outline around its point, of a size in proportion to r", () => {
  for (const s of [...SYMBOLS, "no-such-symbol"]) {
    const g = draw(s, 50, 30, 10), o = outlines(g);
    assert.equal(o.length, 1, `${s}: one subpath`);
    assert.ok(o[0].closed, `${s}: closed`);
    const pts = o[0].pts;
    assert.ok(pts.length >= 3, `${s}: encloses an area`);
    const far = Math.max(...pts.map(([px, py]) => Math.hypot(px - 50, py - 30)));
    assert.ok(far >= 10 - 1e-9 && far <= 15, `${s}: reaches ${far} from its point (r = 10)`);
    assert.ok(inside(pts, [50, 30]), `${s}: its point inside`);
    assert.ok(Math.abs(area(pts)) > 0.5 * 100, `${s}: an area like a circle of radius r`);
    // The same symbol elsewhere and twice as big: the same shape moved and scaled.
    const big = shape(s, -7, 120, 20), small = shape(s, 50, 30, 10);
    assert.equal(big.length, small.length, s);
    big.forEach(([u, v], i) => assert.ok(close(u, small[i][0], 1e-9) && close(v, small[i][1], 1e-9),
                                         `${s}: point ${i} scales with r and moves with (x, y)`));
  }
});

test("points drawn one after another on one path stay apart (one fill draws them all)", () => {
  for (const s of [...SYMBOLS, "no-such-symbol"]) {
    const g = recorder(), at = [[20, 20], [80, 20], [20, 90]];
    for (const [x, y] of at) markPath(g, s, x, y, 5);
    const o = outlines(g);
    assert.equal(o.length, 3, `${s}: a subpath per point`);
    o.forEach(({ pts }, k) => {
      const [x, y] = at[k];
      for (const [px, py] of pts) assert.ok(Math.hypot(px - x, py - y) <= 7.5, `${s}: point ${k}'s outline stays at its point`);
    });
  }
});

test("the ten symbols are ten different shapes", () => {
  const key = (s) => shape(s).map(([u, v]) => `${u.toFixed(3)},${v.toFixed(3)}`).sort().join(" ");
  const keys = SYMBOLS.map(key);
  assert.equal(new Set(keys).size, 10, "two symbols draw the same outline");
});

test("a name the canvas does not know, and 'circle', are a circle of radius r", () => {
  for (const s of ["circle", "no-such-symbol", undefined]) {
    const g = draw(s, 50, 30, 10);
    assert.equal(g.arcs.length, 1, `${s}: one arc`);
    const { cx, cy, r, a0, a1 } = g.arcs[0];
    assert.deepEqual([cx, cy, r], [50, 30, 10]);
    assert.ok(close(a1 - a0, 2 * Math.PI), `${s}: a whole turn`);
    for (const [px, py] of only(s, 50, 30, 10)) assert.ok(close(Math.hypot(px - 50, py - 30), 10, 1e-9));
  }
});

test("a square: sides along the axes, equal, centred on the point, a little narrower than the circle", () => {
  const pts = shape("square");
  assert.equal(pts.length, 4);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const w = Math.max(...xs) - Math.min(...xs), h = Math.max(...ys) - Math.min(...ys);
  assert.ok(close(w, h), "as wide as high");
  assert.ok(close(Math.max(...xs), -Math.min(...xs)) && close(Math.max(...ys), -Math.min(...ys)), "centred");
  for (const [u, v] of pts) assert.ok(close(Math.abs(u), w / 2) && close(Math.abs(v), h / 2), "corners only");
  // Its area near the circle's (pi r^2): side 1.7 r.
  assert.ok(close(w, 1.7, 1e-9), `side ${w} r`);
});

test("a diamond is a square standing on a corner", () => {
  const pts = shape("diamond");
  assert.equal(pts.length, 4);
  const d = Math.hypot(...pts[0]);
  const key = (t) => t.map(([u, v]) => `${u.toFixed(6)},${v.toFixed(6)}`).sort();
  assert.deepEqual(key(pts), key([[0, -d], [d, 0], [0, d], [-d, 0]]), "corners up, right, down, left");
  assert.ok(close(d, 1.15, 1e-9), `corners ${d} r from the point`);
});

test("triangle-up points up (a canvas's y grows downwards), triangle-down is it turned upside down", () => {
  const up = shape("triangle-up"), down = shape("triangle-down");
  assert.equal(up.length, 3);
  assert.equal(down.length, 3);
  const sides = (t) => t.map((p, i) => Math.hypot(p[0] - t[(i + 1) % 3][0], p[1] - t[(i + 1) % 3][1]));
  for (const t of [up, down]) {
    const s = sides(t);
    assert.ok(close(s[0], s[1]) && close(s[1], s[2]), "equilateral");
  }
  // up: one corner straight above the point, the other two below it, level with each other.
  const top = up.reduce((a, b) => (b[1] < a[1] ? b : a));
  assert.ok(close(top[0], 0) && top[1] < 0, "a corner straight above");
  const base = up.filter((p) => p !== top);
  assert.ok(close(base[0][1], base[1][1]) && base[0][1] > 0, "a level base below the point");
  assert.ok(close(base[0][0], -base[1][0]), "symmetric");
  // down: the same corners mirrored top to bottom.
  const key = (t) => t.map(([u, v]) => `${u.toFixed(6)},${v.toFixed(6)}`).sort();
  assert.deepEqual(key(down), key(up.map(([u, v]) => [u, -v + 0])));
});

test("a star has five points, the first straight up, and inner corners at 0.45 of its points' radius", () => {
  const p = polar(shape("star"));
  assert.equal(p.length, 10);
  const outer = p.filter((_, i) => i % 2 === 0), inner = p.filter((_, i) => i % 2 === 1);
  for (const q of outer) assert.ok(close(q.d, outer[0].d), "points at one radius");
  for (const q of inner) assert.ok(close(q.d, inner[0].d), "inner corners at one radius");
  assert.ok(close(inner[0].d / outer[0].d, 0.45), `inner radius ${inner[0].d / outer[0].d} of the outer`);
  assert.ok(close(p[0].a, -Math.PI / 2), "the first point straight up");
  p.forEach((q, i) => {
    const turn = (((q.a - p[0].a) / (Math.PI / 5)) % 10 + 10) % 10;
    assert.ok(close(turn, i, 1e-9), `corner ${i} a tenth of a turn after the one before`);
  });
});

test("a cross is a plus sign; an x is the same plus turned by 45 degrees", () => {
  // A plus sign's twelve corners: each coordinate is the arms' half-width w or their length R.
  const plus = (pts) => {
    const m = pts.flatMap(([u, v]) => [Math.abs(u), Math.abs(v)]);
    const w = Math.min(...m), R = Math.max(...m);
    assert.equal(pts.length, 12);
    for (const x of m) assert.ok(close(x, w, 1e-9) || close(x, R, 1e-9), `a corner off the plus sign: ${x}`);
    // Drawn in order round the sign (not crossing itself): the plus sign's area.
    assert.ok(close(Math.abs(area(pts)), 8 * w * R - 4 * w * w, 1e-9), "its outline goes round the sign");
    return { w, R };
  };
  const c = plus(shape("cross"));
  assert.ok(c.w < c.R / 2, "thin arms");
  const x = shape("x");
  const q = Math.SQRT1_2, back = x.map(([u, v]) => [u * q + v * q, -u * q + v * q]);
  const t = plus(back);
  assert.ok(close(t.w, c.w, 1e-9), "arms as wide as the cross's");
  // Its arms' tips run along the diagonals.
  for (const [u, v] of x.filter(([u, v]) => Math.hypot(u, v) > t.R)) assert.ok(Math.abs(u) > t.w && Math.abs(v) > t.w, "arm tips off the axes");
});

test("a pentagon points up; a hexagon stands on a corner, as Plotly draws them", () => {
  for (const [s, n] of [["pentagon", 5], ["hexagon", 6]]) {
    const p = polar(shape(s));
    assert.equal(p.length, n, s);
    for (const q of p) assert.ok(close(q.d, p[0].d), `${s}: a regular polygon`);
    assert.ok(p.some((q) => close(q.a, -Math.PI / 2)), `${s}: a corner straight up`);
    const sorted = p.map((q) => q.a).sort((a, b) => a - b);
    sorted.forEach((a, i) => i && assert.ok(close(a - sorted[i - 1], (2 * Math.PI) / n), `${s}: corners evenly spaced`));
  }
});
