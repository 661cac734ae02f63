"""A Keras-style model summary (layer, output shape, parameters), measured from the model.

Nothing here is hard-coded: each part of the model (encoder, decoder) is run once on a
dummy batch with forward hooks on its leaf layers, so the table follows whatever
configuration a checkpoint holds. Output shapes are PyTorch's (batch, channels, height,
width) with the batch shown as ``None``, as Keras does.

Keras' ``Conv2DTranspose(padding="same")`` crops the extra row/column that PyTorch's
transposed convolution produces; the model does that crop right after the layer, so the
table reports the shape the next layer actually receives and says so in ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .model import IMAGE_SIZE, CVAE


@dataclass(frozen=True)
class LayerRow:
    layer: str  # attribute path inside the part, e.g. "conv1"
    kind: str  # the module class, e.g. "Conv2d"
    output_shape: tuple  # with None for the batch
    params: int
    note: str = ""

    @property
    def shape_text(self) -> str:
        return "(" + ", ".join("None" if d is None else str(d) for d in self.output_shape) + ")"


@dataclass(frozen=True)
class PartSummary:
    name: str  # "encoder" | "decoder"
    input_shape: tuple
    rows: list[LayerRow]

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    def as_records(self) -> list[dict]:
        """Rows as plain dicts (for a table widget), the input first, as in Keras."""
        first = {"Layer (type)": "input (Input)", "Output shape": _shape_text(self.input_shape), "Param #": 0}
        return [first] + [{"Layer (type)": f"{r.layer} ({r.kind})", "Output shape": r.shape_text + (
            f"  [{r.note}]" if r.note else ""), "Param #": r.params} for r in self.rows]


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


@torch.inference_mode()
def summarize_part(name: str, part: nn.Module, dummy: torch.Tensor) -> PartSummary:
    """Run ``part`` once on ``dummy`` (batch 1) and record each leaf layer in call order."""
    return _summarize_with(name, part, dummy, part)


def _summarize_with(name: str, part: nn.Module, dummy: torch.Tensor, run) -> PartSummary:
    calls: list[tuple[str, nn.Module, tuple, tuple]] = []  # name, module, input shape, output shape
    handles = []
    for mod_name, mod in part.named_modules():
        if mod_name and not any(True for _ in mod.children()):
            def hook(m, inputs, output, _n=mod_name):
                i, o = _first_tensor(inputs), _first_tensor(output)
                calls.append((_n, m, tuple(i.shape) if i is not None else (), tuple(o.shape) if o is not None else ()))
            handles.append(mod.register_forward_hook(hook))
    was_training = part.training
    part.eval()
    try:
        run(dummy)
    finally:
        for h in handles:
            h.remove()
        part.train(was_training)
    rows = []
    for k, (mod_name, mod, _in_shape, out_shape) in enumerate(calls):
        shape, note = out_shape, ""
        if isinstance(mod, nn.ConvTranspose2d):
            # The model crops right after a transposed conv; report what flows on.
            nxt = calls[k + 1][2] if k + 1 < len(calls) else None
            if nxt is not None and len(nxt) == 4 and nxt[1] == out_shape[1] and nxt[2:] != out_shape[2:]:
                shape, note = nxt, f"cropped from {out_shape[2]}x{out_shape[3]}"
        params = sum(p.numel() for p in mod.parameters(recurse=False))
        rows.append(LayerRow(mod_name, type(mod).__name__, (None,) + tuple(shape[1:]), params, note))
    seen = {r.layer for r in rows}
    # Leaf layers that hold parameters but never ran would be missed by hooks; list them too.
    for mod_name, mod in part.named_modules():
        if mod_name and not any(True for _ in mod.children()) and mod_name not in seen:
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            if params:
                rows.append(LayerRow(mod_name, type(mod).__name__, (), params, "not called in forward"))
    return PartSummary(name, (None,) + tuple(dummy.shape[1:]), rows)


def summarize(model: CVAE) -> dict[str, PartSummary]:
    """{'encoder': PartSummary, 'decoder': PartSummary} for a CVAE."""
    dev = model.device
    return {
        "encoder": summarize_part("encoder", model.encoder, torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE, device=dev)),
        "decoder": summarize_part("decoder", model.decoder, torch.zeros(1, model.latent_dim, device=dev)),
    }


def part_text(part: PartSummary) -> str:
    """One part's table as Keras prints it, with its total."""
    recs = part.as_records()
    w0 = max(len("Layer (type)"), *(len(r["Layer (type)"]) for r in recs)) + 2
    w1 = max(len("Output shape"), *(len(r["Output shape"]) for r in recs)) + 2
    line = "=" * (w0 + w1 + 10)
    out = [f'Model: "{part.name}"', line, f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>10}", line]
    out += [f"{r['Layer (type)']:<{w0}}{r['Output shape']:<{w1}}{r['Param #']:>10,}" for r in recs]
    out += [line, f"Total params: {part.total_params:,}"]
    return "\n".join(out)


def summary_text(model: CVAE) -> str:
    """The summary as Keras prints it: one table per part, with totals."""
    return "\n\n".join(part_text(p) for p in summarize(model).values()) + "\n"
