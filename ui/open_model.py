"""The sidebar's "Open a model": a person's own model file, converted, checked, saved in the runs
folder under a name they choose, and opened (cvae.core.importer does the reading)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import streamlit as st

from cvae.core.checkpoint import CheckpointError
from cvae.core.importer import MAX_IMPORT_MB, import_model

OPEN_KEY = "open_model_open"
UPLOAD_KEY = "open_model_file"
NAME_KEY = "open_model_name"
NAME_CHARS = 60


def safe_name(text: str) -> str:
    """A file name (without ".pt") made of the letters (of any script), digits, "-", "_" and "."
    of ``text`` (NFKC-normalised, so full-width and other look-alike characters become plain ones);
    any other run of characters (a "/", a "\\", a space, a control character) becomes "-", dots
    never follow each other, and no name starts or ends with ".", "-" or "_". "" when nothing is left."""
    text = unicodedata.normalize("NFKC", str(text)).strip()
    text = text.removesuffix(".pt")
    name = re.sub(r"[^\w.-]+", "-", text)
    name = re.sub(r"[-.]*-[-.]*", "-", re.sub(r"\.{2,}", ".", name)).strip(".-_")
    return name[:NAME_CHARS].rstrip(".-_")


def run_path(runs: Path, name: str) -> Path:
    """Where a model named ``name`` goes: ``runs/<safe name>.pt``, never anywhere else."""
    safe = safe_name(name)
    if not safe:
        raise ValueError("Give the model a name with at least one letter or digit.")
    path = Path(runs) / f"{safe}.pt"
    if path.resolve().parent != Path(runs).resolve():
        raise ValueError(f"“{name}” cannot be used as a model's name.")
    return path


def suggested_name(file_name: str) -> str:
    """The name offered for an uploaded file: its name up to the first dot ("vae" for
    "vae.weights.h5")."""
    return safe_name(Path(file_name).name.split(".")[0]) or "my-model"


def open_model_ui(runs: Path) -> str | None:
    """The uploader; returns the path of a model just opened (the caller switches to it)."""
    with st.expander("Open a model", key=OPEN_KEY, icon=":material/upload_file:"):
        st.caption("Your own model of the Keras tutorial's VAE: its weights as Keras saves them "
                   "(`vae.save_weights(\"vae.weights.h5\")` or `vae.save(\"vae.keras\")`, or a TF 2 `.h5`), "
                   "a PyTorch state_dict, or a checkpoint of this app. "
                   f"Up to {MAX_IMPORT_MB} MB. Nothing in the file is ever run.")
        upload = st.file_uploader("Model file", key=UPLOAD_KEY, max_upload_size=MAX_IMPORT_MB,
                                  help="Read by the layers' shapes; the latent space must be 2-D.")
        name = st.text_input("Name", key=NAME_KEY, max_chars=NAME_CHARS,
                             placeholder=suggested_name(upload.name) if upload else "my-model",
                             help="The model's name in the list and in the page's link (?model=NAME).")
        st.caption("An opened model is saved in the runs folder: it is listed for every tab of this server, "
                   "and on every replica that shares that folder.")
        if not st.button("Open it", key="open_model_go", disabled=upload is None, icon=":material/check:"):
            return None
        try:
            path = run_path(runs, name or suggested_name(upload.name))
            if path.exists():
                raise ValueError(f"A model named “{path.stem}” is already listed; choose another name.")
            out, imported = import_model((upload.getvalue(), upload.name), path)
        except (CheckpointError, ValueError, OSError) as exc:
            st.error(str(exc) if not isinstance(exc, OSError) else f"Cannot save the model: {exc.strerror or exc}")
            return None
        notes = "".join(f" ({n})" for n in imported.notes)
        st.session_state["_open_notice"] = f"Opened {upload.name} ({imported.description}) as “{out.stem}”{notes}."
        return str(out)
