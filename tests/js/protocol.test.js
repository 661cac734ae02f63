// The commit protocol: numbering, the host's echo, resends, a remount.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Commits } from "../../cvae/web/protocol.js";

// Timers the test advances by hand: no sleeps.
function clock() {
  let now = 0, id = 0;
  const due = new Map();
  return {
    setTimeout(fn, ms) { due.set(++id, { fn, at: now + ms }); return id; },
    clearTimeout(t) { due.delete(t); },
    advance(ms) {
      now += ms;
      for (const [t, { fn, at }] of [...due].sort((a, b) => a[1].at - b[1].at)) if (at <= now && due.delete(t)) fn();
    },
    pending: () => due.size,
  };
}

function channel() {
  const sent = [], timers = clock();
  const c = new Commits({ send: (name, v) => sent.push([name, { ...v }]), resendMs: 2500, timers });
  return { c, sent, timers };
}

test("numbers each commit and stops resending once the host echoes it", () => {
  const { c, sent, timers } = channel();
  assert.equal(c.sync("s1", 0), true);
  c.commit({ z1: 0.5, z2: -1, select: null, decodes: true });
  assert.deepEqual(sent, [["commit", { z1: 0.5, z2: -1, select: null, decodes: true, seq: 1, session: "s1" }]]);
  assert.equal(c.sync("s1", 1), true, "the echo of 1 settles commit 1");
  timers.advance(10000);
  assert.equal(sent.length, 1, "nothing is sent again after the echo");
  assert.equal(timers.pending(), 0);
});

test("a rerun from an older commit does not settle a newer one", () => {
  const { c, sent } = channel();
  c.sync("s1", 0);
  c.commit({ z1: 1, z2: 1 });
  c.commit({ z1: 2, z2: 2 });
  assert.equal(c.sync("s1", 1), false, "the host has applied 1, not 2: the browser keeps its point");
  assert.equal(c.pending.seq, 2);
  assert.equal(c.sync("s1", 2), true);
  assert.deepEqual(sent.map(([, v]) => v.seq), [1, 2]);
});

test("a lost commit is sent again until it is echoed", () => {
  const { c, sent, timers } = channel();
  c.sync("s1", 0);
  c.commit({ z1: 1, z2: 1 });
  timers.advance(2499);
  assert.equal(sent.length, 1);
  timers.advance(1);
  assert.equal(sent.length, 2, "resent after resendMs");
  assert.deepEqual(sent[1], sent[0]);
  timers.advance(2500);
  assert.equal(sent.length, 3);
  assert.equal(c.resent, 2);
  c.sync("s1", 1);
  timers.advance(10000);
  assert.equal(sent.length, 3);
});

test("a remount numbers on from the last commit the host applied", () => {
  const first = channel();
  first.c.sync("s1", 0);
  for (let i = 0; i < 5; i++) first.c.commit({ z1: i, z2: i });
  first.c.sync("s1", 5);
  const again = channel(); // a new explorer in the same session: the host says 5 were applied
  again.c.sync("s1", 5);
  again.c.commit({ z1: 9, z2: 9 });
  assert.equal(again.sent[0][1].seq, 6, "a restart at 1 would be dropped as already applied");
});

test("a new session starts from its own number and drops what was pending", () => {
  const { c, sent, timers } = channel();
  c.sync("s1", 4);
  c.commit({ z1: 1, z2: 1 }); // seq 5, never echoed: the server restarted
  assert.equal(c.sync("s2", 0), true, "the new session's point wins");
  timers.advance(10000);
  assert.equal(sent.length, 1, "the old session's commit is not resent to the new one");
  c.commit({ z1: 2, z2: 2 });
  assert.deepEqual([sent[1][1].seq, sent[1][1].session], [1, "s2"]);
});
