// The scatter as a 2-D slider, one gesture model for every scatter (the app's Plotly chart,
// plotly_hook.js; the static site's canvas, canvas_scatter.js): hover previews, press-drag
// moves, release commits, a click on a test digit selects it (elsewhere it moves the point
// there). A finger has no hover: its press moves the point at once.
//
// A surface turns its pointer events into plain ones and feeds them here:
//   {id: pointerId, touch: a finger?, xy: [clientX, clientY], z: [z1, z2] under it, inside: in the plot area}
// and the gesture decides what they mean, through its callbacks:
//   preview(z)       hovering at z               move(z)    dragging at z
//   endPreview(kind) the "hover" or "drag" preview ends without a commit
//   commit(z)        the point moves to z        select(hit) a click on the test digit hit = {z, index}
// pick(p) names the test digit under a click (or null).

export const MOVE_PX = 3; // a press that moves further than this (in CSS pixels) is a drag, not a click

export class Gesture {
  constructor(on, pick = () => null) {
    this.on = on;
    this.pick = pick;
    this.press = null;    // {id, xy, moved, last}: the pointer held down on the surface
    this.hovering = false;
  }

  get pressed() { return this.press !== null; }

  // A press inside the plot area starts a gesture; true when it did. A second pointer while
  // one is held is not a gesture of its own.
  down(p) {
    if (this.press || !p.inside) return false;
    this.press = { id: p.id, xy: p.xy, moved: false, last: null };
    this.hovering = false;
    if (p.touch) this.drag(p.z);
    return true;
  }

  move(p) {
    const press = this.press;
    if (press) {
      if (p.id !== press.id) return;
      if (!press.moved && Math.hypot(p.xy[0] - press.xy[0], p.xy[1] - press.xy[1]) > MOVE_PX) press.moved = true;
      if (press.moved) this.drag(p.z);
      return;
    }
    if (p.touch) return;
    if (p.inside) {
      this.hovering = true;
      this.on.preview(p.z);
    } else {
      this.leave(p);
    }
  }

  up(p) {
    const press = this.press;
    if (!press || p.id !== press.id) return;
    this.press = null;
    if (press.moved) return this.on.commit(p.z);
    const hit = this.pick(p);
    if (hit) return this.on.select(hit);
    this.on.commit(p.z);
  }

  // The browser took the pointer away (a scroll, a system gesture): a move under way ends where
  // it was last shown; a press that had not moved ends with nothing.
  cancel(p) {
    const press = this.press;
    if (!press || p.id !== press.id) return;
    this.press = null;
    if (press.last) this.on.commit(press.last);
  }

  // The pointer ({touch}) left the surface (or its plot area): a mouse's hover preview ends.
  leave(p) {
    if (p.touch || !this.hovering) return; // (a press ends the hover: down)
    this.hovering = false;
    this.on.endPreview("hover");
  }

  // The surface takes the pointer for something else (a second finger: pinch and pan): the
  // press ends without a commit, and its preview with it.
  abort() {
    const press = this.press;
    this.press = null;
    if (press && press.last) this.on.endPreview("drag");
  }

  drag(z) {
    this.press.last = z;
    this.on.move(z);
  }
}

// The callbacks that make a gesture move an explorer's point (explorer.js: preview, endPreview,
// commit; a preview of another kind, a slider's or a key's, is left alone).
export function explorerCallbacks(x) {
  return {
    preview: (z) => x.preview(z, "hover"),
    move: (z) => x.preview(z, "drag"),
    endPreview: (kind) => { if (x.live && x.live.source === kind) x.endPreview(); },
    commit: (z) => x.commit(z),
    select: (hit) => x.commit(hit.z, hit.index),
  };
}
