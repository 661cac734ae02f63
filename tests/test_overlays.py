"""cvae.draw.overlays: the Plotly traces drawn over the latent scatter."""

from __future__ import annotations

import pytest

from cvae.core.latent import interpolate
from cvae.draw.overlays import ellipse_traces, path_trace, STAR_NAME, star_trace


def test_overlay_traces():
    s = star_trace([1.5, -2.0])
    assert s.name == STAR_NAME and s.marker.symbol == "star" and (s.x[0], s.y[0]) == (1.5, -2.0)
    p = path_trace(interpolate([0, 0], [1, 2], 5))
    assert len(p.x) == 5 and p.y[-1] == pytest.approx(2.0)
    e = ellipse_traces([0, 0], [0, 0])
    assert [t.name for t in e] == ["posterior 1σ (39%)", "posterior 2σ (86%)", "posterior mean"]
