"""Plotly figures for the explorer (no Streamlit here), and small image helpers.

Every figure builder that shows the latent plane takes ``extra_traces``: any Plotly
traces (a star, a path, ellipses...) are drawn on top, in the same z1/z2 coordinates,
so other parts of the app can add their own layers without touching this file.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from .latent import to_uint8

# Ten clearly different colours (Plotly's D3 / matplotlib tab10), one per digit.
DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKER_COLOR = "#111111"
MARKER_NAME = "current point"


def pixelate(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a 2-D image ([0,1] floats or uint8) to uint8.

    Done on the server so the browser never smooths a 28x28 digit into a blur.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    scale = max(1, int(scale))
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def png_data_uri(image: np.ndarray) -> str:
    """A 2-D uint8 (or [0,1] float) image as a data:image/png URI (the last few are memoised)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    return _png_uri(img.tobytes(), img.shape)


@functools.lru_cache(maxsize=8)
def _png_uri(raw: bytes, shape: tuple) -> str:
    # The manifold's PNG is re-sent on every slider move; encoding it is ~0.1 s, hashing ~0.1 ms.
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.frombuffer(raw, np.uint8).reshape(shape)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def latent_bounds(z_mean: np.ndarray, margin: float = 0.1, step: float = 0.5) -> tuple[float, float, float, float]:
    """Slider ranges (z1 lo, z1 hi, z2 lo, z2 hi) covering every encoding with a margin.

    The margin is a fraction of each axis' span; ends are rounded outwards to ``step``.
    """
    z = np.asarray(z_mean, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or len(z) == 0 or not np.isfinite(z[:, :2]).all():
        return (-4.0, 4.0, -4.0, 4.0)
    out = []
    for k in range(2):
        lo, hi = float(z[:, k].min()), float(z[:, k].max())
        pad = max(margin * (hi - lo), step / 2)
        out += [float(np.floor((lo - pad) / step) * step), float(np.ceil((hi + pad) / step) * step)]
    return tuple(out)


def current_point_traces(z1: float, z2: float) -> list[go.Scatter]:
    """A ring with a dot in it at (z1, z2): visible over any colour of digit."""
    ring = go.Scatter(x=[z1], y=[z2], mode="markers", name=MARKER_NAME, showlegend=True,
                      marker=dict(symbol="circle-open", size=22, color=MARKER_COLOR, line=dict(width=3)),
                      hovertemplate="current point<br>z1=%{x:.3f}<br>z2=%{y:.3f}<extra></extra>")
    dot = go.Scatter(x=[z1], y=[z2], mode="markers", showlegend=False, hoverinfo="skip",
                     marker=dict(symbol="circle", size=6, color=MARKER_COLOR))
    return [ring, dot]


def latent_scatter(z_mean: np.ndarray, labels: np.ndarray, current: Sequence[float] | None = None, *,
                   extra_traces: Iterable | None = None, height: int = 560,
                   title: str | None = None) -> go.Figure:
    """WebGL scatter of encodings, one trace per digit (legend toggles digits).

    Each point's ``customdata`` is its row index in ``z_mean`` (the test-set index), so a
    selection maps back to the digit. ``current`` adds a ring and crosshair at (z1, z2).
    ``uirevision`` keeps the user's zoom and legend choices while the marker moves.
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
            marker=dict(size=4, color=DIGIT_COLORS[d], opacity=0.7),
            hovertemplate=f"digit {d}<br>test #%{{customdata}}<br>z1=%{{x:.2f}}<br>z2=%{{y:.2f}}<extra></extra>",
        ))
    if current is not None:
        z1, z2 = float(current[0]), float(current[1])
        for t in current_point_traces(z1, z2):
            fig.add_trace(t)
        line = dict(color=MARKER_COLOR, width=1, dash="dot")
        fig.add_hline(y=z2, line=line, opacity=0.6)
        fig.add_vline(x=z1, line=line, opacity=0.6)
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


def grid_pixel(z1: float, z2: float, n: int, z1_range, z2_range, cell: int = 28) -> tuple[float, float] | None:
    """Where (z1, z2) falls on the manifold image, in its pixels; None when outside the ranges."""
    (a, b), (c, d) = z1_range, z2_range
    if not (a <= z1 <= b and c <= z2 <= d):
        return None
    if n == 1:
        return cell / 2, cell / 2
    fx = (z1 - a) / (b - a) * (n - 1)  # 0 at the first column centre
    fy = (d - z2) / (d - c) * (n - 1)  # 0 at the top row centre (highest z2)
    return (fx + 0.5) * cell, (fy + 0.5) * cell


def manifold_figure(grid: np.ndarray, n: int, z1_range, z2_range, current: Sequence[float] | None = None, *,
                    extra_traces: Iterable | None = None, height: int = 620) -> go.Figure:
    """The n x n grid of decoded digits as one crisp image, axes labelled in z1/z2.

    ``grid`` is decode_grid's (n*28, n*28) image. The current point is marked when it lies
    inside the ranges. ``extra_traces`` must use the image's pixel coordinates
    (see :func:`grid_pixel`).
    """
    img = np.asarray(grid)
    side = img.shape[0]
    cell = side // n
    fig = go.Figure(go.Image(source=png_data_uri(img), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    if current is not None:
        px = grid_pixel(float(current[0]), float(current[1]), n, z1_range, z2_range, cell)
        if px is not None:
            fig.add_trace(go.Scatter(
                x=[px[0]], y=[px[1]], mode="markers", name=MARKER_NAME,
                marker=dict(symbol="circle-open", size=max(16, int(560 / n)), color="#ff3b30", line=dict(width=3)),
                hovertemplate=f"current point<br>z1={current[0]:.3f}<br>z2={current[1]:.3f}<extra></extra>"))
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
                                 line=dict(color="#1f77b4", width=1), opacity=0.35))
    if history:
        ep = [h["epoch"] for h in history]
        fig.add_trace(go.Scatter(x=ep, y=[h["loss"] for h in history], mode="lines+markers", name="loss",
                                 line=dict(color="#1f77b4")))
        fig.add_trace(go.Scatter(x=ep, y=[h["val_loss"] for h in history], mode="lines+markers", name="val_loss",
                                 line=dict(color="#ff7f0e")))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
                      xaxis_title="epoch", yaxis_title="-ELBO per image (784*BCE + KL)",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig
