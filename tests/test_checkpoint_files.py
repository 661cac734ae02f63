"""Checkpoint files as a person meets them: what a saved file gives back (its records, the versions
and the time it was written, its training film), and the one line each unreadable file gets, with
the reason in words. The hostile files themselves: test_robustness.py."""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
import pickle
import platform
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import cvae
import cvae.core.checkpoint as ck
from cvae import CVAE, CheckpointError, load_checkpoint, save_checkpoint
from cvae.core.film import Film

SHIPPED_FILM = Path(__file__).resolve().parents[1] / "assets" / "film.npz"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(CVAE(), tmp_path_factory.mktemp("good") / "good.pt")


def rewrite(src: Path, dst: Path, change) -> Path:
    """``src``'s payload, edited by ``change``, written to ``dst`` as torch.save writes it."""
    payload = torch.load(src, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, dst)
    return dst


def refusal(path) -> CheckpointError:
    """The error ``load_checkpoint(path)`` raises: one line for people, naming the file."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    err = info.value
    assert "\n" not in str(err) and "Traceback" not in str(err)
    assert err.path == str(path) and str(err) == f"{path}: {err.problem}"
    assert "Errno" not in err.problem, f"Python's error notation, not words: {err.problem!r}"
    return err


# --------------------------------------------------------------------------- what a file gives back


def test_a_file_saved_with_weights_alone_gives_back_empty_records_and_this_machines_versions(tmp_path):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    path = save_checkpoint(CVAE(), tmp_path / "plain.pt")
    after = dt.datetime.now(dt.timezone.utc)
    meta = load_checkpoint(path).meta
    created = dt.datetime.fromisoformat(meta.pop("created"))
    assert meta == {"path": str(path), "train_config": {}, "history": [], "extra": {}, "film": None,
                    "film_problem": None,
                    "versions": {"cvae": cvae.__version__, "torch": str(torch.__version__),
                                 "numpy": str(np.__version__), "python": platform.python_version()}}
    # When it was written, in UTC, to the second.
    assert created.utcoffset() == dt.timedelta(0) and created.microsecond == 0
    assert before <= created <= after


def test_records_read_back_as_saved_and_what_json_cannot_hold_as_its_text(tmp_path):
    history = ({"epoch": 1, "loss": 180.5, "val_loss": None}, {"epoch": 2, "loss": 170.25, "val_loss": 169.0})
    path = save_checkpoint(CVAE(), tmp_path / "m.pt",
                           train_config={"data_dir": Path("/data/mnist"), "filters": (32, 64), "limit": None},
                           history=iter(history), extra={"note": "zweite Ziffer", "seconds": 1.5})
    meta = load_checkpoint(path).meta
    assert meta["train_config"] == {"data_dir": str(Path("/data/mnist")), "filters": [32, 64], "limit": None}
    assert meta["history"] == list(history)
    assert meta["extra"] == {"note": "zweite Ziffer", "seconds": 1.5}


def test_a_file_without_records_loads_with_empty_ones(tmp_path, good):
    """A checkpoint written by hand, or by an older version, with weights and config only."""
    def strip(p):
        for k in ("train_config", "history", "versions", "created", "extra"):
            p.pop(k)
    meta = load_checkpoint(rewrite(good, tmp_path / "bare.pt", strip)).meta
    assert (meta["train_config"], meta["history"], meta["versions"], meta["extra"]) == ({}, [], {}, {})
    assert meta["created"] is None and meta["film"] is None


def test_the_training_film_travels_with_the_weights(tmp_path):
    film = Film.load_npz(SHIPPED_FILM)
    path = save_checkpoint(CVAE(), tmp_path / "filmed.pt", film=film)
    meta = load_checkpoint(path).meta
    assert meta["film_problem"] is None and isinstance(meta["film"], Film)
    for name in ("step", "epoch", "z", "labels", "manifold", "weight_frames", "weights"):
        assert np.array_equal(getattr(meta["film"], name), getattr(film, name)), name


def test_a_film_of_another_latent_space_is_named_and_the_weights_still_load(tmp_path):
    model = CVAE(latent_dim=3)
    path = save_checkpoint(model, tmp_path / "three.pt", film=Film.load_npz(SHIPPED_FILM))
    loaded = load_checkpoint(path)
    assert loaded.meta["film"] is None
    assert "2 dimensions" in loaded.meta["film_problem"] and "3" in loaded.meta["film_problem"]
    z = torch.zeros(1, 3)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.eval().decode(z))


def test_saving_makes_the_folders_it_needs(tmp_path):
    path = tmp_path / "runs" / "2026" / "m.pt"
    save_checkpoint(CVAE(), path)
    assert load_checkpoint(path).meta["path"] == str(path)


def test_a_file_exactly_at_the_size_limit_is_read_one_byte_over_is_not(good):
    size = good.stat().st_size
    assert ck.read_torch_file(good, max_bytes=size)["format"] == ck.FORMAT
    with pytest.raises(CheckpointError, match="larger than"):
        ck.read_torch_file(good, max_bytes=size - 1)


def test_an_oversized_file_says_its_size_and_the_limit(tmp_path):
    path = tmp_path / "huge.pt"
    with open(path, "wb") as fh:  # sparse: takes no disk space
        fh.truncate(80_000_000)
    problem = refusal(path).problem
    assert "80 MB" in problem and f"({ck.MAX_CHECKPOINT_BYTES // 2**20} MiB max)" in problem


# --------------------------------------------------------------------------- unreadable files, in words


def _zip_without(good: Path, member: str) -> bytes:
    """``good``'s zip archive without its member ending in ``member``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(buf, "w") as zout:
        for name in zin.namelist():
            if not name.endswith(member):
                zout.writestr(name, zin.read(name))
    return buf.getvalue()


def _torch_error(data: bytes) -> BaseException:
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - what torch itself says about these bytes
        return exc
    raise AssertionError("torch read it")


REFUSED = ("refused: the file asks to run code or build objects that a checkpoint never contains "
           "(nothing was run)")
FOREIGN = "not a checkpoint of this app (foreign file format)"
UNREADABLE = "not a PyTorch checkpoint (its bytes are no pickle that torch.load reads; nothing was run)"


def _empty_zip() -> bytes:
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    return buf.getvalue()
CANNOT = "cannot be read as a checkpoint: "

# The bytes, and the sentence a person reads (whole, or its start where the reader's reason follows).
BYTES = {
    "nothing": (lambda good: b"", "the file is empty"),
    "a zip missing its pickle": (lambda good: _zip_without(good, "data.pkl"), "the file is truncated or corrupt"),
    "a zip missing a tensor": (lambda good: _zip_without(good, "data/0"), "the file is truncated or corrupt"),
    "a checkpoint cut short": (lambda good: good.read_bytes()[:-1], "the file is truncated or corrupt"),
    "a pickle cut after its header": (lambda good: b"\x80\x02", "the file is truncated or not a PyTorch checkpoint"),
    "a pickle cut inside an opcode": (lambda good: b"\x80\x02X", "the file is truncated or not a PyTorch checkpoint"),
    "an empty zip": (lambda good: _empty_zip(), UNREADABLE),
    "a plain pickle, not torch's": (lambda good: pickle.dumps({"a": 1}, protocol=2), CANNOT),
    "text": (lambda good: b"hello, I am not a model\n", CANNOT),
}


@pytest.mark.parametrize("kind", sorted(BYTES))
def test_an_unreadable_file_says_what_is_wrong(tmp_path, good, kind):
    make, words = BYTES[kind]
    path = tmp_path / "bad.pt"
    path.write_bytes(make(good))
    problem = refusal(path).problem
    if words != CANNOT:
        assert problem == words
    else:  # the reader's own reason follows, its first line
        exc = _torch_error(path.read_bytes())
        reason = str(exc).splitlines()[0]
        assert problem == CANNOT + (reason if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {reason}")


@pytest.mark.parametrize("kind, sentence", [("missing", "no such file"), ("folder", "is a folder, not a checkpoint file")])
def test_no_file_or_a_folder_says_so(tmp_path, kind, sentence):
    path = tmp_path / "m.pt"
    if kind == "folder":
        path.mkdir()
    assert refusal(path).problem == sentence


@pytest.mark.parametrize("exc, words", [
    (pickle.UnpicklingError("Weights only load failed: re-running with weights_only=False would succeed"), REFUSED),
    (pickle.UnpicklingError("Unsupported global: posix.system"), REFUSED),
    (pickle.UnpicklingError("Trying to load unsupported GLOBAL posix.system"), REFUSED),
    (pickle.UnpicklingError("invalid load key, 'h'.\nsecond line"), "not a PyTorch checkpoint (invalid load key, 'h'.)"),
    (pickle.UnpicklingError(""), "not a PyTorch checkpoint ()"),
    (ValueError(""), CANNOT + "ValueError: "),
])
def test_whatever_the_reader_raises_is_one_line_in_words(tmp_path, good, monkeypatch, exc, words):
    """The reader's errors as other torch releases word them (one this one never raises in words)."""
    def fail(*args, **kwargs):
        raise exc
    monkeypatch.setattr(ck.torch, "load", fail)
    assert refusal(good).problem == words


TAMPERED = {  # a change to a good file's contents, the sentence a person reads
    "no model config": (lambda p: p.pop("model_config"), "the model config is missing"),
    "a model config that is a list": (lambda p: p.update(model_config=[2, 32, 64, 16]), "the model config is missing"),
    "a model config with an unknown field": (lambda p: p["model_config"].update(layers=7),
                                             "invalid model config: unknown model config keys: ['layers']"),
    "no weights": (lambda p: p.pop("state_dict"), "the weights are missing or not tensors"),
    "weights that are lists": (lambda p: p.update(state_dict={"encoder.conv1.weight": [1, 2]}),
                               "the weights are missing or not tensors"),
    "a format of version 99": (lambda p: p.update(format_version=99), "checkpoint format version 99 is not supported (this app reads version 1)"),
    "no format version": (lambda p: p.pop("format_version"), "checkpoint format version None is not supported (this app reads version 1)"),
    "no format": (lambda p: p.pop("format"), FOREIGN),
    "an empty dict": (lambda p: p.clear(), FOREIGN),
    "a dict of a tensor and a number": (lambda p: (p.clear(), p.update(w=torch.zeros(2), n=1)),
                                        FOREIGN),
}


@pytest.mark.parametrize("kind", sorted(TAMPERED))
def test_wrong_contents_say_what_is_wrong(tmp_path, good, kind):
    change, words = TAMPERED[kind]
    assert refusal(rewrite(good, tmp_path / "bad.pt", change)).problem == words


@pytest.mark.parametrize("obj", [[1, 2, 3], "a string", torch.zeros(3)])
def test_a_file_holding_no_dict_is_foreign(tmp_path, obj):
    path = tmp_path / "list.pt"
    torch.save(obj, path)
    assert refusal(path).problem == FOREIGN


def test_a_bare_state_dict_says_it_carries_no_model_config(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(CVAE().state_dict(), path)
    assert refusal(path).problem == "a bare state_dict, not a checkpoint of this app (it carries no model config)"


def test_missing_and_unexpected_weights_are_named_three_at_most(tmp_path, good):
    def drop_decoder(p):
        p["state_dict"] = {k: v for k, v in p["state_dict"].items() if not k.startswith("decoder.")}
    problem = refusal(rewrite(good, tmp_path / "half.pt", drop_decoder)).problem
    missing = sorted(k for k in CVAE().state_dict() if k.startswith("decoder."))
    assert len(missing) > 3 and f"missing {missing[:3]}" in problem and missing[3] not in problem

    def add(p):
        p["state_dict"].update({f"extra.w{i}": torch.zeros(1) for i in range(5)})
    problem = refusal(rewrite(good, tmp_path / "more.pt", add)).problem
    assert "unexpected ['extra.w0', 'extra.w1', 'extra.w2']" in problem and "extra.w3" not in problem


def test_a_weight_of_the_wrong_shape_is_named_with_both_shapes(tmp_path, good):
    def widen(p):
        p["state_dict"]["decoder.dense.bias"] = torch.zeros(7)
    problem = refusal(rewrite(good, tmp_path / "wide.pt", widen)).problem
    need = tuple(CVAE().state_dict()["decoder.dense.bias"].shape)
    assert f"weight decoder.dense.bias has shape (7,), the model config needs {need}" in problem


@pytest.mark.parametrize("value, words", [(torch.zeros(3, dtype=torch.int32), "is not floating point"),
                                          (torch.tensor([0.0, float("inf"), 0.0]), "contains NaN or infinite")])
def test_a_bad_weight_is_named(tmp_path, good, value, words):
    def spoil(p):
        w = p["state_dict"]["encoder.z_mean.bias"]
        p["state_dict"]["encoder.z_mean.bias"] = value[: w.numel()].reshape(w.shape)
    assert f"weight encoder.z_mean.bias {words}" in refusal(rewrite(good, tmp_path / "bad.pt", spoil)).problem


def test_weights_stored_in_half_precision_load_as_float32(tmp_path, good):
    def halve(p):
        p["state_dict"] = {k: v.half() for k, v in p["state_dict"].items()}
    model = load_checkpoint(rewrite(good, tmp_path / "half.pt", halve))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    ref = load_checkpoint(good)
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b.half().float()), k


def test_a_path_through_a_file_cannot_be_read_or_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert refusal(blocker / "m.pt").problem.startswith("cannot read: ")
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(CVAE(), blocker / "sub" / "m.pt")
    assert info.value.problem.startswith("cannot write here: ") and "Errno" not in info.value.problem
    assert str(info.value) == f"{blocker / 'sub' / 'm.pt'}: {info.value.problem}"


def test_a_full_disk_says_so_in_words(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(CVAE(), tmp_path / "m.pt")
    assert info.value.problem == f"could not save, the previous file is untouched: {os.strerror(errno.ENOSPC)}"


def test_the_model_comes_back_on_the_device_asked_for(good):
    """``meta``: the one device besides the CPU that every machine has (the app asks for cuda or mps)."""
    model = load_checkpoint(good, device=torch.device("meta"))
    assert {p.device.type for p in model.parameters()} == {"meta"} and not model.training
    assert {p.device.type for p in load_checkpoint(good).parameters()} == {"cpu"}
