"""Plotly traces that the feature panels add on top of the latent scatter
(``cvae.draw.figures.latent_scatter(..., extra_traces=...)``): the drawn digit's star, a morph
path, a posterior's ellipses and samples. Pure functions, no Streamlit."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..core.posterior import ellipse, mass_within
from .palette import PATH_COLOR, POSTERIOR_COLOR, STAR_COLOR

STAR_NAME = "your drawing"
PATH_NAME = "morph path"


def star_trace(z, name: str = STAR_NAME) -> go.Scatter:
    """A large gold star with a dark outline at the drawn digit's z_mean."""
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    return go.Scatter(x=[z[0]], y=[z[1]], mode="markers", name=name,
                      marker=dict(symbol="star", size=24, color=STAR_COLOR, line=dict(color="#222222", width=1.5)),
                      hovertemplate=f"{name}<br>z1=%{{x:.3f}}<br>z2=%{{y:.3f}}<extra></extra>")


def path_trace(path, name: str = PATH_NAME) -> go.Scatter:
    """The straight morph path: a line with a marker at each decoded step, ends labelled."""
    p = np.asarray(path, dtype=np.float64)
    n = len(p)
    text = ["A"] + [""] * (n - 2) + ["B"] if n >= 2 else ["A"]
    return go.Scatter(x=p[:, 0], y=p[:, 1], mode="lines+markers+text", name=name, text=text,
                      textposition="top center", textfont=dict(color=PATH_COLOR, size=14),
                      line=dict(color=PATH_COLOR, width=2.5),
                      marker=dict(size=[11] + [6] * (n - 2) + [11] if n >= 2 else [11], color=PATH_COLOR,
                                  line=dict(color="white", width=1)),
                      customdata=np.arange(n),
                      hovertemplate="morph step %{customdata}<br>z1=%{x:.3f}<br>z2=%{y:.3f}<extra></extra>")


def ellipse_traces(z_mean, z_log_var, ks=(1.0, 2.0), name: str = "posterior") -> list[go.Scatter]:
    """Outlines of the k-sigma ellipses of q(z|x) and a cross at its mean."""
    m = np.asarray(z_mean, dtype=np.float64).reshape(-1)
    out = []
    for k, dash in zip(ks, ("solid", "dash", "dot", "dashdot")):
        e = ellipse(z_mean, z_log_var, k)
        label = f"{name} {k:g}σ ({mass_within(k):.0%})"
        out.append(go.Scatter(x=e[:, 0], y=e[:, 1], mode="lines", name=label,
                              line=dict(color=POSTERIOR_COLOR, width=2, dash=dash),
                              hovertemplate=f"{label}<extra></extra>"))
    out.append(go.Scatter(x=[m[0]], y=[m[1]], mode="markers", name=f"{name} mean",
                          marker=dict(symbol="x-thin", size=14, color=POSTERIOR_COLOR, line=dict(width=3)),
                          hovertemplate=f"{name} mean<br>z1=%{{x:.3f}}<br>z2=%{{y:.3f}}<extra></extra>"))
    return out


def samples_trace(samples, name: str = "posterior samples") -> go.Scatter:
    s = np.asarray(samples, dtype=np.float64)
    return go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", name=name, customdata=np.arange(len(s)),
                      marker=dict(symbol="diamond", size=8, color=POSTERIOR_COLOR, line=dict(color="white", width=1)),
                      hovertemplate="sample %{customdata}<br>z1=%{x:.3f}<br>z2=%{y:.3f}<extra></extra>")
