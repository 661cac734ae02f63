// Drawing pad: draw a digit with the mouse, a pen or a finger. Light ink on a black
// ground, like MNIST. When a stroke ends the whole drawing goes back to Python as a
// PNG data URL (state value "image"); "Clear" sends null. Python (cvae/drawing.py)
// crops, scales and centres it as MNIST's digits were.

const PADS = new WeakMap(); // component root -> pad state (survives reruns)

function build(root, size) {
  const wrap = document.createElement("div");
  wrap.className = "cvae-draw";
  const canvas = document.createElement("canvas");
  canvas.className = "ink";
  canvas.width = size;
  canvas.height = size;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Drawing pad: draw a digit here");
  canvas.dataset.testid = "draw-canvas";
  const bar = document.createElement("div");
  bar.className = "bar";
  const clear = document.createElement("button");
  clear.type = "button";
  clear.textContent = "Clear";
  clear.className = "clear";
  const undo = document.createElement("button");
  undo.type = "button";
  undo.textContent = "Undo";
  undo.className = "undo";
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.textContent = "Draw one digit, large and centred.";
  bar.append(undo, clear, hint);
  wrap.append(canvas, bar);
  root.appendChild(wrap);
  return { wrap, canvas, clear, undo, hint, strokes: [], current: null, width: 0 };
}

function paint(pad) {
  const ctx = pad.canvas.getContext("2d");
  const { width: w, height: h } = pad.canvas;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  const all = pad.current ? [...pad.strokes, pad.current] : pad.strokes;
  for (const s of all) {
    ctx.lineWidth = s.width;
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      ctx.beginPath();
      ctx.arc(x, y, s.width / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(s.points[0][0], s.points[0][1]);
    for (const [x, y] of s.points.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

function send(pad) {
  pad.setStateValue("image", pad.strokes.length ? pad.canvas.toDataURL("image/png") : null);
}

export default function (component) {
  const { parentElement, data, setStateValue } = component;
  const size = Math.max(112, Math.min(560, Number(data?.size) || 280));
  let pad = PADS.get(parentElement);
  if (!pad || pad.canvas.width !== size) {
    if (pad) pad.wrap.remove();
    pad = build(parentElement, size);
    PADS.set(parentElement, pad);
    const toXY = (e) => {
      const r = pad.canvas.getBoundingClientRect();
      return [((e.clientX - r.left) * pad.canvas.width) / r.width,
              ((e.clientY - r.top) * pad.canvas.height) / r.height];
    };
    pad.canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      pad.canvas.setPointerCapture(e.pointerId);
      pad.current = { width: pad.width, points: [toXY(e)] };
      paint(pad);
    });
    pad.canvas.addEventListener("pointermove", (e) => {
      if (!pad.current) return;
      pad.current.points.push(toXY(e));
      paint(pad);
    });
    const end = () => {
      if (!pad.current) return;
      pad.strokes.push(pad.current);
      pad.current = null;
      paint(pad);
      send(pad);
    };
    pad.canvas.addEventListener("pointerup", end);
    pad.canvas.addEventListener("pointercancel", end);
    pad.clear.addEventListener("click", () => {
      pad.strokes = [];
      pad.current = null;
      paint(pad);
      send(pad);
    });
    pad.undo.addEventListener("click", () => {
      pad.strokes.pop();
      paint(pad);
      send(pad);
    });
  }
  pad.setStateValue = setStateValue;
  // MNIST strokes are about a tenth of the digit's height.
  pad.width = Math.max(2, Number(data?.stroke) || size / 14);
  paint(pad);
}
