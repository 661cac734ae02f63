"""Every colour the figures, the GIFs and the browser's layers use, in one place."""

from __future__ import annotations

# One colour and one marker symbol per digit 0-9, told apart by people who do not see colours
# alike: Okabe & Ito's colour-blind-safe set (seven colours and black) with Paul Tol's olive and
# wine for the last two; ten colours cannot all differ for every eye, so each digit also has its
# own shape (Plotly's symbol names; the static site draws the same shapes: cvae/web/marks.js).
DIGIT_COLORS = ("#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2",
                "#d55e00", "#cc79a7", "#000000", "#999933", "#882255")
DIGIT_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross",
                 "x", "triangle-down", "star", "hexagon", "pentagon")
INK = "#111111"  # the current point, the film's "now" marker
LOSS_COLOR = DIGIT_COLORS[0]  # the training loss curve
VAL_LOSS_COLOR = DIGIT_COLORS[1]  # val_loss (the test set)
STAR_COLOR = "#ffb000"  # a drawn digit's z_mean
PATH_COLOR = "#e4007c"  # the morph path
POSTERIOR_COLOR = "#00a67e"  # q(z|x): ellipses and samples
# The loss of one digit: its two terms and the importance-weighted -log p(x).
RECON_COLOR = "#0072b2"
KL_COLOR = "#e69f00"
NLL_COLOR = "#555555"
# The plane's layers under the scatter: the decoder's stretch (light to dark: the digits' colours
# stay readable on it), the prior's circles, the test digits' density contours.
STRETCH_SCALE = ((0.0, "#ffffff"), (0.5, "#c9c3e6"), (1.0, "#3f2a85"))
PRIOR_COLOR = "#333333"
DENSITY_COLOR = "#b8530b"


def rgb(color: str) -> tuple[int, int, int]:
    """"#rrggbb" -> (r, g, b)."""
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
