"""The core: the model, its data, its latent maths, checkpoints, the training film's data and
the shipped files. It knows nothing of figures or pages (no Plotly, no Pillow, no Streamlit);
``tests/test_layers.py`` holds it to that."""

__version__ = "0.2.0"
