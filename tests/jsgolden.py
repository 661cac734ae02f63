"""The JavaScript decoder's golden file: a small decoder (the tutorial's layer kinds with
fewer channels) and PyTorch's images for a few latent points, computed in float64.

``python tests/jsgolden.py`` writes ``tests/js/decoder_golden.json``; test_js.py checks that
the committed file is still what PyTorch computes, and tests/js/decoder.test.js that the
browser's decoder reproduces it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cvae.core.model import CVAE
from cvae.core.payloads import decoder_payload

GOLDEN = Path(__file__).resolve().parent / "js" / "decoder_golden.json"
POINTS = [[0.0, 0.0], [1.5, -2.25], [-3.0, 0.75], [0.3, 2.9]]


def golden() -> dict:
    torch.manual_seed(7)
    model = CVAE(filters=(4, 8), dense=4).eval()
    with torch.no_grad():  # Keras's initialisation zeroes the biases: a decoder that skipped them would pass
        for name, p in model.decoder.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    payload = decoder_payload(model)
    with torch.no_grad():
        # The weights as the payload carries them (float32), the arithmetic in float64.
        dec = model.decoder.double()
        images = dec.activation(dec(torch.tensor(POINTS, dtype=torch.float64)))
    return {"payload": payload, "points": POINTS,
            "images": [[round(float(v), 10) for v in im.ravel()] for im in images]}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden(), separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)")
