// The static site's manifold: the tutorial's n x n grid of digits, decoded in the browser
// (row 0 is the highest z2, as cvae/core/latent.py decode_grid draws it), a few rows per
// frame so that the page stays responsive. A surface for the explorer's ring, in the image's
// pixels, as the app's Plotly manifold is.
import { decode } from "./decoder.js";
import { beginOverlay } from "./views.js";

export class ManifoldView {
  // spec: {n, z1_range, z2_range, map} (map: ui/explorer.py manifold_map of this grid)
  constructor(box, x, spec) {
    this.x = x;
    this.spec = spec;
    box.classList.add("cvae-manifold");
    box.innerHTML = `<div class="grid"><canvas class="image" role="img"></canvas><canvas class="marks"></canvas></div>`;
    this.wrap = box.querySelector(".grid");
    [this.image, this.canvas] = box.querySelectorAll("canvas");
    const side = spec.n * 28;
    this.image.width = this.image.height = side;
    this.image.setAttribute("aria-label", `${spec.n} x ${spec.n} digits decoded over z1 in [${spec.z1_range}], z2 in [${spec.z2_range}]`);
    this.rows = 0;   // rows decoded so far
    this.resize = new ResizeObserver(() => this.x.drawManifold());
    this.resize.observe(this.wrap);
  }

  // Decode the grid (once per model), a few rows at a time; resolves when done.
  draw(model) {
    if (this.model === model) return this.done;
    this.model = model;
    this.rows = 0;
    const { n, z1_range: [a, b], z2_range: [c, d] } = this.spec, g = this.image.getContext("2d");
    const at = (k, lo, hi) => (n === 1 ? (lo + hi) / 2 : lo + (k * (hi - lo)) / (n - 1));
    this.done = new Promise((resolve) => {
      const step = () => {
        if (this.model !== model) return resolve(false);
        const t0 = performance.now();
        while (this.rows < n && performance.now() - t0 < 12) {
          const i = this.rows++, z2 = at(n - 1 - i, c, d);
          for (let j = 0; j < n; j++) {
            const img = decode(model, [at(j, a, b), z2]), im = g.createImageData(28, 28);
            for (let p = 0; p < 784; p++) {
              const v = Math.round(img[p] * 255);
              im.data[4 * p] = im.data[4 * p + 1] = im.data[4 * p + 2] = v;
              im.data[4 * p + 3] = 255;
            }
            g.putImageData(im, j * 28, i * 28);
          }
        }
        if (this.rows < n) requestAnimationFrame(step); else resolve(true);
      };
      requestAnimationFrame(step);
    });
    return this.done;
  }

  find() { return this; }
  attached() { return true; }
  ready() { return this.wrap.clientWidth > 0; }
  area() { const s = this.wrap.clientWidth; return { left: 0, top: 0, width: s, height: s }; }
  toPx(ix, iy) { const k = this.wrap.clientWidth / (this.spec.n * 28); return [ix * k, iy * k]; }
  client(ix, iy) { const r = this.wrap.getBoundingClientRect(), [px, py] = this.toPx(ix, iy); return [r.left + px, r.top + py]; }
  begin() { const s = this.wrap.clientWidth; return beginOverlay(this.canvas, s, s, this.area()); }
  detach() { this.resize.disconnect(); }
}
