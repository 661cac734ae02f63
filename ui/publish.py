"""The sidebar's "Publish this explorer": the model's static site (``python -m cvae site``) as a
ZIP, for a static host or a class's laptops, with no Python and no server."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cvae.core.data import has_mnist
from cvae.core.shipped import SHIPPED_CHECKPOINT
from cvae.site import site_files, site_zip

PUBLISH_KEY = "publish_open"


# Why: the site takes a second or more to build (the test digits read and compressed) and
# depends only on the checkpoint file (its stamp) and the data folder: built on the first
# click, once per process for each model, whoever clicks.
@st.cache_resource(show_spinner="Writing the site…", max_entries=4)
def site_zip_for(path: str, stamp: tuple, data: str) -> bytes:
    return site_zip(site_files(path, data, hooks=False), folder=f"cvae-explorer-{Path(path).stem}")


def publish_ui(path: str, stamp: tuple, data: str) -> None:
    with st.expander("Publish this explorer", key=PUBLISH_KEY, icon=":material/public:"):
        st.caption("This explorer as a static site: the decoder, the encodings and the page in one folder of "
                   "about 1.5 MB. Put it on any static host, or hand the ZIP round: anyone can explore this "
                   "model in a browser, on a laptop or a phone, with no Python and no server "
                   "(`python -m cvae site` writes the same folder).")
        shipped = Path(path).resolve() == SHIPPED_CHECKPOINT.resolve()
        if not shipped and not has_mnist(data):
            st.info("A site of this model needs the MNIST test set to encode its digits; it is not here.")
            return
        if not has_mnist(data):
            st.caption("Without MNIST here, the site shows no original beside a clicked digit's reconstruction.")
        st.download_button("Download the site (ZIP)", data=lambda: site_zip_for(path, stamp, data),
                           file_name=f"cvae-explorer-{Path(path).stem}.zip", mime="application/zip",
                           on_click="ignore", icon=":material/download:", key="publish_zip")
