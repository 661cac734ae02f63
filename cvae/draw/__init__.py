"""The drawing layer: Plotly figures (``figures``, ``overlays``, ``film``) and Pillow renderings
(``images``: PNG and GIF; ``sketch``: a drawn digit made MNIST-like), in the colours of
``palette``. It reads the core; the core never reads it."""
