// The DOM tests' harness, in the page: test(name, fn) collects, run() runs them in order and
// returns [{name, ok, error}] (with a Stryker mutant switched on, up to the first failure). tests/dom/run.py opens one page per test file and reads the results.

const tests = [];

export function test(name, fn) { tests.push({ name, fn }); }

export async function run() {
  const results = [];
  for (const t of tests) {
    try {
      await t.fn();
      results.push({ name: t.name, ok: true });
    } catch (e) {
      results.push({ name: t.name, ok: false, error: `${e && e.message}\n${(e && e.stack) || ""}` });
      // Under Stryker a mutant is killed by its first failure: the tests after it would only
      // wait out their conditions.
      if (globalThis.__stryker__ && globalThis.__stryker__.activeMutant !== undefined) break;
    }
  }
  return results;
}

const show = (v) => { try { return JSON.stringify(v); } catch { return String(v); } };

export const assert = {
  ok(v, msg = "expected a true value") { if (!v) throw new Error(msg); },
  equal(a, b, msg = "") { if (!Object.is(a, b)) throw new Error(`${msg} expected ${show(b)}, got ${show(a)}`); },
  deepEqual(a, b, msg = "") { if (show(a) !== show(b)) throw new Error(`${msg} expected ${show(b)}, got ${show(a)}`); },
  near(a, b, tol, msg = "") {
    if (!(Math.abs(a - b) <= tol)) throw new Error(`${msg} expected ${b} ± ${tol}, got ${a}`);
  },
  match(s, re, msg = "") { if (!re.test(s)) throw new Error(`${msg} expected ${show(s)} to match ${re}`); },
};

// Waits (on animation frames) until cond() is true; throws after ms.
export async function until(cond, ms = 5000, what = "a condition") {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => requestAnimationFrame(r));
  }
}

// Frames pass (the ResizeObserver and requestAnimationFrame callbacks run).
export const frames = async (n = 2) => { for (let i = 0; i < n; i++) await new Promise((r) => requestAnimationFrame(r)); };
