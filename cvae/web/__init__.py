"""The explorer's browser side, shared by the app and the static site: ES modules (``*.js``),
their styles, and :func:`bundle`, which joins them into one file for either host; and the
sizes and words both hosts give the explorer."""

from cvae.web.bundle import WEB_DIR, bundle

DIGIT_PX = 280  # the decoder canvas: 28 px x 10, nearest neighbour
PAD_PX = 220
SLIDER_STEP = 0.01
HINT = ("Drag a slider or the pad, or hover and drag on the scatter: the digit is decoded in your browser as you "
        "move. Release to commit.")

__all__ = ["DIGIT_PX", "HINT", "PAD_PX", "SLIDER_STEP", "WEB_DIR", "bundle"]
