// The commit protocol before a host is attached (no send function): a commit is numbered and
// kept pending, nothing is thrown and no resend is scheduled.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Commits } from "../../cvae/web/protocol.js";

test("without a host a commit is kept pending, not sent, not rescheduled", () => {
  const due = [];
  const timers = { setTimeout: (fn, ms) => { due.push(ms); return due.length; }, clearTimeout: () => {} };
  const c = new Commits({ timers });
  c.sync("s1", 3);
  const sent = c.commit({ z1: 1, z2: 2, select: null, decodes: true });
  assert.deepEqual(sent, { z1: 1, z2: 2, select: null, decodes: true, seq: 4, session: "s1" });
  assert.equal(c.pending, sent);
  assert.deepEqual(due, []);
  assert.equal(c.sync("s1", 4), true);
  assert.equal(c.pending, null);
});
