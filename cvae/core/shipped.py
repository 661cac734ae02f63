"""The shipped model and the small files beside it in ``assets/``, read offline.

- ``cvae_mnist.pt``: the model the app opens on; ``test_encodings.npz``: its encodings of the
  10,000 test digits; ``model_card.json``: how it was made and its test loss (all three
  written by :func:`build_assets`, ``python -m cvae ship``);
- ``film.npz``: a training film shown beside it (:func:`ship_film`, ``python -m cvae film
  --ship``), stamped with the checkpoint's SHA-256 so it is never shown beside another model.
"""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, versions
from .data import has_mnist, load_mnist
from .encodings import read_encodings, write_encodings
from .files import atomic_write, write_json
from .film import Film, FilmError
from .latent import encode_dataset, evaluate
from .model import count_parameters

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
SHIPPED_CHECKPOINT = ASSETS_DIR / "cvae_mnist.pt"
SHIPPED_ENCODINGS = ASSETS_DIR / "test_encodings.npz"
SHIPPED_RECORD = ASSETS_DIR / "model_card.json"
SHIPPED_FILM = ASSETS_DIR / "film.npz"


def shipped_encodings() -> dict:
    """The shipped model's encodings of the test set (:func:`cvae.core.encodings.read_encodings`)."""
    return read_encodings(SHIPPED_ENCODINGS)


def encodings_for(checkpoint, data_dir, load_model) -> dict:
    """The test set's encodings for ``checkpoint``, with ``source`` saying where they came from.

    The shipped model's come from :data:`SHIPPED_ENCODINGS` (offline), unless that file is
    older than the checkpoint and MNIST is there to encode it again; any other model's are
    computed from the MNIST test set (``load_model()`` gives the model only then).
    """
    ckpt, enc_file = Path(checkpoint), Path(SHIPPED_ENCODINGS)
    if ckpt.resolve() == Path(SHIPPED_CHECKPOINT).resolve() and enc_file.is_file():
        stale = enc_file.stat().st_mtime_ns < ckpt.stat().st_mtime_ns
        if not (stale and has_mnist(data_dir)):
            return {**read_encodings(enc_file), "source": f"assets/{enc_file.name}"}
    images, labels = load_mnist("test", data_dir, download=False)
    z_mean, z_log_var = encode_dataset(load_model(), images)
    return {"z_mean": z_mean, "z_log_var": z_log_var, "label": labels.numpy(), "source": "MNIST test set"}


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads{gpu}"


def build_assets(checkpoint, data_dir, assets_dir=ASSETS_DIR, train_command: str | None = None,
                 download: bool = True) -> dict:
    """Copy a checkpoint into assets/ with its test encodings and a model card (JSON)."""
    model = load_checkpoint(checkpoint)
    test_x, test_y = load_mnist("test", data_dir, download=download)
    res = evaluate(model, test_x, seed=0)
    assets_dir = Path(assets_dir)
    assets_dir.mkdir(parents=True, exist_ok=True)
    ck_dst = assets_dir / SHIPPED_CHECKPOINT.name
    if Path(checkpoint).resolve() != ck_dst.resolve():
        atomic_write(ck_dst, Path(checkpoint).read_bytes())
    write_encodings(model, test_x, test_y, assets_dir / SHIPPED_ENCODINGS.name)
    meta = model.meta
    hist = meta["history"]
    extra = meta["extra"]
    card = {
        "checkpoint": ck_dst.name,
        "encodings": SHIPPED_ENCODINGS.name,
        "architecture": "Chollet's Keras CVAE, PyTorch port",
        "model_config": model.config.to_dict(),
        "parameters": count_parameters(model),
        "command": train_command or extra.get("command"),
        "train_config": meta["train_config"],
        "seed": meta["train_config"].get("seed"),
        "epochs_run": len(hist),
        "best_epoch": extra.get("best_epoch"),
        "wall_seconds": round(extra.get("wall_seconds") or sum(h.get("seconds", 0) for h in hist), 1),
        "machine": extra.get("machine") or machine_description(),
        "trained_with": meta["versions"],
        "evaluated_with": versions(),
        "test_loss": res["loss"],
        "recon": res["recon"],
        "kl": res["kl"],
        "evaluation": "mean over the 10,000 MNIST test digits of 784*BCE + KL, one z sample per image, seed 0",
        "final_epoch": hist[-1] if hist else None,
        "created": meta["created"],
    }
    if extra.get("init_from"):
        # Fine-tuned from another run (train --init): record that run too.
        card["init_from"] = extra["init_from"]
    write_json(assets_dir / SHIPPED_RECORD.name, card)
    return card


# The shipped film


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_SHIPPED_CACHE: dict = {}


def shipped_film_for(checkpoint_path) -> Film | None:
    """The shipped film when ``checkpoint_path`` is the very checkpoint it was made for (same
    SHA-256 as recorded in the film), else None. Read once per file version (cached)."""
    film_path = SHIPPED_FILM
    try:
        if checkpoint_path is None or not film_path.is_file() or not Path(checkpoint_path).is_file():
            return None
        fst, cst = film_path.stat(), Path(checkpoint_path).stat()
    except OSError:
        return None
    key = (str(film_path), fst.st_mtime_ns, fst.st_size, str(Path(checkpoint_path).resolve()), cst.st_mtime_ns,
           cst.st_size)
    if key not in _SHIPPED_CACHE:
        try:
            film = Film.load_npz(film_path)
            ok = film.info.get("checkpoint_sha256") == file_sha256(checkpoint_path)
        except (FilmError, OSError):
            film, ok = None, False
        _SHIPPED_CACHE.clear()
        _SHIPPED_CACHE[key] = film if ok else None
    return _SHIPPED_CACHE[key]


@dataclass
class Replay:
    """The film to replay for a model: its own, or the shipped film made for it."""

    film: Film | None
    shipped: bool = False  # the shipped film (its ``info`` says where it comes from), not the model's own
    problem: str | None = None  # why the model's own film could not be read


def replay_for(model) -> Replay:
    meta = getattr(model, "meta", None) or {}
    if meta.get("film") is not None:
        return Replay(meta["film"])
    problem = meta.get("film_problem")
    shipped = shipped_film_for(meta.get("path"))
    return Replay(shipped, shipped is not None, problem)


def ship_film(checkpoint, out=None, shipped_checkpoint=None, command: str | None = None) -> tuple[Path, Film]:
    """Write ``checkpoint``'s film to assets/film.npz for the shipped model: stamped with the
    shipped checkpoint's SHA-256 (so it is shown only beside that model) and the run's
    provenance (command, epochs, val_loss, wall and film seconds, machine)."""
    model = load_checkpoint(checkpoint)
    film = model.meta.get("film")
    if film is None:
        raise FilmError(f"{checkpoint}: no film to ship ({model.meta.get('film_problem') or 'no snapshots'})")
    shipped_checkpoint = Path(shipped_checkpoint or SHIPPED_CHECKPOINT)
    extra, hist = model.meta["extra"], model.meta["history"]
    same = shipped_checkpoint.is_file() and file_sha256(shipped_checkpoint) == file_sha256(checkpoint)
    info = {"checkpoint_sha256": file_sha256(shipped_checkpoint), "separate_run": not same,
            "source": Path(checkpoint).name, "command": command or extra.get("command"),
            "recipe": model.meta["train_config"].get("recipe"), "seed": model.meta["train_config"].get("seed"),
            "epochs": len(hist), "best_val_loss": extra.get("best_val_loss"),
            "wall_seconds": extra.get("wall_seconds"), "film_seconds": extra.get("film_seconds"),
            "machine": extra.get("machine"), "created": model.meta.get("created"),
            "snapshots": len(film)}
    path = film.save_npz(out or SHIPPED_FILM, info)
    return path, Film.load_npz(path)
