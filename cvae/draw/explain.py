"""The loss of one digit as figures: its stacked bar (784·BCE + KL = -ELBO, beside the
importance-weighted -log p(x)) and the test set's -ELBO histogram with the digit marked."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .palette import INK, KL_COLOR, NLL_COLOR, RECON_COLOR


def loss_bar_figure(recon: float, kl: float, neg_log_px: float, height: int = 190) -> go.Figure:
    """Two horizontal bars in nats: the -ELBO as its two terms stacked, and -log p(x); the gap
    between their ends is the bound's slack."""
    neg_elbo = recon + kl
    fig = go.Figure()
    fig.add_trace(go.Bar(y=["−ELBO"], x=[recon], orientation="h", name="784·BCE (reconstruction)",
                         marker_color=RECON_COLOR, text=[f"{recon:.1f}"], textposition="inside",
                         hovertemplate="reconstruction 784·BCE: %{x:.2f} nats<extra></extra>"))
    fig.add_trace(go.Bar(y=["−ELBO"], x=[kl], orientation="h", name="KL(q(z|x) ‖ N(0, I))",
                         marker_color=KL_COLOR, text=[f"{kl:.1f}"], textposition="outside",
                         hovertemplate="KL: %{x:.2f} nats<extra></extra>"))
    fig.add_trace(go.Bar(y=["−log p(x)"], x=[neg_log_px], orientation="h", name="−log p(x) (importance-weighted)",
                         marker_color=NLL_COLOR, text=[f"{neg_log_px:.1f}"], textposition="inside",
                         hovertemplate="−log p(x) ≈ %{x:.2f} nats<extra></extra>"))
    fig.add_annotation(x=neg_elbo, y=1, xref="x", yref="y", text=f"−ELBO {neg_elbo:.1f}", showarrow=False,
                       xanchor="left", yshift=18, font=dict(color=INK, size=12))
    fig.update_layout(barmode="stack", height=height, margin=dict(l=10, r=30, t=10, b=10),
                      xaxis_title="nats", legend=dict(orientation="h", y=-0.45, yanchor="top", x=0),
                      yaxis=dict(categoryorder="array", categoryarray=["−log p(x)", "−ELBO"]))
    return fig


def elbo_histogram_figure(counts, edges, value: float, harder: float, height: int = 220) -> go.Figure:
    """The test digits' -ELBO as bars, this digit as a vertical line with its standing."""
    counts, edges = np.asarray(counts), np.asarray(edges, dtype=np.float64)
    mids, widths = (edges[1:] + edges[:-1]) / 2, np.diff(edges)
    fig = go.Figure(go.Bar(x=mids, y=counts, width=widths, marker_color=RECON_COLOR, opacity=0.55,
                           name="test digits", hovertemplate="−ELBO %{x:.0f}: %{y} test digits<extra></extra>"))
    shown = float(np.clip(value, edges[0], edges[-1]))
    fig.add_vline(x=shown, line=dict(color=INK, width=2.5))
    fig.add_annotation(x=shown, y=1, yref="paper", text=f"this digit: {value:.1f} (harder than {harder:.0f}%)",
                       showarrow=False, xanchor="left" if shown < (edges[0] + edges[-1]) / 2 else "right",
                       yanchor="bottom", font=dict(color=INK, size=12))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=26, b=10), showlegend=False, bargap=0,
                      xaxis_title="−ELBO of each test digit (nats)", yaxis_title="digits")
    return fig
