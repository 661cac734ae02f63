"""The digits' palette: one source (cvae/draw/palette.py) for the app's scatter, the film and the
static site; each digit its own colour and its own marker shape, every shape drawn by the
site's canvas (cvae/web/marks.js) as Plotly draws it in the app."""

from __future__ import annotations

import json
import re

import numpy as np

from cvae.draw.figures import latent_scatter
from cvae.draw.palette import DIGIT_COLORS, DIGIT_SYMBOLS
from cvae.web import WEB_DIR

# Okabe & Ito (2008), "Color Universal Design": the colour-blind-safe set the palette draws on.
OKABE_ITO = {"#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000"}


def test_each_digit_has_its_own_colour_and_shape():
    assert len(set(DIGIT_COLORS)) == 10 and len(set(DIGIT_SYMBOLS)) == 10
    assert OKABE_ITO <= set(DIGIT_COLORS)
    fig = latent_scatter(np.random.default_rng(0).normal(size=(200, 2)), np.arange(200) % 10)
    for t in fig.data:
        d = int(t.name)
        assert (t.marker.color, t.marker.symbol) == (DIGIT_COLORS[d], DIGIT_SYMBOLS[d])


def test_the_sites_canvas_draws_every_shape():
    src = (WEB_DIR / "marks.js").read_text()
    drawn = set(re.findall(r'case "([a-z-]+)"', src)) | {"circle"}  # circle: the default
    assert set(DIGIT_SYMBOLS) <= drawn, set(DIGIT_SYMBOLS) - drawn


def test_the_site_sends_the_palette_and_the_shapes(tmp_path, monkeypatch):
    from cvae.core.shipped import SHIPPED_CHECKPOINT
    from cvae.site import site_files

    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "no-mnist"))
    data = site_files(SHIPPED_CHECKPOINT, tmp_path / "no-mnist")["data.js"].decode()
    payload = json.loads(data.split("globalThis.CVAE_SITE = ", 1)[1].rstrip().rstrip(";"))
    assert payload["palette"] == list(DIGIT_COLORS) and payload["symbols"] == list(DIGIT_SYMBOLS)
