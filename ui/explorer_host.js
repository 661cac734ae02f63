// The explorer in a Streamlit page: the host adapter between Streamlit's component (its data
// on every rerun, its triggers "commit" and "failed") and the explorer's modules, which the
// static site shares (cvae/web). Loaded by ui/explorer_boot.js as one bundle (ui/explorer.py).
import { Explorer } from "../cvae/web/explorer.js";
import { PlotHook, listenScatter } from "../cvae/web/plotly_hook.js";

const EXPLORERS = new WeakMap(); // host element -> Explorer

// The st.plotly_chart scatters (the model's, and a second model's when one is compared) and the
// manifold, hooked by their selectors (sent with each rerun).
function surfaces(x) {
  const hookScatter = (which) => {
    const hook = new PlotHook("", (gd) => {
      if (x.unhook[which]) x.unhook[which](); // a new chart replaced the old one
      x.unhook[which] = listenScatter(hook, gd, x);
      x.drawScatter();
    });
    return hook;
  };
  x.unhook = {};
  const scatter = hookScatter("scatter"), scatter2 = hookScatter("scatter2");
  const manifold = new PlotHook("", (gd) => {
    gd.on("plotly_afterplot", () => x.drawManifold());
    gd.on("plotly_relayout", () => x.drawManifold());
    x.drawManifold();
  });
  return { scatter, scatter2, manifold };
}

// The server-rendered digit (ui/explorer.py) is the fallback: hidden while this decoder works.
function setFallbackHidden(hidden) {
  let style = document.getElementById("cvae-fallback-style");
  if (hidden && !style) {
    style = document.createElement("style");
    style.id = "cvae-fallback-style";
    style.textContent = ".st-key-cvae_fallback { display: none !important; }";
    document.head.appendChild(style);
  } else if (!hidden && style) {
    style.remove();
  }
}

function create(host) {
  const x = new Explorer(host, {
    surfaces,
    onFail: (message, told) => {
      setFallbackHidden(false);
      // Python left its digit out once told that this browser decodes: it is needed again.
      if (told && x.commits.send) x.commits.send("failed", message);
    },
  });
  // The feature layers reach the explorer through the page: kept on <html> (the explorer may
  // load later) and announced with an event (it may be there already).
  const layers = (data) => x.setLayers((data && data.layers) || null);
  x.onLayers = (e) => layers(e.detail);
  document.addEventListener("cvae:overlays", x.onLayers);
  try { layers(JSON.parse(document.documentElement.dataset.cvaeOverlays || "null")); } catch (e) { /* none yet */ }
  return x;
}

export function update(host, component, values) {
  let x = EXPLORERS.get(host);
  if (!x) { x = create(host); EXPLORERS.set(host, x); }
  const d = component.data;
  x.scatter.selector = d.scatter_selector;
  x.scatter2.selector = d.compare ? d.compare.scatter_selector : "";
  x.manifold.selector = d.manifold_selector;
  x.update(d, values, component.setTriggerValue);
  if (!x.failed) setFallbackHidden(true);
}

export function fail(host, message) {
  const x = EXPLORERS.get(host);
  if (x) x.fail(message);
}

export function unmount(host) {
  const x = EXPLORERS.get(host);
  if (!x) return;
  document.removeEventListener("cvae:overlays", x.onLayers);
  for (const off of Object.values(x.unhook)) off();
  x.unmount();
  EXPLORERS.delete(host);
}
