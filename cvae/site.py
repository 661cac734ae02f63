"""``python -m cvae site CHECKPOINT --out DIR``: the explorer as a static site of any 2-D model.

The folder holds ``index.html``, the explorer's modules as one script (``explorer.js``, the
same files the app loads: cvae/web), its styles, ``data.js`` (the decoder's layer list and
weights, the test digits' encodings and labels, the model's line) and, when MNIST is here,
``digits.png`` (the 10,000 test digits at 16 grey levels, shown beside their reconstruction
when clicked) and each test digit's loss (784·BCE and KL, :func:`loss_payload`). The page asks for nothing outside its folder (its Content-Security-Policy says
``default-src 'self'``) and works from any static server or opened as a file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import time
import zipfile
from pathlib import Path

import numpy as np

from .core import explain, latent
from .core.checkpoint import load_checkpoint
from .core.data import has_mnist, load_mnist
from .core.files import FILE_MODE, write_folder
from .core.model import count_parameters
from .core.payloads import decoder_payload, points_payload
from .core.shipped import SHIPPED_CHECKPOINT, SHIPPED_RECORD, encodings_for
from .draw.images import sheet_png
from .draw.palette import DIGIT_COLORS, DIGIT_SYMBOLS
from .web import DIGIT_PX, HINT, PAD_PX, SLIDER_STEP, WEB_DIR, bundle

HOOKS_ENV = "CVAE_TEST_HOOKS"  # the browser tests' hooks, bundled only when set to 1
SHEET_COLUMNS = 100
SHEET_LEVELS = 16
COPIED = ("explorer.css", "site.css")


class SiteError(ValueError):
    """A checkpoint the explorer cannot show, or encodings that do not match the data."""


LOSS_STEPS = (0.05, 0.1)  # nats per unit of the stored recon (uint16: up to 3,276) and KL (uint8: up to 25.5)


def loss_payload(recon, kl) -> dict:
    """Each test digit's 784·BCE (one sample of q(z|x), as the tutorial's val_loss) as uint16
    little-endian and its KL as uint8 (uint16 little-endian, with ``kl_bytes`` 2, should one
    exceed 25.5 nats), in steps of LOSS_STEPS, base64 (30 KB of binary for 10,000 digits): the
    site shows a clicked digit's loss and its standing among the test digits without a model
    run of its own."""
    r = np.clip(np.rint(np.asarray(recon) / LOSS_STEPS[0]), 0, 65535).astype("<u2")
    kq = np.rint(np.asarray(kl) / LOSS_STEPS[1])
    k = np.clip(kq, 0, 255).astype(np.uint8) if kq.max(initial=0) <= 255 else np.clip(kq, 0, 65535).astype("<u2")
    return {"n": int(len(r)), "steps": list(LOSS_STEPS), "samples": explain.TEST_SAMPLES, "kl_bytes": k.itemsize,
            "recon": base64.b64encode(r.tobytes()).decode("ascii"), "kl": base64.b64encode(k.tobytes()).decode("ascii")}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def model_line(model, checkpoint: Path) -> str:
    """One line saying which model this is: parameters, test loss, where it came from."""
    bits = [checkpoint.name, f"{count_parameters(model):,} parameters"]
    extra, tc = model.meta.get("extra", {}), model.meta.get("train_config", {})
    if _same_file(checkpoint, SHIPPED_CHECKPOINT) and SHIPPED_RECORD.is_file():
        card = json.loads(SHIPPED_RECORD.read_text(encoding="utf-8"))
        bits.append(f"test loss {card['test_loss']:.2f} (784·BCE + KL over the 10,000 MNIST test digits; "
                    "the tutorial's best is 151.3)")
        bits.append("the explorer's shipped model: the Keras tutorial's CVAE ported to PyTorch")
    else:
        if extra.get("best_val_loss") is not None:
            bits.append(f"test loss {extra['best_val_loss']:.2f} (best epoch {extra.get('best_epoch')})")
        if isinstance(origin := extra.get("imported_from"), dict):
            bits.append(f"opened from {origin.get('file')} ({origin.get('description')})")
        if tc:
            bits.append(f"trained with `python -m cvae train` (recipe {tc.get('recipe')}, batch {tc.get('batch_size')}, "
                        f"lr {tc.get('lr')}, seed {tc.get('seed')})")
    if model.meta.get("created"):
        bits.append(str(model.meta["created"])[:10])
    return " · ".join(bits)


def site_files(checkpoint, data_dir=None, *, hooks: bool | None = None) -> dict[str, bytes]:
    """The site's files ({name: bytes}) for ``checkpoint``. Raises CheckpointError (not a
    checkpoint), SiteError (not a 2-D model; encodings that do not match the data) or
    DataMissingError (no shipped encodings and no MNIST to encode the test set)."""
    return assemble_site(site_parts(checkpoint, data_dir), hooks=hooks)


def site_parts(checkpoint, data_dir=None) -> dict:
    """What the site holds of the model and the data: ``data`` (data.js's object) and, when MNIST
    is here, ``digits.png``. The costly part of :func:`site_files` (the test set's encodings and
    each digit's loss): :func:`assemble_site` makes the files from it with or without the hooks."""
    checkpoint = Path(checkpoint)
    model = load_checkpoint(checkpoint)
    if model.latent_dim != 2:
        raise SiteError(f"{checkpoint} has a {model.latent_dim}-D latent space; the explorer shows 2-D ones")
    enc = encodings_for(checkpoint, data_dir, lambda: model)
    z, labels = np.asarray(enc["z_mean"], np.float32), np.asarray(enc["label"])
    bounds = latent.latent_bounds(z)
    points = points_payload(z, labels, bounds[:2], bounds[2:])
    if points["n"] != len(z):
        raise SiteError(f"{len(z) - points['n']} of the encodings are not finite numbers; is {checkpoint} trained?")
    digits = loss = None
    files: dict[str, bytes] = {}
    if has_mnist(data_dir):
        images, mnist_labels = load_mnist("test", data_dir, download=False)
        if not np.array_equal(mnist_labels.numpy(), labels):
            raise SiteError(f"the encodings ({enc['source']}) are not of the MNIST test set in this data folder")
        files["digits.png"] = sheet_png((images[:, 0].numpy() * 255).round().astype(np.uint8), SHEET_COLUMNS,
                                        SHEET_LEVELS)
        digits = {"file": "digits.png", "columns": SHEET_COLUMNS, "levels": SHEET_LEVELS}
        loss = loss_payload(*explain.test_set_terms(model, images))
    n, z1r, z2r = latent.GRID_N, latent.GRID_Z1, latent.GRID_Z2
    data = {
        "model": {"name": checkpoint.name, "line": model_line(model, checkpoint)},
        "weights": decoder_payload(model), "points": points, "bounds": list(bounds), "step": SLIDER_STEP,
        "palette": list(DIGIT_COLORS), "symbols": list(DIGIT_SYMBOLS), "digit_px": DIGIT_PX, "pad_px": PAD_PX, "hint": HINT,
        "manifold": {"n": n, "z1_range": list(z1r), "z2_range": list(z2r), "map": latent.manifold_map(n, z1r, z2r)},
        "digits": digits, "loss": loss, "encodings": enc["source"],
    }
    return {"data": data, **files}


def assemble_site(parts: dict, *, hooks: bool | None = None) -> dict[str, bytes]:
    """The site's files from :func:`site_parts`: the page, its script (with the browser tests'
    hooks when ``hooks``, or when None and $CVAE_TEST_HOOKS is 1), its styles and data.js."""
    files = {name: data for name, data in parts.items() if name != "data"}
    hooks = os.environ.get(HOOKS_ENV) == "1" if hooks is None else hooks
    entries = [WEB_DIR / "site.js"] + ([WEB_DIR / "hooks.js"] if hooks else [])
    files["index.html"] = (WEB_DIR / "site.html").read_bytes()
    files["explorer.js"] = bundle(entries, script=True).encode("utf-8")
    files["data.js"] = ("// The model and the encodings this explorer shows (python -m cvae site).\n"
                        f"globalThis.CVAE_SITE = {json.dumps(parts['data'], separators=(',', ':'))};\n").encode("utf-8")
    for name in COPIED:
        files[name] = (WEB_DIR / name).read_bytes()
    return files


def site_zip(files: dict[str, bytes], folder: str = "cvae-explorer") -> bytes:
    """The site's files as a ZIP (in memory) holding one folder. Each entry is a plain file of
    mode 0644 (zipfile's default is 0600, which unzip restores: a web server could not read it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=time.localtime()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            z.writestr(info, data)
    return buf.getvalue()


def write_site(checkpoint, out, data_dir=None, *, force: bool = False) -> tuple[Path, dict[str, bytes]]:
    """Write the site for ``checkpoint`` as the folder ``out`` (all of it, or nothing: an
    existing folder that is not empty is refused unless ``force``)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"{out} exists and is not empty")  # before the work, not after it
    files = site_files(checkpoint, data_dir)
    return write_folder(out, files, replace=force), files
