"""The explorer's Plotly figures: the encodings' scatter, the manifold, the training curves.

The figures that show the latent plane take ``extra_traces``: any Plotly traces (a star, a
path, ellipses...) drawn on top in the same coordinates, so other parts of the app add their
own layers without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from .images import png_data_uri
from .palette import DIGIT_COLORS, DIGIT_SYMBOLS, LOSS_COLOR, VAL_LOSS_COLOR


def latent_scatter(z_mean: np.ndarray, labels: np.ndarray, *, extra_traces: Iterable | None = None,
                   height: int = 560, title: str | None = None) -> go.Figure:
    """WebGL scatter of encodings: x is z_mean's first column, y its second; one trace per
    digit (the legend toggles digits).

    Each point's ``customdata`` is its row index in ``z_mean`` (the test-set index), so a
    selection maps back to the digit. ``uirevision`` keeps the user's zoom and legend choices
    across reruns.
    """
    z = np.asarray(z_mean, dtype=np.float32)
    y = np.asarray(labels).astype(np.int64)
    if z.ndim != 2 or z.shape[1] < 2 or len(z) != len(y):
        raise ValueError(f"need z_mean (N, 2) and N labels; got {z.shape} and {y.shape}")
    fig = go.Figure()
    idx = np.arange(len(z))
    for d in range(10):
        m = y == d
        if not m.any():
            continue
        fig.add_trace(go.Scattergl(
            x=z[m, 0], y=z[m, 1], customdata=idx[m], mode="markers", name=str(d),
            marker=dict(size=5, color=DIGIT_COLORS[d], symbol=DIGIT_SYMBOLS[d], opacity=0.75),
            hovertemplate=f"digit {d}<br>test #%{{customdata}}<br>z1=%{{x:.2f}}<br>z2=%{{y:.2f}}<extra></extra>",
        ))
    for t in extra_traces or ():
        fig.add_trace(t)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
        legend=dict(title="digit", itemsizing="constant"),
        xaxis_title="z1", yaxis_title="z2", uirevision="latent-scatter", dragmode="pan",
        clickmode="event+select", hovermode="closest",
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def manifold_figure(grid: np.ndarray, n: int, z1_range, z2_range, *, extra_traces: Iterable | None = None,
                    height: int = 620) -> go.Figure:
    """The n x n grid of decoded digits as one crisp image, axes labelled in z1/z2.

    ``grid`` is decode_grid's (n*28, n*28) image. ``extra_traces`` use the image's pixel
    coordinates (:func:`cvae.core.latent.grid_pixel`).
    """
    img = np.asarray(grid)
    side = img.shape[0]
    cell = side // n
    fig = go.Figure(go.Image(source=png_data_uri(img), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    for t in extra_traces or ():
        fig.add_trace(t)
    k = min(n, 7)
    ticks = np.unique(np.linspace(0, n - 1, k).round().astype(int))
    gx = np.linspace(z1_range[0], z1_range[1], n)
    gy = np.linspace(z2_range[0], z2_range[1], n)[::-1]
    fig.update_xaxes(title="z1", tickvals=[(i + 0.5) * cell for i in ticks], ticktext=[f"{gx[i]:.2f}" for i in ticks],
                     showgrid=False, zeroline=False, range=[0, side], constrain="domain")
    fig.update_yaxes(title="z2", tickvals=[(i + 0.5) * cell for i in ticks], ticktext=[f"{gy[i]:.2f}" for i in ticks],
                     showgrid=False, zeroline=False, range=[side, 0], scaleanchor="x", scaleratio=1,
                     constrain="domain")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      uirevision="manifold", dragmode="pan")
    return fig


def history_figure(history: Sequence[dict], *, live_steps: Sequence[tuple[float, float]] = (),
                   height: int = 300, title: str | None = None) -> go.Figure:
    """Training curves: loss and val_loss per epoch (and, live, the per-step loss).

    ``live_steps`` are (fractional epoch, loss) pairs shown faintly while a run is going.
    """
    fig = go.Figure()
    if live_steps:
        xs, ys = zip(*live_steps)
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines", name="loss (per step)",
                                 line=dict(color=LOSS_COLOR, width=1), opacity=0.35))
    if history:
        ep = [h["epoch"] for h in history]
        fig.add_trace(go.Scatter(x=ep, y=[h["loss"] for h in history], mode="lines+markers", name="loss",
                                 line=dict(color=LOSS_COLOR)))
        fig.add_trace(go.Scatter(x=ep, y=[h["val_loss"] for h in history], mode="lines+markers", name="val_loss",
                                 line=dict(color=VAL_LOSS_COLOR)))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
                      xaxis_title="epoch", yaxis_title="-ELBO per image (784*BCE + KL)",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig
