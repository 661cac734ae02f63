"""cvae.core.summary: the Keras-style table, measured from the model with hooks."""

from __future__ import annotations

import pytest
import torch

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


SMALL_TEXT = '''Model: "encoder"
=================================================
Layer (type)        Output shape          Param #
=================================================
input (Input)       (None, 1, 28, 28)           0
conv1 (Conv2d)      (None, 8, 14, 14)          80
conv2 (Conv2d)      (None, 16, 7, 7)        1,168
dense (Linear)      (None, 5)               3,925
z_mean (Linear)     (None, 3)                  18
z_log_var (Linear)  (None, 3)                  18
=================================================
Total params: 5,209

Model: "decoder"
===============================================================================
Layer (type)               Output shape                                 Param #
===============================================================================
input (Input)              (None, 3)                                          0
dense (Linear)             (None, 784)                                    3,136
deconv1 (ConvTranspose2d)  (None, 16, 14, 14)  [cropped from 15x15]       2,320
deconv2 (ConvTranspose2d)  (None, 8, 28, 28)  [cropped from 29x29]        1,160
deconv3 (ConvTranspose2d)  (None, 1, 28, 28)                                 73
===============================================================================
Total params: 6,689
'''


def test_the_whole_text_as_keras_prints_it():
    """Columns two spaces wider than their widest cell, the parameters right-aligned with thousands
    separators, the input first with 0, each crop said where it happens, a blank line between parts."""
    assert summary_text(CVAE(latent_dim=3, filters=(8, 16), dense=5)) == SMALL_TEXT


def test_the_rows_for_a_table_widget():
    s = summarize(CVAE(latent_dim=3, filters=(8, 16), dense=5))
    assert s["decoder"].name == "decoder" and s["encoder"].name == "encoder"
    assert s["decoder"].as_records()[:3] == [
        {"Layer (type)": "input (Input)", "Output shape": "(None, 3)", "Param #": 0},
        {"Layer (type)": "dense (Linear)", "Output shape": "(None, 784)", "Param #": 3136},
        {"Layer (type)": "deconv1 (ConvTranspose2d)", "Output shape": "(None, 16, 14, 14)  [cropped from 15x15]",
         "Param #": 2320}]
    assert s["encoder"].input_shape == (None, 1, 28, 28) and s["decoder"].input_shape == (None, 3)


class _Odd(torch.nn.Module):
    """A part with a nested block, a layer that is never called, one called without a tensor and
    one that returns no tensor."""

    def __init__(self):
        super().__init__()
        self.block = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        self.unused = torch.nn.Linear(3, 2)
        self.idle = torch.nn.Dropout()  # never called, no parameters: not listed
        self.bias = _Bias()
        self.info = _Info()

    def forward(self, x):
        self.info(x)
        return self.block(x) + self.bias()


class _Bias(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b = torch.nn.Parameter(torch.zeros(3))

    def forward(self):
        return self.b


class _Info(torch.nn.Module):
    def forward(self, x):
        return {"rows": len(x)}


def test_any_part_each_leaf_layer_in_call_order_and_the_ones_never_called():
    from cvae.core.summary import LayerRow, part_text, summarize_part

    part = _Odd().train()
    s = summarize_part("odd", part, torch.zeros(1, 4))
    assert part.training  # left as it was found
    assert s.rows == [LayerRow("info", "_Info", (None,), 0), LayerRow("block.0", "Linear", (None, 3), 15),
                      LayerRow("block.1", "ReLU", (None, 3), 0), LayerRow("bias", "_Bias", (None,), 3),
                      LayerRow("unused", "Linear", (), 8, "not called in forward")]
    assert s.total_params == 26 == sum(p.numel() for p in part.parameters())
    # A column is at least as wide as its header: here the shapes are narrower than "Output shape".
    from cvae.core.summary import PartSummary

    small = PartSummary("p", (None, 3), [LayerRow("a", "ReLU", (None, 3), 0)])
    assert part_text(small).splitlines()[2:5] == ["Layer (type)   Output shape     Param #", "=" * 39,
                                                  "input (Input)  (None, 3)              0"]


def test_the_dummy_batch_is_made_on_the_models_device_whatever_the_default_device():
    m = CVAE(latent_dim=3, filters=(8, 16), dense=5)
    with torch.device("meta"):
        text = summary_text(m)
    assert text == SMALL_TEXT


class _Up(torch.nn.Module):
    """A transposed convolution cropped after it (as the model's "same" padding does), one that is not."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(1, 2, 3, stride=2)
        self.same = torch.nn.ConvTranspose2d(2, 2, 3, padding=1)
        self.act = torch.nn.ReLU()

    def forward(self, x):
        return self.act(self.same(self.up(x)[:, :, :-1, :-1]))


def test_a_crop_is_said_only_where_one_happens_in_height_by_width():
    from cvae.core.summary import summarize_part

    rows = summarize_part("up", _Up(), torch.zeros(1, 1, 4, 3)).rows
    assert [(r.layer, r.output_shape, r.note) for r in rows] == [
        ("up", (None, 2, 8, 6), "cropped from 9x7"), ("same", (None, 2, 8, 6), ""), ("act", (None, 2, 8, 6), "")]
