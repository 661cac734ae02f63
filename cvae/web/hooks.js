// Test and benchmark hooks on globalThis.cvaeExplorer: bundled only when asked for
// (CVAE_TEST_HOOKS=1 for the app and the site writer), installed when this module loads.
import { LIVE } from "./explorer.js";
import { decode } from "./decoder.js";

function first() {
  const x = [...LIVE].find((e) => e.model);
  if (!x) throw new Error("no explorer has its decoder yet");
  return x;
}

function ready(s) { return !!(s && s.ready()); }

if (!globalThis.cvaeExplorer) {
  globalThis.cvaeExplorer = {
    decode: (points) => points.map((z) => Array.from(decode(first().model, z))),
    decode2: (points) => points.map((z) => Array.from(decode(first().model2, z))),
    timeDecode(n) {
      const m = first().model, t0 = performance.now();
      for (let i = 0; i < n; i++) decode(m, [2 * Math.cos(i / 10), 2 * Math.sin(i / 10)]);
      return (performance.now() - t0) / n;
    },
    stats: () => [...LIVE].map((x) => ({ ...x.stats, committed: x.committed.slice(), shown: x.shown && x.shown.slice(),
                                          live: x.live && { ...x.live }, hasModel: !!x.model, selected: x.selected,
                                          scatter: ready(x.scatter), manifold: ready(x.manifold), failed: x.failed,
                                          watching: x.watching, float: !x.float.hidden, resent: x.commits.resent, seq: x.commits.seq,
                                          compare: x.compare && x.compare.name, hasModel2: !!x.model2, shown2: x.shown2 && x.shown2.slice(),
                                          scatter2: !!(x.compare && x.scatter2 && x.scatter2.attached() && x.scatter2.ready()),
                                          failed2: x.failed2 || null })),
    // Client (page) coordinates of a latent point on the scatter or the manifold.
    scatterPx: (z1, z2) => first().scatter.client(z1, z2),
    scatter2Px: (z1, z2) => first().scatter2.client(z1, z2),
    scatterLatent: (clientX, clientY) => first().scatter.at({ clientX, clientY }).z,
    // The feature layers drawn over the scatter: {name: {x, y}}.
    overlays() {
      const out = {};
      for (const L of first().layers || []) out[L.name] = { x: L.x, y: L.y };
      return out;
    },
    manifoldRing() {
      const x = first(), m = x.manifoldMap, [z1, z2] = x.current();
      return x.manifold.client(m.x[0] * z1 + m.x[1], m.y[0] * z2 + m.y[1]);
    },
  };
}
