// The scatter's gesture model: hover previews, press-drag moves, release commits, a click
// selects the digit under it, a finger previews at once, a cancel or a second finger.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Gesture, MOVE_PX, explorerCallbacks } from "../../cvae/web/gesture.js";

// A gesture whose callbacks write what they hear; pick names the digit the test says is under.
function recorder(under = null) {
  const heard = [];
  const on = {};
  for (const name of ["preview", "move", "endPreview", "commit", "select"]) on[name] = (v) => heard.push([name, v]);
  const g = new Gesture(on, (p) => (typeof under === "function" ? under(p) : under));
  return { g, heard };
}

const mouse = (x, y, extra = {}) => ({ id: 1, touch: false, xy: [x, y], z: [x / 100, -y / 100], inside: true, ...extra });
const finger = (x, y, extra = {}) => mouse(x, y, { id: 7, touch: true, ...extra });

test("hovering previews each point; leaving the plot area or the surface ends the preview once", () => {
  const { g, heard } = recorder();
  g.leave({ touch: false });               // no hover yet: nothing to end
  g.move(mouse(10, 20));
  g.move(mouse(30, 40));
  g.move(mouse(500, 40, { inside: false }));
  assert.deepEqual(heard, [["preview", [0.1, -0.2]], ["preview", [0.3, -0.4]], ["endPreview", "hover"]]);
  g.move(mouse(501, 40, { inside: false }));
  g.leave({ touch: false });
  assert.equal(heard.length, 3);
  g.move(mouse(30, 40));
  g.leave({ touch: true });                // a finger leaving is not the mouse leaving
  g.leave({ touch: false });
  g.leave({ touch: false });
  assert.deepEqual(heard.slice(3), [["preview", [0.3, -0.4]], ["endPreview", "hover"]]);
});

test("a press that moves further than MOVE_PX drags and its release commits where it ends", () => {
  const { g, heard } = recorder({ z: [9, 9], index: 3 });
  assert.equal(g.down(mouse(100, 100)), true);
  assert.equal(g.pressed, true);
  g.move(mouse(100 + MOVE_PX, 100));       // not yet a drag (not further than MOVE_PX)
  g.move(mouse(100 + 2, 100 + 2));         // hypot 2.83
  assert.deepEqual(heard, []);
  g.move(mouse(102, 103));                 // hypot 3.6: a drag
  g.move(mouse(101, 101));                 // once a drag, every move moves, even back near the press
  g.move(mouse(150, 120));
  g.up(mouse(160, 130));
  assert.equal(g.pressed, false);
  assert.deepEqual(heard, [["move", [1.02, -1.03]], ["move", [1.01, -1.01]], ["move", [1.5, -1.2]],
                           ["commit", [1.6, -1.3]]]);
});

test("a click on a test digit selects it, elsewhere it moves the point there", () => {
  const hit = { z: [0.5, 0.25], index: 42 };
  const asked = [];
  const { g, heard } = recorder((p) => { asked.push(p.xy); return p.xy[0] < 50 ? hit : null; });
  g.down(mouse(10, 10));
  g.move(mouse(12, 11));                   // a tremble within MOVE_PX is still a click
  g.up(mouse(12, 11));
  g.down(mouse(80, 10));
  g.up(mouse(80, 10));
  assert.deepEqual(heard, [["select", hit], ["commit", [0.8, -0.1]]]);
  assert.deepEqual(asked, [[12, 11], [80, 10]]); // asked where the pointer came up
  // A drag that ends on a digit commits the point, never selects.
  g.down(mouse(10, 10));
  g.move(mouse(30, 10));
  g.up(mouse(30, 10));
  assert.deepEqual(heard.at(-1), ["commit", [0.3, -0.1]]);
  assert.equal(asked.length, 2);
});

test("a press outside the plot area, a second pointer and other pointers' moves are not gestures", () => {
  const { g, heard } = recorder();
  assert.equal(g.down(mouse(10, 10, { inside: false })), false);
  g.up(mouse(10, 10));
  assert.deepEqual(heard, []);
  g.down(mouse(10, 10));
  assert.equal(g.down(mouse(60, 60, { id: 2 })), false);
  g.move(mouse(90, 90, { id: 2 }));        // another pointer, far away: neither a drag nor a hover
  g.up(mouse(90, 90, { id: 2 }));          // nor its release
  assert.deepEqual(heard, []);
  assert.equal(g.pressed, true);
  g.up(mouse(10, 10));
  assert.deepEqual(heard, [["commit", [0.1, -0.1]]]);
});

test("while pressed there is no hover, and leaving the surface does not end the drag", () => {
  const { g, heard } = recorder();
  g.move(mouse(10, 10));                   // hover
  g.down(mouse(10, 10));
  g.leave({ touch: false });               // the press replaced the hover: nothing to end
  g.move(mouse(40, 10, { inside: false })); // dragged out of the plot area: still a drag
  g.up(mouse(40, 10, { inside: false }));
  assert.deepEqual(heard, [["preview", [0.1, -0.1]], ["move", [0.4, -0.1]], ["commit", [0.4, -0.1]]]);
  g.leave({ touch: false });               // no hover since the press: nothing to end
  assert.equal(heard.length, 3);
});

test("a finger has no hover: its press moves the point at once and a tap commits or selects", () => {
  const { g, heard } = recorder((p) => (p.xy[0] === 5 ? { z: [1, 1], index: 0 } : null));
  g.move(finger(20, 20));                  // a finger that is not down is not heard
  g.leave({ touch: true });
  assert.deepEqual(heard, []);
  g.down(finger(20, 20));
  assert.deepEqual(heard, [["move", [0.2, -0.2]]]);
  g.up(finger(20, 20));
  assert.deepEqual(heard.at(-1), ["commit", [0.2, -0.2]]);
  g.down(finger(5, 5));
  g.up(finger(5, 5));
  assert.deepEqual(heard.at(-1), ["select", { z: [1, 1], index: 0 }]);
});

test("a cancel commits a move where it was last shown, and a press that had not moved ends with nothing", () => {
  const { g, heard } = recorder();
  g.down(mouse(10, 10));
  g.move(mouse(50, 50));
  g.cancel(mouse(300, 300, { id: 2 }));    // another pointer's cancel: the drag goes on
  assert.equal(g.pressed, true);
  g.cancel(mouse(300, 300));
  assert.deepEqual(heard, [["move", [0.5, -0.5]], ["commit", [0.5, -0.5]]]);
  assert.equal(g.pressed, false);
  g.down(mouse(10, 10));
  g.cancel(mouse(10, 10));
  g.up(mouse(10, 10));                     // after the cancel, the release is nobody's
  assert.equal(heard.length, 2);
  g.down(finger(30, 30));
  g.cancel(finger(30, 30));                // a finger's press previewed: committed there
  assert.deepEqual(heard.slice(2), [["move", [0.3, -0.3]], ["commit", [0.3, -0.3]]]);
});

test("abort (a second finger) ends a previewed drag without a commit, and a bare press silently", () => {
  const { g, heard } = recorder();
  g.down(mouse(10, 10));
  g.abort();
  assert.deepEqual(heard, []);
  assert.equal(g.pressed, false);
  g.down(finger(10, 10));
  g.abort();
  g.up(finger(10, 10));
  assert.deepEqual(heard, [["move", [0.1, -0.1]], ["endPreview", "drag"]]);
  g.abort();
  assert.equal(heard.length, 2);
});

test("explorerCallbacks moves an explorer's point and ends only its own kind of preview", () => {
  const calls = [];
  const x = {
    live: null,
    preview(z, source) { calls.push(["preview", z, source]); this.live = { z, source }; },
    endPreview() { calls.push(["endPreview"]); this.live = null; },
    commit(z, select) { calls.push(["commit", z, select]); this.live = null; },
  };
  const on = explorerCallbacks(x);
  on.preview([1, 2]);
  on.endPreview("drag");                   // a hover is not a drag's to end
  on.endPreview("hover");
  on.endPreview("hover");                  // nothing left to end
  on.move([3, 4]);
  on.commit([5, 6]);
  on.select({ z: [7, 8], index: 9 });
  x.live = { z: [0, 0], source: "slider" };
  on.endPreview("hover");                  // a slider's preview stays
  assert.deepEqual(calls, [["preview", [1, 2], "hover"], ["endPreview"], ["preview", [3, 4], "drag"],
                           ["commit", [5, 6], undefined], ["commit", [7, 8], 9]]);
  assert.equal(x.live.source, "slider");
});
