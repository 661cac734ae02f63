"""Streamlit UI pieces of the CVAE Latent Explorer (the app imports these; cvae never does)."""
