// The commit protocol between a browser explorer and the host that holds the model's truth
// (Python in the app; the page itself in the static site).
//
// Each commit carries a sequence number and the host echoes the last one it applied. Until it
// has, the browser keeps its own point (a rerun from an earlier commit does not pull it back),
// and a commit not applied within resendMs is sent again: none is lost. A new explorer (a
// remount, a reload) numbers on from the last number the host applied: starting again at 1
// had the host drop its commits as already applied.

export const RESEND_MS = 2500;

export class Commits {
  constructor({ send = null, resendMs = RESEND_MS, timers = globalThis } = {}) {
    this.send = send;        // (name, value) => void: the host's trigger
    this.resendMs = resendMs;
    this.timers = timers;    // setTimeout/clearTimeout (tests pass their own)
    this.session = null;
    this.seq = 0;
    this.pending = null;     // the last commit sent and not yet echoed
    this.resent = 0;
  }

  // What the host says after a run: its session and the last commit it applied. True when
  // nothing of ours is pending, so the host's point is the point to show.
  sync(session, applied) {
    applied = Number.isInteger(applied) ? applied : 0;
    if (this.session !== session) {
      this.session = session;
      this.seq = applied;
      this.drop();
    }
    if (this.pending && applied >= this.pending.seq) this.drop();
    return !this.pending;
  }

  // Sends a commit ({z1, z2, select, decodes}) numbered after the last; returns what was sent.
  commit(fields) {
    this.seq += 1;
    this.pending = { ...fields, seq: this.seq, session: this.session };
    this.sendPending();
    return this.pending;
  }

  sendPending() {
    this.timers.clearTimeout(this.timer);
    if (!this.pending || !this.send) return;
    this.send("commit", this.pending);
    this.timer = this.timers.setTimeout(() => { this.resent += 1; this.sendPending(); }, this.resendMs);
  }

  drop() {
    this.pending = null;
    this.timers.clearTimeout(this.timer);
  }
}
