"""Plotly traces that the feature panels add on top of the latent scatter
(``cvae.draw.figures.latent_scatter(..., extra_traces=...)``): the drawn digit's star, a morph
path, a posterior's ellipses and samples; and the plane's layers under it (``under_traces``):
the decoder's stretch, the prior's circles, the test digits' density. Pure functions, no
Streamlit."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..core.geometry import Density, prior_circle
from ..core.posterior import ellipse, mass_within
from .palette import (DENSITY_COLOR, PATH_COLOR, POSTERIOR_COLOR, PRIOR_COLOR, STAR_COLOR, STRETCH_SCALE)

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


STRETCH_NAME = "decoder stretch"
PRIOR_NAME = "prior N(0, I)"
DENSITY_NAME = "test digits' density"


def stretch_trace(g1, g2, magnification, name: str = STRETCH_NAME) -> go.Heatmap:
    """The decoder's magnification sqrt(det(JᵀJ)) as a heatmap on a log scale (it spans orders
    of magnitude), smoothed between grid points, with no hover of its own (the scatter's hover
    and clicks go through to the digits)."""
    m = np.asarray(magnification, dtype=np.float64)
    logm = np.log10(np.maximum(m, 1e-6)).astype(np.float32)
    lo, hi = np.percentile(logm, [2, 99.5])
    ticks = np.arange(np.floor(lo), np.ceil(hi) + 1)
    return go.Heatmap(x=np.asarray(g1, np.float32), y=np.asarray(g2, np.float32), z=logm, name=name,
                      colorscale=[list(c) for c in STRETCH_SCALE], zmin=float(lo), zmax=float(hi),
                      zsmooth="best", hoverinfo="skip", opacity=0.85,
                      colorbar=dict(title=dict(text="stretch", side="right"), thickness=12, len=0.6,
                                    tickvals=ticks.tolist(), ticktext=[f"{10 ** t:g}" for t in ticks]))


def prior_traces(ks=(1.0, 2.0, 3.0), name: str = PRIOR_NAME) -> list[go.Scatter]:
    """The prior's k-sigma circles (one legend entry for all)."""
    out = []
    for n, (k, dash) in enumerate(zip(ks, ("solid", "dash", "dot", "dashdot"))):
        c = prior_circle(k)
        label = f"{name} {k:g}σ ({mass_within(k):.0%})"
        out.append(go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines", name=name, legendgroup=name, showlegend=n == 0,
                              line=dict(color=PRIOR_COLOR, width=1.5, dash=dash), hoverinfo="skip",
                              meta=label))
    return out


def density_traces(density: Density, g1, g2, name: str = DENSITY_NAME) -> list[go.Contour]:
    """Contours of the encoded test digits' density at the levels holding 99%, 90% and 50% of
    them (``density.levels``: the 1st, 10th and 50th percentiles of their own densities)."""
    grid = density.grid(g1, g2).astype(np.float32)
    out = []
    for n, (p, width) in enumerate(sorted(((p, w) for p, w in zip(sorted(density.levels), (1.2, 1.8, 2.4))))):
        level = density.levels[p]
        out.append(go.Contour(x=np.asarray(g1, np.float32), y=np.asarray(g2, np.float32), z=grid,
                              name=name, legendgroup=name, showlegend=n == 0, showscale=False,
                              contours=dict(coloring="lines", start=level, end=level, size=1.0),
                              line=dict(color=DENSITY_COLOR, width=width), hoverinfo="skip",
                              meta=f"{100 - p:g}% of test digits inside"))
    return out
