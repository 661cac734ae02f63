"""The training film drawn: a Plotly animation (:func:`film_figure`), the live view of a run in
progress (:func:`live_figure`) and an animated GIF drawn with Pillow (:func:`film_gif`)."""

from __future__ import annotations

import io
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from PIL import Image, ImageDraw, ImageFont

from ..core.film import MANIFOLD_RANGE, Film, frame_caption
from .images import pixelate, png_data_uri
from .palette import DIGIT_COLORS, DIGIT_SYMBOLS, INK, LOSS_COLOR, VAL_LOSS_COLOR, rgb

# The shared view: axes and the loss curve


def _percentile_box(z: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) over z1, z2 holding the 0.5-99.5 percentile range of every frame's points;
    ``z``: (N frames, M points, D) or one frame (M, D). None when no point is finite."""
    a = np.asarray(z, np.float32)
    frames = a.reshape(-1, a.shape[-2], a.shape[-1])[..., :2]
    los, his = [], []
    for f in frames:
        f = f[np.isfinite(f).all(axis=1)]
        if len(f):
            los.append(np.percentile(f, 0.5, axis=0))
            his.append(np.percentile(f, 99.5, axis=0))
    return (np.min(los, axis=0), np.max(his, axis=0)) if los else None


def film_bounds(z: np.ndarray, minimum: float = 1.0) -> tuple[float, float, float, float]:
    """Axes (x lo, x hi, y lo, y hi) for a whole film, square: they hold every frame's points
    (0.5-99.5 percentiles, so a few stray points do not shrink the clouds), so they stay the
    same from frame to frame."""
    box = _percentile_box(z)
    if box is None:
        return (-minimum, minimum, -minimum, minimum)
    lo, hi = box
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 * 1.08, minimum)
    return (float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half))


def loss_series(film: Film) -> dict:
    """The loss curve's points: training loss (mean since the previous snapshot) and val_loss."""
    ok = ~np.isnan(film.loss)
    vok = ~np.isnan(film.val_loss)
    return {"x": film.epoch[ok].astype(float), "loss": film.loss[ok].astype(float),
            "val_x": film.epoch[vok].astype(float), "val_loss": film.val_loss[vok].astype(float)}


def _loss_range(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return (0.0, 1.0)
    # The first losses of a run are several times the later ones: a log axis shows both.
    lo, hi = float(v.min()), float(v.max())
    lo, hi = max(lo, 1e-3), max(hi, lo * 1.01)
    return (math.log10(lo) - 0.05, math.log10(hi) + 0.05)


def _scatter_traces(z, labels, scattergl: bool = False):
    cls = go.Scattergl if scattergl else go.Scatter
    traces = []
    for d in range(10):
        m = labels == d
        # float32: sent as base64 typed arrays, half the bytes of float64 (z is float16 anyway).
        traces.append(cls(x=z[m, 0].astype(np.float32), y=z[m, 1].astype(np.float32), mode="markers", name=str(d),
                          marker=dict(size=5, color=DIGIT_COLORS[d], symbol=DIGIT_SYMBOLS[d], opacity=0.75),
                          hovertemplate=f"digit {d}<br>z1=%{{x:.2f}}<br>z2=%{{y:.2f}}<extra></extra>"))
    return traces


def _manifold_image(img):
    scale = max(1, 224 // max(1, img.shape[0]))
    return go.Image(source=png_data_uri(pixelate(img, scale)), hoverinfo="skip", name="manifold")


# Where the loss and the manifold go: beside the scatter (replay, in the page's width) or under
# it (live, in the sidebar's narrow column).
_BESIDE = {"loss": (1, 2), "manifold": (2, 2), "manifold_x": "x3"}
_BELOW = {"loss": (2, 1), "manifold": (2, 2), "manifold_x": "x3"}


def _layout(fig, bounds, loss_rng, x_max, manifold: bool, height: int, box=None, where=_BESIDE):
    # constrain="domain": equal scales shrink the plot, never widen the fixed range.
    fig.update_xaxes(range=list(bounds[:2]), title_text="z1", row=1, col=1, zeroline=False, constrain="domain")
    fig.update_yaxes(range=list(bounds[2:]), title_text="z2", row=1, col=1, zeroline=False,
                     scaleanchor="x", scaleratio=1, constrain="domain")
    lr, lc = where["loss"]
    fig.update_xaxes(range=[0, x_max], title_text="epoch", row=lr, col=lc)
    fig.update_yaxes(range=list(loss_rng), type="log", row=lr, col=lc)
    if manifold:
        mr, mc = where["manifold"]
        fig.update_xaxes(visible=False, row=mr, col=mc)
        fig.update_yaxes(visible=False, row=mr, col=mc, scaleanchor=where["manifold_x"])
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), hovermode="closest",
                      legend=dict(title=dict(text="digit", side="left"), itemsizing="constant", orientation="h",
                                  entrywidth=30, x=0, xanchor="left", y=1.0, yanchor="bottom"),
                      uirevision="film", showlegend=True)
    return fig


def _subplots(manifold: bool, box, where=_BESIDE):
    box_txt = (f"decoded manifold, z1 {box[0]:g}..{box[1]:g}, z2 {box[2]:g}..{box[3]:g}" if box is not None
               else "decoded manifold")
    if where is _BELOW:
        return make_subplots(rows=2, cols=2, row_heights=[0.68, 0.32], specs=[[{"colspan": 2}, None], [{}, {}]],
                             horizontal_spacing=0.12, vertical_spacing=0.12,
                             subplot_titles=("", "loss (log)", "manifold" if manifold else ""))
    if manifold:
        # The scatter's title row holds the digit legend instead.
        return make_subplots(rows=2, cols=2, column_widths=[0.6, 0.4], row_heights=[0.38, 0.62],
                             specs=[[{"rowspan": 2}, {}], [None, {}]], horizontal_spacing=0.08,
                             vertical_spacing=0.16, subplot_titles=("", "loss (-ELBO per image, log)", box_txt))
    return make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.08,
                         subplot_titles=("", "loss (-ELBO per image, log)"))


def film_figure(film: Film, *, height: int = 620, frame_ms: int = 600, transition_ms: int = 450):
    """The replay: the subset's scatter, the loss curve with the frame marked and the small
    manifold, as Plotly animation frames with smooth transitions, a play/pause button and a
    slider over the snapshots. Every frame uses the same axes (:func:`film_bounds`)."""
    n = len(film)
    labels = film.labels.astype(np.int64)
    has_m = film.manifold.size > 0
    box = tuple(float(v) for v in film.manifold_range)
    fig = _subplots(has_m, box)
    bounds = film_bounds(film.z)
    series = loss_series(film)
    for t in _scatter_traces(film.z[0].astype(np.float32), labels):
        fig.add_trace(t, row=1, col=1)
    fig.add_trace(go.Scatter(x=series["x"], y=series["loss"], mode="lines", name="loss", showlegend=False,
                             line=dict(color=LOSS_COLOR), hovertemplate="epoch %{x:.2f}<br>loss %{y:.1f}<extra></extra>"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=series["val_x"], y=series["val_loss"], mode="markers", name="val_loss",
                             showlegend=False, marker=dict(color=VAL_LOSS_COLOR, size=7),
                             hovertemplate="epoch %{x:.2f}<br>val_loss %{y:.1f}<extra></extra>"), row=1, col=2)

    def marker(i):
        y = film.loss[i] if not np.isnan(film.loss[i]) else film.val_loss[i]
        if np.isnan(y):  # the start: no loss yet; mark the epoch axis at the curve's first value
            y = series["loss"][0] if len(series["loss"]) else 1.0
        return go.Scatter(x=[float(film.epoch[i])], y=[float(y)], mode="markers", name="now", showlegend=False,
                          marker=dict(color=INK, size=12, symbol="circle-open", line=dict(width=3)),
                          hoverinfo="skip")

    fig.add_trace(marker(0), row=1, col=2)
    moving = list(range(10)) + [12]  # the traces each frame replaces
    if has_m:
        fig.add_trace(_manifold_image(film.manifold[0]), row=2, col=2)
        moving.append(13)
    frames = []
    for i in range(n):
        data = _scatter_traces(film.z[i].astype(np.float32), labels) + [marker(i)]
        if has_m:
            data.append(_manifold_image(film.manifold[i]))
        frames.append(go.Frame(data=data, traces=moving, name=str(i),
                               layout=dict(title_text=frame_caption(film.snapshot(i)))))
    fig.frames = frames
    anim = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=transition_ms,
                                                                           easing="cubic-in-out"),
                fromcurrent=True, mode="immediate")
    fig.update_layout(
        title=dict(text=frame_caption(film.snapshot(0)), x=0.01, font=dict(size=15)),
        # Under the z1 axis title (which sits about 40 px below the plot): the play button and
        # the slider start 60 px below the plot.
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="top",
                          pad=dict(t=60, r=10), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, anim]),
                                   dict(label="❚❚ Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False),
                                                           transition=dict(duration=0), mode="immediate")])])],
        sliders=[dict(active=0, x=0.2, len=0.8, y=0.0, yanchor="top", pad=dict(t=60),
                      currentvalue=dict(visible=False),  # the title names the frame
                      transition=dict(duration=transition_ms, easing="cubic-in-out"),
                      steps=[dict(label=f"{film.epoch[i]:.2f}", method="animate",
                                  args=[[str(i)], dict(anim, frame=dict(duration=transition_ms, redraw=True))])
                             for i in range(n)])],
    )
    losses = np.concatenate([series["loss"], series["val_loss"]])
    _layout(fig, bounds, _loss_range(losses), max(1.0, float(film.epoch.max())) * 1.02, has_m, height, box)
    # The digit legend in the scatter's column only, under the frame's title: a row across the
    # whole width ran over the loss panel's title.
    fig.update_layout(margin=dict(l=10, r=10, t=110, b=130),
                      legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", entrywidth=0.05,
                                  entrywidthmode="fraction", font=dict(size=11)))
    return fig


LIVE_MIN_BOUNDS = 4.0  # the live view's axes: at least the prior's +-4 box, grown (never shrunk) to fit


def live_bounds(snapshots: list[dict]) -> tuple[float, float, float, float]:
    """Axes for a run in progress, centred on 0: the prior's +-4 box, grown in whole units
    (never shrunk) only when the clouds of a snapshot so far leave it."""
    box = _percentile_box(np.stack([np.asarray(s["z"], np.float32) for s in snapshots]))
    reach = 0.0 if box is None else float(max(np.abs(box[0]).max(), np.abs(box[1]).max()))
    half = max(LIVE_MIN_BOUNDS, math.ceil(reach * 1.05))
    return (-half, half, -half, half)


def live_figure(snapshots: list[dict], *, height: int = 560):
    """One figure of a run in progress: the latest snapshot's scatter (same axes from frame to
    frame), the loss so far and the small manifold decoded at that moment."""
    last = snapshots[-1]
    z = np.asarray(last["z"], np.float32)
    labels = np.asarray(last["labels"]).astype(np.int64)
    man = last.get("manifold")
    box = tuple(last.get("manifold_range") or MANIFOLD_RANGE)
    fig = _subplots(man is not None, box, _BELOW)
    for t in _scatter_traces(z, labels, scattergl=True):
        fig.add_trace(t, row=1, col=1)
    xs = [s["epoch"] for s in snapshots if s.get("loss") is not None]
    ys = [s["loss"] for s in snapshots if s.get("loss") is not None]
    vx = [s["epoch"] for s in snapshots if s.get("val_loss") is not None]
    vy = [s["val_loss"] for s in snapshots if s.get("val_loss") is not None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="loss", showlegend=False,
                             line=dict(color=LOSS_COLOR), marker=dict(size=5)), row=2, col=1)
    fig.add_trace(go.Scatter(x=vx, y=vy, mode="markers", name="val_loss", showlegend=False,
                             marker=dict(color=VAL_LOSS_COLOR, size=7)), row=2, col=1)
    if man is not None:
        fig.add_trace(_manifold_image(np.asarray(man, np.uint8)), row=2, col=2)
    epochs = max(float(last.get("epochs") or 1), float(last["epoch"]))
    _layout(fig, live_bounds(snapshots), _loss_range(np.array(ys + vy, float)), epochs, man is not None, height, box,
            _BELOW)
    # Narrow (the sidebar): the caption under the chart names the frame; a compact legend.
    fig.update_layout(uirevision="live-film", margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(title=None, font=dict(size=10), entrywidth=26, orientation="h", x=0, y=1.0,
                                  yanchor="bottom"))
    return fig


# -- the GIF, drawn with Pillow (no browser, no Plotly image export) --

GIF_SIZE = (720, 440)
_PANEL = 400  # the scatter's square, pixels
_BG = (255, 255, 255)
_INK = (40, 40, 40)
_FAINT = (200, 200, 200)
_LOSS = rgb(LOSS_COLOR)
_VAL = rgb(VAL_LOSS_COLOR)


def _palette_image():
    """One fixed palette for every frame (digit colours, greys, the curve colours), so colours
    do not flicker from frame to frame."""
    cols = [_BG, _INK, _FAINT, _LOSS, _VAL] + [rgb(c) for c in DIGIT_COLORS]
    # Greys for the manifold, every 4th level, none right beside a digit's grey (digit 7's
    # #7f7f7f): Pillow matches colours approximately and would take the neighbour.
    cols += [(g, g, g) for g in range(0, 256, 4) if all(abs(g - c[0]) > 4 or len(set(c)) > 1 for c in cols)]
    pal = Image.new("P", (1, 1))
    pal.putpalette([v for c in cols for v in c])
    return pal


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def render_frame(film: Film, i: int, bounds=None):
    """Frame ``i`` as an RGB Pillow image: scatter (left), loss curve and manifold (right)."""
    bounds = bounds or film_bounds(film.z)
    W, H = GIF_SIZE
    img = Image.new("RGB", (W, H), _BG)
    d = ImageDraw.Draw(img)
    small, big = _font(12), _font(15)
    # The frame number makes every frame differ (Pillow merges identical neighbours).
    d.text((10, 8), frame_caption(film.snapshot(i)), fill=_INK, font=big)
    d.text((W - 10, 8), f"{i + 1}/{len(film)}", fill=_INK, font=small, anchor="ra")
    x0, y0, side = 10, 32, _PANEL
    d.rectangle([x0, y0, x0 + side, y0 + side], outline=_FAINT)
    z = film.z[i].astype(np.float32)
    px = x0 + (z[:, 0] - bounds[0]) / (bounds[1] - bounds[0]) * side
    py = y0 + side - (z[:, 1] - bounds[2]) / (bounds[3] - bounds[2]) * side
    inside = (px >= x0) & (px <= x0 + side) & (py >= y0) & (py <= y0 + side)
    cols = [rgb(c) for c in DIGIT_COLORS]
    lab = film.labels
    for k in np.flatnonzero(inside):  # in test-set order: no digit is always on top
        d.ellipse([px[k] - 1.6, py[k] - 1.6, px[k] + 1.6, py[k] + 1.6], fill=cols[lab[k]])
    for dg in range(10):  # legend
        ly = y0 + 4 + dg * 15
        d.ellipse([x0 + side - 30, ly + 3, x0 + side - 22, ly + 11], fill=cols[dg])
        d.text((x0 + side - 16, ly), str(dg), fill=_INK, font=small)
    # loss curve (log scale), top right
    lx0, ly0, lw, lh = 430, 32, 280, 120
    d.rectangle([lx0, ly0, lx0 + lw, ly0 + lh], outline=_FAINT)
    d.text((lx0 + 4, ly0 + 2), "loss (log)", fill=_INK, font=small)
    s = loss_series(film)
    lo, hi = _loss_range(np.concatenate([s["loss"], s["val_loss"]]))
    x_max = max(1.0, float(film.epoch.max()))

    def to_px(ep, v):
        return (lx0 + ep / x_max * lw, ly0 + lh - (math.log10(max(v, 1e-3)) - lo) / (hi - lo) * lh)

    pts = [to_px(e, v) for e, v in zip(s["x"], s["loss"])]
    if len(pts) > 1:
        d.line(pts, fill=_LOSS, width=2)
    for e, v in zip(s["val_x"], s["val_loss"]):
        cx, cy = to_px(e, v)
        d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=_VAL)
    now_x = lx0 + float(film.epoch[i]) / x_max * lw
    d.line([(now_x, ly0), (now_x, ly0 + lh)], fill=_INK, width=1)
    d.text((lx0 + lw - 4, ly0 + 2), f"{10 ** hi:.0f}", fill=_INK, font=small, anchor="ra")
    d.text((lx0 + lw - 4, ly0 + lh - 2), f"{10 ** lo:.0f}", fill=_INK, font=small, anchor="rd")
    d.text((lx0, ly0 + lh + 2), "epoch 0", fill=_INK, font=small)
    d.text((lx0 + lw, ly0 + lh + 2), f"{x_max:g}", fill=_INK, font=small, anchor="ra")
    # manifold, bottom right
    if film.manifold.size:
        m = film.manifold[i]
        side_m = min(240, H - (ly0 + lh + 38))
        mimg = Image.fromarray(m, mode="L").resize((side_m, side_m), Image.NEAREST).convert("RGB")
        img.paste(mimg, (lx0 + (lw - side_m) // 2, ly0 + lh + 34))
        d.text((lx0 + 4, ly0 + lh + 18), "decoded manifold", fill=_INK, font=small)
    return img


def film_gif(film: Film, *, frame_ms: int = 500, last_ms: int = 2000) -> bytes:
    """The film as an animated GIF: one frame per snapshot, same axes throughout, looping."""
    bounds = film_bounds(film.z)
    pal = _palette_image()
    frames = [render_frame(film, i, bounds).quantize(palette=pal, dither=Image.Dither.NONE)
              for i in range(len(film))]
    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [last_ms]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=False, disposal=1)
    return buf.getvalue()

