"""cvae.core.summary: the Keras-style table, measured from the model with hooks."""

from __future__ import annotations

import pytest

from cvae import CVAE, count_parameters
from cvae.core.summary import summarize, summary_text


@pytest.mark.parametrize("cfg", [dict(), dict(latent_dim=3, filters=(8, 16), dense=5)])
def test_summary_is_measured_from_the_model(cfg):
    m = CVAE(**cfg)
    s = summarize(m)
    assert s["encoder"].total_params == count_parameters(m.encoder)
    assert s["decoder"].total_params == count_parameters(m.decoder)
    f1, f2 = m.config.filters
    enc = {r.layer: r for r in s["encoder"].rows}
    assert enc["conv1"].output_shape == (None, f1, 14, 14)
    assert enc["conv2"].output_shape == (None, f2, 7, 7)
    assert enc["z_mean"].output_shape == (None, m.latent_dim)
    dec = s["decoder"].rows
    assert dec[-1].output_shape == (None, 1, 28, 28)
    # Every transposed conv reports the shape after the model's "same" crop.
    assert [r.output_shape[2:] for r in dec if r.kind == "ConvTranspose2d"] == [(14, 14), (28, 28), (28, 28)]


def test_tutorial_summary_text():
    text = summary_text(CVAE())
    assert "Total params: 69,076" in text and "Total params: 65,089" in text
    assert "(None, 64, 7, 7)" in text
