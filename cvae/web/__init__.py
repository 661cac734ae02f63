"""The explorer's browser side, shared by the app and the static site: ES modules (``*.js``),
their styles, and :func:`bundle`, which joins them into one file for either host."""

from cvae.web.bundle import WEB_DIR, bundle

__all__ = ["WEB_DIR", "bundle"]
