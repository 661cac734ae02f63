"""Every colour the figures, the GIFs and the browser's layers use, in one place."""

from __future__ import annotations

# Ten clearly different colours (Plotly's D3 / matplotlib tab10), one per digit 0-9.
DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
INK = "#111111"  # the current point, the film's "now" marker
LOSS_COLOR = DIGIT_COLORS[0]  # the training loss curve
VAL_LOSS_COLOR = DIGIT_COLORS[1]  # val_loss (the test set)
STAR_COLOR = "#ffb000"  # a drawn digit's z_mean
PATH_COLOR = "#e4007c"  # the morph path
POSTERIOR_COLOR = "#00a67e"  # q(z|x): ellipses and samples


def rgb(color: str) -> tuple[int, int, int]:
    """"#rrggbb" -> (r, g, b)."""
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
