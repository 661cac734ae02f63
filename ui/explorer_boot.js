// The explorer's loader: the only code sent with every rerun, so it stays small.
// Everything heavy (the explorer bundle: cvae/web and ui/explorer_host.js, the decoder's weights, the
// encodings) is content-addressed: Python sends {hash} and, only when asked, the payload.
// The loader looks in this page's memory, then in IndexedDB (kept across reloads), and
// asks Python for what is missing ("need"), again after a while, at most ASK_MAX times.
const MEM = new Map();     // hash -> payload (this page)
const MODULES = new Map(); // code hash -> Promise<module>
const STORED = new Set();  // hashes known to be in IndexedDB
const HOSTS = new WeakMap();
const RELEASED = { n: 0 }; // cleanups looked at (the test hooks read it)
const DB = "cvae-explorer", STORE = "assets", KEEP = 12, ASK_MAX = 3, ASK_AFTER_MS = 4000;

let dbPromise = null;
function db() {
  if (!dbPromise) dbPromise = new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
    } catch (e) { resolve(null); } // no IndexedDB (private mode...): memory only
  });
  return dbPromise;
}

async function dbGet(hash) {
  const d = await db();
  if (!d) return undefined;
  return new Promise((resolve) => {
    try {
      const req = d.transaction(STORE).objectStore(STORE).get(hash);
      req.onsuccess = () => resolve(req.result ? req.result.value : undefined);
      req.onerror = () => resolve(undefined);
    } catch (e) { resolve(undefined); }
  });
}

// Resolves true once the write is committed (only then may the cookie name the hash).
async function dbPut(hash, value) {
  const d = await db();
  if (!d) return false;
  try {
    const tx = d.transaction(STORE, "readwrite"), store = tx.objectStore(STORE);
    const done = new Promise((resolve) => {
      tx.oncomplete = () => resolve(true);
      tx.onerror = tx.onabort = () => resolve(false);
    });
    store.put({ value, t: Date.now() }, hash);
    const keys = store.getAllKeys();
    keys.onsuccess = () => {
      const rows = store.getAll();
      rows.onsuccess = () => {
        const byAge = keys.result.map((k, i) => [k, rows.result[i].t]).sort((a, b) => a[1] - b[1]);
        for (const [k] of byAge.slice(0, Math.max(0, byAge.length - KEEP))) store.delete(k);
      };
    };
    return await done;
  } catch (e) { return false; } // a full or blocked store only costs a resend later
}

function loadModule(hash, payload) {
  if (!MODULES.has(hash)) {
    const url = URL.createObjectURL(new Blob([payload.text], { type: "text/javascript" }));
    MODULES.set(hash, import(url).finally(() => URL.revokeObjectURL(url)));
  }
  return MODULES.get(hash);
}

class Host {
  constructor(parent) {
    this.el = document.createElement("div");
    this.el.className = "cvae-explorer-host";
    this.note = document.createElement("div");
    this.note.className = "cvae-note";
    this.note.setAttribute("role", "status");
    this.note.textContent = "loading the explorer…";
    this.el.appendChild(this.note);
    parent.appendChild(this.el);
    this.asked = new Map(); // hash -> {n, t}
    this.gen = 0;
  }

  async update(component) {
    const gen = ++this.gen;
    this.component = component;
    const refs = component.data.assets || {};
    const values = {}, need = {};
    for (const [name, ref] of Object.entries(refs)) {
      if (!ref) continue;
      if (ref.payload && !MEM.has(ref.hash)) {
        MEM.set(ref.hash, ref.payload);
        dbPut(ref.hash, ref.payload).then((ok) => { if (ok) { STORED.add(ref.hash); this.remember(); } });
      }
      let v = MEM.get(ref.hash);
      if (v === undefined) {
        v = await dbGet(ref.hash);
        if (v !== undefined) { MEM.set(ref.hash, v); STORED.add(ref.hash); }
      }
      if (v === undefined) need[name] = ref.hash; else values[name] = v;
    }
    if (gen !== this.gen) return; // a newer update came in meanwhile
    if (Object.keys(need).length) return this.ask(need);
    this.remember();
    clearTimeout(this.retry);
    try {
      const mod = await loadModule(refs.code.hash, values.code);
      if (gen !== this.gen) return;
      this.mod = mod;
      this.note.hidden = true;
      if (values.style && this.styleHash !== refs.style.hash) this.setStyle(refs.style.hash, values.style.text);
      mod.update(this.el, component, values);
    } catch (e) {
      this.fail(`The explorer failed to start: ${e && e.message ? e.message : e}`);
    }
  }

  // Tell the server what this browser keeps (in IndexedDB, written and committed), so a
  // later page (a reload, a new tab) gets only their hashes (ui/explorer.py reads it).
  remember() {
    const refs = (this.component && this.component.data.assets) || {};
    const hashes = Object.values(refs).filter(Boolean).map((r) => r.hash);
    if (!hashes.length || !hashes.every((h) => STORED.has(h))) return;
    const held = hashes.sort().join(".");
    if (!document.cookie.includes(`cvae_assets=${held}`))
      document.cookie = `cvae_assets=${held}; path=/; max-age=31536000; SameSite=Lax`;
  }

  // Component styles live in the component's own (shadow) root, not the page's.
  setStyle(hash, css) {
    if (!this.style) {
      this.style = document.createElement("style");
      const root = this.el.getRootNode();
      (root.head || root).appendChild(this.style);
    }
    this.style.textContent = css;
    this.styleHash = hash;
  }

  ask(need) {
    const now = Date.now(), ask = {};
    for (const [name, hash] of Object.entries(need)) {
      const a = this.asked.get(hash) || { n: 0, t: 0 };
      if (a.n >= ASK_MAX) return this.fail(`The server did not send the ${name} after ${ASK_MAX} requests. Reload the page.`);
      if (now - a.t >= ASK_AFTER_MS) { ask[name] = hash; this.asked.set(hash, { n: a.n + 1, t: now }); }
    }
    if (!this.mod) { this.note.hidden = false; this.note.textContent = `loading ${Object.keys(need).join(" and ")}…`; }
    if (Object.keys(ask).length) this.component.setTriggerValue("need", ask);
    clearTimeout(this.retry); // nothing came back: look again (and maybe ask again) later
    this.retry = setTimeout(() => this.update(this.component), ASK_AFTER_MS + 100);
  }

  fail(message) {
    clearTimeout(this.retry);
    this.note.hidden = false;
    this.note.className = "cvae-note cvae-error";
    this.note.setAttribute("role", "alert");
    this.note.textContent = message;
    if (this.mod && this.mod.fail) this.mod.fail(this.el, message);
  }
}

// Streamlit (1.67, BidiComponent) calls this on every rerun that changes the data, and calls
// a returned cleanup in two cases: the component left the page, or this call was overtaken (a
// newer rerun's data came while this one was still starting: its cleanup runs at once, the
// component stays). Tearing down then lost the user's place mid-gesture (focus, keys, a
// pending commit), so the host goes only once its element has left the page.
export default function mount(component) {
  const { parentElement } = component;
  let host = HOSTS.get(parentElement);
  if (!host) { host = new Host(parentElement); HOSTS.set(parentElement, host); }
  clearTimeout(host.leaving);
  host.update(component);
  if (component.data && component.data.hooks) globalThis.cvaeBoot = { mount, last: component, released: () => RELEASED.n };
  return () => {
    clearTimeout(host.leaving);
    host.leaving = setTimeout(() => {
      RELEASED.n += 1;
      if (parentElement.isConnected || HOSTS.get(parentElement) !== host) return; // still on the page
      clearTimeout(host.retry);
      if (host.mod && host.mod.unmount) host.mod.unmount(host.el);
      host.el.remove();
      HOSTS.delete(parentElement);
    }, 0);
  };
}
