"""One-file checkpoints: weights + model config + training config + history + versions.

A checkpoint is untrusted input. It is read with ``torch.load(weights_only=True)``, so
a pickle that tries to run code is refused before anything runs, and every field is
checked before a model is built. Writes are atomic: a temporary file in the same
folder, fsync, then rename, so a crash never leaves half a file in place of a good one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import pickle
import struct
import zipfile
from pathlib import Path

import torch

from . import __version__
from .files import atomic_write
from .film import Film, FilmError
from .model import CVAE, ModelConfig

FORMAT = "cvae-latent-explorer/checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # the tutorial's model is ~0.6 MB


class CheckpointError(ValueError):
    """A checkpoint could not be read or written. ``str()`` is one line naming the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def versions() -> dict:
    import numpy

    return {
        "cvae": __version__,
        "torch": str(torch.__version__),
        "numpy": str(numpy.__version__),
        "python": platform.python_version(),
    }


def _plain(obj):
    """A JSON round trip: str keys, lists, numbers, strings, None (and inf/nan floats)."""
    return json.loads(json.dumps(obj, default=str))


def make_folder(path: str | Path) -> None:
    """Create the folder a checkpoint at ``path`` goes into, or raise :class:`CheckpointError`
    saying why not (a training checks this before its first step, not at its first save)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(path, f"cannot write here: {exc.strerror or exc}") from exc


def save_checkpoint(model: CVAE, path: str | os.PathLike, *, train_config: dict | None = None,
                    history: list[dict] | None = None, extra: dict | None = None, film=None) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically; returns the path.

    ``film`` (a :class:`cvae.core.film.Film`, the training snapshots) is stored as plain tensors
    under ``"film"``; a checkpoint without one is just as valid."""
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": state,
        # Metadata as plain JSON types only, so weights_only loading accepts it.
        "train_config": _plain(train_config or {}),
        "history": _plain(list(history or [])),
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": _plain(extra or {}),
    }
    if film is not None:
        payload["film"] = film.to_tensors()
    make_folder(path)
    try:
        atomic_write(path, lambda fh: torch.save(payload, fh))
    except OSError as exc:
        raise CheckpointError(path, f"could not save, the previous file is untouched: "
                                    f"{exc.strerror or exc}") from exc
    return path


def read_torch_file(path: Path, max_bytes: int = MAX_CHECKPOINT_BYTES):
    """Whatever ``torch.load(weights_only=True)`` makes of ``path`` (nothing in it runs), or
    :class:`CheckpointError` saying in one line why the file cannot be read."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    if size == 0:
        raise CheckpointError(path, "the file is empty")
    if size > max_bytes:
        raise CheckpointError(path, f"the file is {size / 1e6:.0f} MB, larger than any "
                                    f"checkpoint of this app ({max_bytes // 2**20} MiB max)")
    return torch_load(path, path)


def torch_load(source, path):
    """``torch.load(source, weights_only=True)`` (``source``: a path or a binary file object);
    :class:`CheckpointError` naming ``path`` when it cannot be read or asks to run code."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        first = msg.strip().splitlines()[0] if msg.strip() else ""
        # torch's weights-only reader names what a file asks for (a global, a class) when it
        # refuses it; bytes it cannot read at all (an empty zip, text) it calls an unsupported operand.
        if "Unsupported global" in msg or "GLOBAL" in msg or "Unsupported class" in msg or (
                "weights_only" in msg and "Unsupported operand" not in msg):
            raise CheckpointError(path, "refused: the file asks to run code or build objects that a "
                                        "checkpoint never contains (nothing was run)") from None
        if "Unsupported operand" in msg:
            raise CheckpointError(path, "not a PyTorch checkpoint (its bytes are no pickle that torch.load "
                                        "reads; nothing was run)") from None
        raise CheckpointError(path, f"not a PyTorch checkpoint ({first[:120]})") from None
    except (EOFError, zipfile.BadZipFile, struct.error):  # struct.error: a pickle cut inside an opcode
        raise CheckpointError(path, "the file is truncated or not a PyTorch checkpoint") from None
    except RuntimeError as exc:
        msg = str(exc)
        if "zip archive" in msg or "PytorchStreamReader" in msg or "central directory" in msg:
            raise CheckpointError(path, "the file is truncated or corrupt") from None
        raise CheckpointError(path, f"cannot be read as a checkpoint: {msg.splitlines()[0][:160]}") from None
    except (OSError, ValueError, TypeError, AttributeError, KeyError, IndexError, MemoryError) as exc:
        raise CheckpointError(path, f"cannot be read as a checkpoint: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:160] if str(exc) else ''}") from None


def _check_payload(path, payload) -> dict:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise CheckpointError(path, "a bare state_dict, not a checkpoint of this app "
                                        "(it carries no model config)")
        raise CheckpointError(path, "not a checkpoint of this app (foreign file format)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(path, f"checkpoint format version {payload.get('format_version')!r} "
                                    f"is not supported (this app reads version {FORMAT_VERSION})")
    return payload


def model_from_state(path, cfg: ModelConfig, state: dict) -> CVAE:
    """A ``CVAE`` of ``cfg`` holding ``state`` (a state_dict), after checking every name, shape
    and value; else :class:`CheckpointError` naming the first weight that does not fit."""
    # Shapes only, on the meta device: a tiny hostile file with a huge config must not
    # make us allocate (and initialise) hundreds of MB before the weights are checked.
    with torch.device("meta"):
        expected = CVAE.from_config(cfg).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(path, f"weights do not fit the architecture (missing {missing[:3]}, "
                                    f"unexpected {unexpected[:3]})")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(path, f"weight {k} has shape {tuple(state[k].shape)}, the model "
                                        f"config needs {tuple(v.shape)}")
        if not state[k].is_floating_point():
            raise CheckpointError(path, f"weight {k} is not floating point")
        if not torch.isfinite(state[k]).all():
            raise CheckpointError(path, f"weight {k} contains NaN or infinite values")
    model = CVAE.from_config(cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> CVAE:
    """Rebuild a ready ``CVAE`` (eval mode) from the file alone.

    Metadata (train_config, history, versions, created, extra, path) is on ``model.meta``.
    Raises :class:`CheckpointError` with one line naming the file and the problem.
    """
    path = Path(path)
    return model_from_payload(path, read_torch_file(path)).to(device).eval()


def model_from_payload(path, payload) -> CVAE:
    """The ``CVAE`` (with its ``meta``) in a checkpoint's payload as ``torch.load`` read it
    from the file ``path``; :class:`CheckpointError` naming ``path`` when it is not one."""
    payload = _check_payload(path, payload)
    cfg_dict = payload.get("model_config")
    if not isinstance(cfg_dict, dict):
        raise CheckpointError(path, "the model config is missing")
    try:
        cfg = ModelConfig.from_dict(cfg_dict)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(path, f"invalid model config: {exc}") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "the weights are missing or not tensors")
    model = model_from_state(path, cfg, state)
    film, film_problem = None, None
    if payload.get("film") is not None:
        try:
            film = Film.from_tensors(payload["film"], latent_dim=cfg.latent_dim)
        except FilmError as exc:  # the weights are fine: load them, say what is wrong with the film
            film_problem = str(exc)
    model.meta = {
        "path": str(path),
        "train_config": payload.get("train_config") or {},
        "history": payload.get("history") or [],
        "versions": payload.get("versions") or {},
        "created": payload.get("created"),
        "extra": payload.get("extra") or {},
        "film": film,  # a Film, or None
        "film_problem": film_problem,  # why a stored film was not loaded, or None
    }
    return model
