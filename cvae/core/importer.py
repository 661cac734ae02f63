"""Bring your own model: a file from a person -> this app's checkpoint of the tutorial's VAE.

Four kinds of file are read, told apart by their first bytes, never by their name:

- this app's checkpoint, and a plain PyTorch ``state_dict`` of the same architecture (the
  names of :mod:`cvae.core.model`), both through ``torch.load(weights_only=True)``, so a
  pickle that asks to run code is refused before anything runs;
- the Keras tutorial's weights as ``vae.save_weights(...)`` writes them: Keras 3's
  ``.weights.h5`` layout and the TF 2 / Keras 2 ``.h5`` layout, read with h5py;
- a Keras 3 ``.keras`` archive: only its ``model.weights.h5`` is read (with h5py); its
  ``config.json`` is never opened, so nothing in it runs.

Keras layers are found by structure and shape, not by name: every HDF5 group that holds one
kernel (2-D or 4-D) and one bias (1-D) is a layer, and each of the model's layers takes the one
whose kernel and bias have its shapes in Keras' layout (:func:`keras_layout`). Names only break
ties: the two latent heads have the same shapes, and Keras 3 files name layers by their class
(``dense_1``, ``dense_2``), not by the tutorial's names; a name with "var", "log" or "sigma" is
z_log_var, else the first in the file's order is z_mean, as the tutorial declares them.
:func:`keras_to_state_dict` converts Keras' layouts to PyTorch's; tests/test_keras_alignment.py
and tests/test_importer.py hold it to the real Keras model's numbers.

Files are untrusted: sizes are checked before reading (the file, each HDF5 dataset's declared
shape, each zip member's declared size and compression ratio), HDF5 datasets stored outside the
file (external or virtual) are refused, and every problem is one :class:`ModelFileError` line
naming the file and, where there is one, the layer and its shape.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import FORMAT, CheckpointError, model_from_payload, model_from_state, save_checkpoint, torch_load
from .files import atomic_write
from .model import CVAE, ModelConfig, decoder_spec, encoder_spec

MAX_IMPORT_MB = 20  # the largest model file accepted (the tutorial's .keras with Adam's state is ~1.6 MB)
MAX_IMPORT_BYTES = MAX_IMPORT_MB * 1024 * 1024
# A .keras archive: the most its members may unpack to, and the most one may be compressed.
MAX_UNPACKED_BYTES = 4 * MAX_IMPORT_BYTES
MAX_ZIP_MEMBERS = 1000
MAX_RATIO = 50  # float weights barely compress; a zip bomb's ratio is in the hundreds or more
# An HDF5 file: the most objects walked, and the most elements one dataset may declare (the
# largest layer of the tutorial's model has 50,176).
MAX_HDF5_OBJECTS = 10_000
MAX_DATASET_ELEMENTS = 4 * 1024 * 1024
KERAS_WEIGHTS_MEMBER = "model.weights.h5"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
EXPLORED_LATENT_DIM = 2

# The tutorial's own layer names for each of this model's layers (Keras' automatic names).
TUTORIAL_NAMES = {
    ("encoder", "conv1"): "conv2d", ("encoder", "conv2"): "conv2d_1", ("encoder", "dense"): "dense",
    ("encoder", "z_mean"): "z_mean", ("encoder", "z_log_var"): "z_log_var",
    ("decoder", "dense"): "dense_1", ("decoder", "deconv1"): "conv2d_transpose",
    ("decoder", "deconv2"): "conv2d_transpose_1", ("decoder", "deconv3"): "conv2d_transpose_2",
}
KINDS = {
    "checkpoint": "a checkpoint of this app",
    "state_dict": "a PyTorch state_dict",
    "keras3_weights": "Keras 3 weights (.weights.h5)",
    "keras2_weights": "Keras 2 weights (.h5)",
    "keras_archive": "a Keras 3 model archive (.keras)",
}


class ModelFileError(CheckpointError):
    """A file that cannot be opened as a model; ``str()`` is one line naming it and the problem."""


@dataclass
class Imported:
    """A model read from a person's file: ``kind`` (a key of :data:`KINDS`), where each of its
    layers came from (``layers``: "encoder.conv1" -> the file's layer path) and notes."""

    model: CVAE
    kind: str
    source: str
    layers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return KINDS[self.kind]


# The conversion


def keras_layout(cfg: ModelConfig) -> list[dict]:
    """The model's layers with the shapes of their weights in Keras' layout: ``part``,
    ``name`` (this package's), ``tutorial`` (Keras' name in the tutorial), ``spec`` (the layer
    of :func:`encoder_spec`/:func:`decoder_spec`), ``kernel`` and ``bias`` (shapes).
    Conv2D kernels are (kh, kw, in, out), Conv2DTranspose kernels (kh, kw, out, in), Dense
    kernels (in, out)."""
    out = []
    for part, spec in (("encoder", encoder_spec(cfg)), ("decoder", decoder_spec(cfg))):
        for layer in spec:
            k = layer.get("kernel")
            if layer["kind"] == "conv":
                kernel = (k, k, layer["in"], layer["out"])
            elif layer["kind"] == "conv_transpose":
                kernel = (k, k, layer["out"], layer["in"])
            else:
                kernel = (layer["in"], layer["out"])
            out.append({"part": part, "name": layer["name"], "tutorial": TUTORIAL_NAMES.get((part, layer["name"]),
                                                                                            layer["name"]),
                        "spec": layer, "kernel": kernel, "bias": (layer["out"],)})
    return out


def keras_to_state_dict(cfg: ModelConfig, keras: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Keras-layout weights, named ``{encoder|decoder}.{layer}.{kernel|bias}`` (this package's
    layer names), as the model's state_dict.

    Conv2D kernels (kh, kw, in, out) become PyTorch's (out, in, kh, kw) and Conv2DTranspose
    kernels (kh, kw, out, in) PyTorch's (in, out, kh, kw): both ``transpose(3, 2, 0, 1)``, with
    no flip (both libraries compute a transposed convolution as the gradient of the same
    cross-correlation). Dense kernels (in, out) become (out, in). Keras flattens a feature map
    as (h, w, c) where this model flattens (c, h, w): the rows of the encoder's Dense after the
    flatten, and the columns (and bias) of the decoder's Dense before the reshape, are reordered.
    """
    state = {}
    for layer in keras_layout(cfg):
        part, spec = layer["part"], layer["spec"]
        k = np.asarray(keras[f"{part}.{layer['name']}.kernel"], np.float32)
        b = np.asarray(keras[f"{part}.{layer['name']}.bias"], np.float32)
        if spec["kind"] in ("conv", "conv_transpose"):
            w = k.transpose(3, 2, 0, 1)
        elif "flatten" in spec:  # rows (h, w, c) -> columns (c, h, w)
            c, h, wd = spec["flatten"]
            w = k.reshape(h, wd, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * wd)
        elif "reshape" in spec:  # columns (h, w, c) -> rows (c, h, w)
            c, h, wd = spec["reshape"]
            w = k.reshape(-1, h, wd, c).transpose(3, 1, 2, 0).reshape(c * h * wd, -1)
            b = b.reshape(h, wd, c).transpose(2, 0, 1).reshape(-1)
        else:
            w = k.T
        state[f"{part}.{layer['name']}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        state[f"{part}.{layer['name']}.bias"] = torch.from_numpy(np.ascontiguousarray(b))
    return state


# Reading


def _sniff(data: bytes) -> str:
    if data.startswith(HDF5_MAGIC):
        return "hdf5"
    if data.startswith(ZIP_MAGIC):
        return "zip"
    if data[:1] == b"\x80":  # a pickle (torch.save's legacy format)
        return "torch"
    return "unknown"


def read_model_file(path) -> Imported:
    """The model in the file at ``path`` (any of :data:`KINDS`); :class:`ModelFileError` else."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ModelFileError(path.name, "is a folder, not a model file")
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise ModelFileError(path.name, _too_big(size))
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(path, "no such file") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read: {exc.strerror or exc}") from None
    return read_model_bytes(data, path.name)


def _too_big(size: int) -> str:
    mb = size / 2**20
    what = f"{mb:.1f} MB" if round(mb, 1) > MAX_IMPORT_MB else f"{size:,} bytes"  # not "20.0 MB, over 20 MB"
    return f"the file is {what}, over the {MAX_IMPORT_MB} MB limit for a model file (the tutorial's model is under 2 MB)"


def read_model_bytes(data: bytes, name: str) -> Imported:
    """The model in ``data`` (a file's bytes; ``name`` is used in messages only)."""
    name = Path(str(name)).name or "the file"
    if len(data) == 0:
        raise ModelFileError(name, "the file is empty")
    if len(data) > MAX_IMPORT_BYTES:
        raise ModelFileError(name, _too_big(len(data)))
    kind = _sniff(data)
    if kind == "hdf5":
        imported = _from_hdf5(data, name)
    elif kind == "zip":
        imported = _from_zip(data, name)
    elif kind == "torch":
        imported = _from_torch(data, name)
    else:
        raise ModelFileError(name, "not a model file this app reads (a checkpoint or state_dict from PyTorch, "
                                   "Keras weights in .weights.h5 or .h5, or a .keras archive)")
    if imported.model.latent_dim != EXPLORED_LATENT_DIM:
        raise ModelFileError(name, f"a {imported.model.latent_dim}-D latent space; the explorer needs a 2-D one")
    imported.model.eval()
    return imported


def _from_zip(data: bytes, name: str) -> Imported:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if any(n.endswith("data.pkl") for n in names):
                return _from_torch(data, name)
            if KERAS_WEIGHTS_MEMBER not in names:
                raise ModelFileError(name, f"a ZIP file that is neither a .keras archive (it has no "
                                           f"{KERAS_WEIGHTS_MEMBER}) nor a PyTorch file")
            weights = _read_member(zf, infos, name)
    except (zipfile.BadZipFile, EOFError):  # EOFError: a member's data end before its declared size
        raise ModelFileError(name, "the ZIP file is truncated or damaged") from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ModelFileError(name, f"the ZIP file cannot be read: {first}") from None
    return _from_hdf5(weights, name, archive=True)


def _read_member(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], name: str) -> bytes:
    """The weights member of a .keras archive, after checking every member's declared size and
    compression ratio, read no further than its declared size."""
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ModelFileError(name, f"the archive has {len(infos):,} members, more than a .keras archive holds")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise ModelFileError(name, f"the archive declares {total / 2**20:,.0f} MB unpacked, over the "
                                   f"{MAX_UNPACKED_BYTES // 2**20} MB a model archive may hold (a zip bomb?)")
    for i in infos:
        if i.file_size > 1024 * 1024 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ModelFileError(name, f"the archive's {i.filename} unpacks {i.file_size / max(i.compress_size, 1):,.0f}"
                                       f" times larger than it is packed (a zip bomb?); refused unread")
    info = next(i for i in infos if i.filename == KERAS_WEIGHTS_MEMBER)
    if info.flag_bits & 0x1:  # zipfile's own error names a ZipInfo's repr, cut before it says why
        raise ModelFileError(name, f"the archive's {KERAS_WEIGHTS_MEMBER} is encrypted; this app reads archives "
                                   "saved without a password")
    with zf.open(info) as fh:
        out = fh.read(info.file_size + 1)
    if len(out) != info.file_size:
        raise ModelFileError(name, f"the archive's {KERAS_WEIGHTS_MEMBER} is not the size it declares")
    return out


def _from_torch(data: bytes, name: str) -> Imported:
    payload = torch_load(io.BytesIO(data), name)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return Imported(model_from_payload(name, payload), "checkpoint", name)
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]  # {"state_dict": ...}, as training scripts often save it
    if not (isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values())):
        raise ModelFileError(name, "a PyTorch file that holds neither a checkpoint of this app nor a state_dict")
    state = {str(k).removeprefix("module."): v for k, v in payload.items()}
    cfg = _config_from_state(state, name)
    model = model_from_state(name, cfg, state)
    return Imported(model, "state_dict", name, {k.rsplit(".", 1)[0]: k.rsplit(".", 1)[0] for k in state})


def _config_from_state(state: dict, name: str) -> ModelConfig:
    """The architecture a state_dict of this package's names describes (latent size, filters,
    dense width), so that a wrong shape is reported against the layer it belongs to."""
    need = ["encoder.conv1.weight", "encoder.conv2.weight", "encoder.dense.weight", "encoder.z_mean.weight"]
    missing = [k for k in need if k not in state]
    if missing:
        raise ModelFileError(name, f"a state_dict without {missing[0]}: not this model's (its names are "
                                   f"encoder.conv1, ..., decoder.deconv3)")
    try:
        return ModelConfig(latent_dim=int(state["encoder.z_mean.weight"].shape[0]),
                           filters=(int(state["encoder.conv1.weight"].shape[0]),
                                    int(state["encoder.conv2.weight"].shape[0])),
                           dense=int(state["encoder.dense.weight"].shape[0]))
    except (ValueError, IndexError, TypeError) as exc:
        raise ModelFileError(name, f"the state_dict does not describe this model: {exc}") from None


# HDF5 (Keras)


@dataclass
class _Layer:
    path: str  # the group holding the kernel and the bias
    kernel: object  # h5py.Dataset
    bias: object

    @property
    def name(self) -> str:
        parts = self.path.split("/")
        return parts[-2] if parts[-1] == "vars" and len(parts) > 1 else parts[-1]

    def shapes(self) -> str:
        return f"kernel {tuple(self.kernel.shape)} and bias {tuple(self.bias.shape)}"


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _from_hdf5(data: bytes, name: str, archive: bool = False) -> Imported:
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r", locking=False) as f:
            layers = _weight_layers(f, name)
            legacy = "layer_names" in f.attrs  # Keras 2's save_weights lists the layers there
            kind = "keras_archive" if archive else ("keras2_weights" if legacy else "keras3_weights")
            keras, mapping, notes = _match(layers, name)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ModelFileError(name, _damaged(exc)) from None
    model = model_from_state(name, ModelConfig(), keras_to_state_dict(ModelConfig(), keras))
    return Imported(model, kind, name, mapping, notes)


def _damaged(exc: Exception) -> str:
    """What h5py's error says, in a person's words: how much of a truncated file arrived."""
    text = str(exc)
    cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if cut:
        return (f"the HDF5 file is truncated: it has {int(cut[1]):,} of its {int(cut[2]):,} bytes "
                "(copy or download it again)")
    first = text.splitlines()[0][:120] if text else type(exc).__name__
    return f"the HDF5 file is truncated or damaged (h5py says: {first})"


def _weight_layers(f, name: str) -> list[_Layer]:
    """Every group of ``f`` that holds a kernel (2-D or 4-D) and a bias (1-D) and nothing else,
    after checking every dataset's declared shape (before reading any) and where its data lie."""
    import h5py

    groups: dict[str, list] = {}
    seen = 0

    def visit(path, obj):
        nonlocal seen
        seen += 1
        if seen > MAX_HDF5_OBJECTS:
            raise ModelFileError(name, f"the HDF5 file holds more than {MAX_HDF5_OBJECTS:,} objects, far more "
                                       "than a model's weights")
        if not isinstance(obj, h5py.Dataset):
            return None
        shape = obj.shape or ()
        n = math.prod(shape)
        if n > MAX_DATASET_ELEMENTS:
            raise ModelFileError(name, f"dataset {path} declares shape {tuple(shape)} ({n * obj.dtype.itemsize / 1e9:,.1f}"
                                       " GB), far more than any layer of this model; refused before reading it")
        if obj.is_virtual or obj.external:
            raise ModelFileError(name, f"dataset {path} keeps its data outside the file; refused")
        parent, _, leaf = path.rpartition("/")
        groups.setdefault(parent, []).append(obj)
        return None

    f.visititems(visit)
    layers = []
    for path, dsets in groups.items():
        if "optimizer" in path.lower() or len(dsets) != 2:
            continue
        by_rank = sorted(dsets, key=lambda d: len(d.shape or ()))
        bias, kernel = by_rank
        if len(bias.shape or ()) == 1 and len(kernel.shape or ()) in (2, 4):
            layers.append(_Layer(path, kernel, bias))
    return sorted(layers, key=lambda lay: _natural(lay.path))


def _describe(e: dict) -> str:
    s = e["spec"]
    what = {"conv": "Conv2D", "conv_transpose": "Conv2DTranspose", "dense": "Dense"}[s["kind"]]
    return f"the {e['part']}'s {e['tutorial']} ({what} {s['in']} -> {s['out']})"


def _hint(e: dict, lay: _Layer) -> str:
    """Why a near layer does not fit; names a wrong latent size."""
    ks = tuple(lay.kernel.shape)
    if e["name"] in ("z_mean", "z_log_var") and len(ks) == 2 and ks[1] != EXPLORED_LATENT_DIM:
        return f": a {ks[1]}-D latent space; the explorer needs a 2-D one"
    if e["part"] == "decoder" and e["name"] == "dense" and len(ks) == 2 and ks[0] != EXPLORED_LATENT_DIM:
        return f": a {ks[0]}-D latent space; the explorer needs a 2-D one"
    return ""


def _tie_score(e: dict, lay: _Layer) -> int:
    n = lay.name.lower()
    if n in (e["tutorial"], e["name"]):
        return 3
    is_var = any(w in n for w in ("var", "log", "sigma", "std"))
    if e["name"] == "z_log_var":
        return 2 if is_var else 0
    if e["name"] == "z_mean":
        return 0 if is_var else (2 if ("mean" in n or "mu" in n) else 1)
    return 0


def _match(layers: list[_Layer], name: str) -> tuple[dict, dict, list[str]]:
    if not layers:
        raise ModelFileError(name, "no Keras layer weights in this HDF5 file (no group holds a kernel and a bias)")
    expected = keras_layout(ModelConfig())
    used: set[str] = set()
    keras, mapping, notes = {}, {}, []
    for e in expected:
        free = [lay for lay in layers if lay.path not in used]
        fits = [lay for lay in free if tuple(lay.kernel.shape) == e["kernel"] and tuple(lay.bias.shape) == e["bias"]]
        if not fits:
            near = ([lay for lay in free if lay.name.lower() in (e["tutorial"], e["name"])]
                    or [lay for lay in free if len(lay.kernel.shape) == len(e["kernel"])
                        and sum(a != b for a, b in zip(lay.kernel.shape, e["kernel"])) == 1])
            if near:
                # one of this part of the model first: a name ("dense") or a near shape recurs in the other part,
                # which comes first in the file's order (decoder/ sorts before encoder/)
                lay = min(near, key=lambda lay: e["part"] not in lay.path.split("/"))
                raise ModelFileError(name, f"layer {lay.name} has {lay.shapes()}, where {_describe(e)} has kernel "
                                           f"{e['kernel']} and bias {e['bias']}{_hint(e, lay)}")
            raise ModelFileError(name, f"no layer fits {_describe(e)}, kernel {e['kernel']}: the file's layers are "
                                       + ", ".join(f"{lay.name} {tuple(lay.kernel.shape)}" for lay in layers[:12]))
        best = max(fits, key=lambda lay: _tie_score(e, lay))  # max keeps the first of equals: the file's order
        if len(fits) > 1 and _tie_score(e, best) < 2:
            notes.append(f"{e['tutorial']} is the file's {best.name}, the first of its shape in the file's order")
        used.add(best.path)
        key = f"{e['part']}.{e['name']}"
        mapping[key] = best.path
        for what, dset, shape in (("kernel", best.kernel, e["kernel"]), ("bias", best.bias, e["bias"])):
            if dset.dtype.kind != "f":
                raise ModelFileError(name, f"layer {best.name}'s {what} is {dset.dtype}, not floating point")
            keras[f"{key}.{what}"] = np.asarray(dset[()], np.float32).reshape(shape)
    extra = [lay for lay in layers if lay.path not in used]
    if extra:
        lay = extra[0]
        raise ModelFileError(name, f"layer {lay.name} ({lay.shapes()}) is not part of the tutorial's VAE; "
                                   "this app explores that architecture only")
    return keras, mapping, notes


def is_checkpoint(path) -> bool:
    """Whether ``path`` is a checkpoint of this app, opened as it is by
    :func:`cvae.core.checkpoint.load_checkpoint`. False for every other file: the kinds this
    module converts, and the files it refuses (an empty, truncated, hostile or unknown one), so
    that :func:`read_model_file` says in one sentence what is wrong with them."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(HDF5_MAGIC))
        if _sniff(head) not in ("torch", "zip"):
            return False
        if _sniff(head) == "zip":
            with zipfile.ZipFile(path) as zf:
                if not any(n.endswith("data.pkl") for n in zf.namelist()):
                    return False
        payload = torch_load(path, path)
    except (OSError, zipfile.BadZipFile, CheckpointError):
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def imported_from(path) -> dict | None:
    """Where a checkpoint written by :func:`import_model` came from (its ``extra``), or None for
    any other file (one that cannot be read included)."""
    try:
        payload = torch_load(path, path)
    except CheckpointError:
        return None
    extra = payload.get("extra") if isinstance(payload, dict) and payload.get("format") == FORMAT else None
    found = extra.get("imported_from") if isinstance(extra, dict) else None
    return found if isinstance(found, dict) else None


# Writing


def import_model(src, out) -> tuple[Path, Imported]:
    """Read ``src`` (a path, or ``(bytes, name)``) and write it as this app's checkpoint at
    ``out`` (atomically; nothing is written when the file is refused). A checkpoint of this
    app is copied as it is; any other kind is saved with where it came from in ``extra``."""
    if isinstance(src, tuple):
        data, name = src
        imported = read_model_bytes(data, name)
    else:
        imported = read_model_file(src)
        data = None
    out = Path(out)
    if imported.kind == "checkpoint":
        raw = data if data is not None else Path(src).read_bytes()
        try:
            atomic_write(out, raw)
        except OSError as exc:
            raise ModelFileError(out, f"cannot write here: {exc.strerror or exc}") from None
    else:
        save_checkpoint(imported.model, out, extra={"imported_from": {
            "file": imported.source, "kind": imported.kind, "description": imported.description,
            "layers": imported.layers, "notes": imported.notes}})
    return out, imported
