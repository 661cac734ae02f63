"""The files beside the shipped model, as the app and `python -m cvae ship` / `film --ship` use them:
where the test set's encodings come from, the model card a ship writes, the shipped film shown
only beside the checkpoint it was made for, and the film a ship stamps. Without training, and
without scoring the 10,000 test digits (the card's figures come from a slice of them here)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import cvae.core.shipped as shipped
from cvae import CVAE, count_parameters, encode_dataset, evaluate, load_checkpoint, load_mnist, save_checkpoint
from cvae.core.checkpoint import versions
from cvae.core.encodings import read_encodings
from cvae.core.film import Film, FilmError
from devkit import DATA_DIR, require_data

N_TEST = 300  # the slice of the test set a ship scores here


def _never():
    raise AssertionError("the model was built though the shipped encodings were there")


@pytest.fixture
def assets(tmp_path, monkeypatch) -> Path:
    """A copy of assets/ that the module reads as the shipped files (their times ours to change)."""
    folder = tmp_path / "assets"
    shutil.copytree(shipped.ASSETS_DIR, folder)
    for name in ("SHIPPED_CHECKPOINT", "SHIPPED_ENCODINGS", "SHIPPED_RECORD", "SHIPPED_FILM"):
        monkeypatch.setattr(shipped, name, folder / getattr(shipped, name).name)
    shipped._SHIPPED_CACHE.clear()
    return folder


def _age(path: Path, seconds: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


# --------------------------------------------------------------------------- the test set's encodings


def test_the_shipped_models_encodings_come_from_its_file_without_building_it(assets, tmp_path, monkeypatch):
    enc = shipped.encodings_for(assets / "cvae_mnist.pt", tmp_path / "no-mnist", _never)
    assert enc["source"] == "assets/test_encodings.npz"
    on_disk = read_encodings(assets / "test_encodings.npz")
    for key in ("z_mean", "z_log_var", "label"):
        np.testing.assert_array_equal(enc[key], on_disk[key])
    # The same checkpoint by another path to it.
    monkeypatch.chdir(tmp_path)
    assert shipped.encodings_for(Path("assets") / ".." / "assets" / "cvae_mnist.pt", tmp_path, _never)["source"] \
        == "assets/test_encodings.npz"


@pytest.fixture(scope="module")
def test_slice():
    require_data()
    return load_mnist("test", DATA_DIR, download=False, limit=N_TEST)


@pytest.fixture
def loads(monkeypatch, test_slice) -> list:
    """The test set as the module loads it: a slice of it here; the calls, in the list."""
    asked = []

    def load(split, data_dir, download=True):
        asked.append((split, data_dir, download))
        return test_slice
    monkeypatch.setattr(shipped, "load_mnist", load)
    return asked


def _encoded(enc: dict, model, test_slice) -> None:
    x, y = test_slice
    mu, lv = encode_dataset(model, x)
    assert enc["source"] == "MNIST test set"
    np.testing.assert_array_equal(enc["z_mean"], mu)
    np.testing.assert_array_equal(enc["z_log_var"], lv)
    np.testing.assert_array_equal(enc["label"], y.numpy())


def test_encodings_older_than_the_shipped_model_are_used_only_without_mnist(assets, tmp_path, loads, test_slice):
    _age(assets / "test_encodings.npz", 60)
    enc = shipped.encodings_for(assets / "cvae_mnist.pt", tmp_path / "no-mnist", _never)
    assert enc["source"] == "assets/test_encodings.npz" and loads == []
    model = load_checkpoint(assets / "cvae_mnist.pt")
    _encoded(shipped.encodings_for(assets / "cvae_mnist.pt", DATA_DIR, lambda: model), model, test_slice)
    assert loads == [("test", DATA_DIR, False)]


def test_encodings_of_the_shipped_model_newer_than_it_are_used_even_with_mnist(assets, loads):
    _age(assets / "cvae_mnist.pt", 60)
    assert shipped.encodings_for(assets / "cvae_mnist.pt", DATA_DIR, _never)["source"] == "assets/test_encodings.npz"


def test_encodings_written_in_the_same_instant_as_the_model_are_current(assets, loads):
    """As files unpacked from an archive are: one time for all."""
    t = (assets / "cvae_mnist.pt").stat().st_mtime_ns
    os.utime(assets / "test_encodings.npz", ns=(t, t))
    assert shipped.encodings_for(assets / "cvae_mnist.pt", DATA_DIR, _never)["source"] == "assets/test_encodings.npz"
    assert loads == []


def test_another_model_and_a_shipped_model_without_its_file_are_encoded_from_mnist(assets, tmp_path, loads,
                                                                                   test_slice):
    torch.manual_seed(3)
    other = CVAE().eval()
    path = save_checkpoint(other, tmp_path / "other.pt")
    _encoded(shipped.encodings_for(path, tmp_path / "no-mnist", lambda: other), other, test_slice)
    (assets / "test_encodings.npz").unlink()
    model = load_checkpoint(assets / "cvae_mnist.pt")
    _encoded(shipped.encodings_for(assets / "cvae_mnist.pt", DATA_DIR, lambda: model), model, test_slice)


def test_the_shipped_encodings_are_the_files(assets):
    enc = shipped.shipped_encodings()
    np.testing.assert_array_equal(enc["z_mean"], read_encodings(assets / "test_encodings.npz")["z_mean"])


# --------------------------------------------------------------------------- the machine and the card


def test_the_machine_is_described_by_its_cpu_model_and_counts(monkeypatch):
    text = shipped.machine_description()
    assert text.startswith(f"{platform.system()} {platform.machine()}, ")
    assert text.endswith(f", {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
                         + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))

    class CpuInfo(list):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def cpuinfo(path, *args, **kwargs):
        assert path == "/proc/cpuinfo"
        return CpuInfo(["processor\t: 0\n", "model name\t: Example CPU 9000 @ 2.0GHz: rev 2 \n", "model name\t: b\n"])
    monkeypatch.setattr(shipped, "open", cpuinfo, raising=False)
    assert ", Example CPU 9000 @ 2.0GHz: rev 2, " in shipped.machine_description()

    monkeypatch.setattr(platform, "processor", lambda: "aarch64-like")
    monkeypatch.setattr(shipped, "open", lambda path: CpuInfo(["processor\t: 0\n", "BogoMIPS\t: 48.00\n"]),
                        raising=False)
    assert ", aarch64-like, " in shipped.machine_description()  # a cpuinfo without a model name, as on ARM

    def unreadable(*args, **kwargs):
        raise PermissionError("no /proc here")
    monkeypatch.setattr(shipped, "open", unreadable, raising=False)
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert f"{platform.machine()}, {platform.machine()}, " in shipped.machine_description()
    monkeypatch.setattr(platform, "processor", lambda: "x86_64-like")
    assert ", x86_64-like, " in shipped.machine_description()


def test_a_ship_writes_the_model_its_encodings_and_a_card_of_its_record(tmp_path, loads, test_slice):
    torch.manual_seed(5)
    model = CVAE()
    history = [{"epoch": 1, "val_loss": 190.0, "seconds": 1.25}, {"epoch": 2, "val_loss": 180.0, "seconds": 2.5},
               {"epoch": 3, "val_loss": 185.0, "seconds": 2.5}]
    ckpt = save_checkpoint(model, tmp_path / "run.pt", train_config={"seed": 7, "epochs": 3}, history=history,
                           extra={"command": "python -m cvae train --epochs 3", "best_epoch": 2,
                                  "wall_seconds": 12.345, "machine": "a laptop", "init_from": "earlier.pt"})
    folder = tmp_path / "out" / "assets"
    card = shipped.build_assets(ckpt, "DATA", folder, download=False)
    assert loads == [("test", "DATA", False)]
    assert sorted(p.name for p in folder.iterdir()) == ["cvae_mnist.pt", "model_card.json", "test_encodings.npz"]
    assert (folder / "cvae_mnist.pt").read_bytes() == ckpt.read_bytes()
    x, y = test_slice
    enc = read_encodings(folder / "test_encodings.npz")
    np.testing.assert_array_equal(enc["z_mean"], encode_dataset(model, x)[0])
    np.testing.assert_array_equal(enc["label"], y.numpy())
    meta = load_checkpoint(ckpt).meta
    res = evaluate(model.eval(), x, seed=0)
    assert card == {
        "checkpoint": "cvae_mnist.pt", "encodings": "test_encodings.npz",
        "architecture": "Chollet's Keras CVAE, PyTorch port", "model_config": model.config.to_dict(),
        "parameters": count_parameters(model), "command": "python -m cvae train --epochs 3",
        "train_config": {"seed": 7, "epochs": 3}, "seed": 7, "epochs_run": 3, "best_epoch": 2,
        "wall_seconds": 12.3, "machine": "a laptop", "trained_with": meta["versions"], "evaluated_with": versions(),
        "test_loss": res["loss"], "recon": res["recon"], "kl": res["kl"],
        "evaluation": "mean over the 10,000 MNIST test digits of 784*BCE + KL, one z sample per image, seed 0",
        "final_epoch": history[-1], "created": meta["created"], "init_from": "earlier.pt"}
    assert json.loads((folder / "model_card.json").read_text()) == card


def test_a_ship_of_a_bare_run_fills_the_card_from_what_it_has(tmp_path, loads):
    # Its time is the sum of its epochs' (an epoch without one, as another tool writes it, counts none).
    history = [{"epoch": 1, "val_loss": 190.0, "seconds": 1.25}, {"epoch": 2, "val_loss": 180.0, "seconds": 2.5},
               {"epoch": 3, "val_loss": 170.0}]
    ckpt = save_checkpoint(CVAE(), tmp_path / "assets" / "cvae_mnist.pt", history=history)
    before = ckpt.stat().st_mtime_ns
    card = shipped.build_assets(ckpt, "DATA", tmp_path / "assets", train_command="python -m cvae x")
    assert loads == [("test", "DATA", True)]
    assert ckpt.stat().st_mtime_ns == before  # shipped in place: the checkpoint is not written again
    assert card["command"] == "python -m cvae x" and card["seed"] is None and card["best_epoch"] is None
    assert card["wall_seconds"] == 3.8 and card["machine"] == shipped.machine_description()
    assert "init_from" not in card
    card = shipped.build_assets(save_checkpoint(CVAE(), tmp_path / "empty.pt"), "D", tmp_path / "e")
    assert card["final_epoch"] is None and card["epochs_run"] == 0 and card["wall_seconds"] == 0
    assert card["command"] is None


def test_a_files_sha256_is_its_bytes(tmp_path):
    path = tmp_path / "big.bin"
    data = np.random.default_rng(0).bytes(3 * 2**20 + 17)  # several read blocks and a bit
    path.write_bytes(data)
    assert shipped.file_sha256(path) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- the shipped film


def test_the_shipped_film_is_for_its_checkpoint_alone_and_read_once(assets, tmp_path, monkeypatch):
    reads = []
    real = Film.load_npz
    monkeypatch.setattr(Film, "load_npz", classmethod(lambda cls, *a, **k: reads.append(a) or real(*a, **k)))
    ckpt = assets / "cvae_mnist.pt"
    film = shipped.shipped_film_for(ckpt)
    assert isinstance(film, Film) and len(reads) == 1
    assert shipped.shipped_film_for(str(ckpt)) is film and len(reads) == 1
    for nothing in (None, tmp_path / "missing.pt", tmp_path):
        assert shipped.shipped_film_for(nothing) is None
    # Another checkpoint at the same path: asked again, not the shipped film.
    save_checkpoint(load_checkpoint(ckpt), ckpt)
    assert shipped.shipped_film_for(ckpt) is None


def test_another_file_of_the_same_size_and_time_is_asked_about_on_its_own(assets, tmp_path):
    ckpt = assets / "cvae_mnist.pt"
    data = bytearray(ckpt.read_bytes())
    data[-100] ^= 0xFF  # one byte of the zip's directory changed: another file, its size and time the same
    other = tmp_path / "other.pt"
    other.write_bytes(bytes(data))
    t = ckpt.stat().st_mtime_ns
    os.utime(ckpt, ns=(t, t))
    os.utime(other, ns=(t, t))
    assert shipped.shipped_film_for(ckpt) is not None
    assert shipped.shipped_film_for(other) is None


def test_a_shipped_film_stamped_for_another_file_or_unreadable_or_missing_is_not_shown(assets):
    ckpt = assets / "cvae_mnist.pt"
    film = Film.load_npz(assets / "film.npz")
    assert shipped.shipped_film_for(ckpt) is not None
    film.save_npz(assets / "film.npz", {**film.info, "checkpoint_sha256": "0" * 64})
    assert shipped.shipped_film_for(ckpt) is None
    (assets / "film.npz").write_bytes(b"not a film")
    assert shipped.shipped_film_for(ckpt) is None
    (assets / "film.npz").unlink()
    assert shipped.shipped_film_for(ckpt) is None


def test_the_replay_is_the_models_own_film_else_the_shipped_one_with_the_reason(assets, tmp_path):
    film = Film.load_npz(assets / "film.npz")
    own = load_checkpoint(save_checkpoint(CVAE(), tmp_path / "own.pt", film=film))
    r = shipped.replay_for(own)
    assert r.film is own.meta["film"] and r.shipped is False and r.problem is None
    r = shipped.replay_for(load_checkpoint(assets / "cvae_mnist.pt"))
    assert isinstance(r.film, Film) and r.shipped is True and r.problem is None
    assert shipped.replay_for(CVAE()) == shipped.Replay(None, False, None)  # a model with no file
    damaged = load_checkpoint(save_checkpoint(CVAE(latent_dim=3), tmp_path / "bad.pt", film=film))
    r = shipped.replay_for(damaged)
    assert r.film is None and r.shipped is False and r.problem == damaged.meta["film_problem"] and r.problem


def test_shipping_a_film_stamps_it_with_the_shipped_checkpoint_and_the_run(assets, tmp_path):
    film = Film.load_npz(assets / "film.npz")
    run = save_checkpoint(CVAE(), tmp_path / "run.pt", film=film, train_config={"recipe": "fast", "seed": 4},
                          history=[{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
                          extra={"command": "python -m cvae train --recipe fast", "best_val_loss": 150.5,
                                 "wall_seconds": 60.0, "film_seconds": 2.5, "machine": "a laptop"})
    path, back = shipped.ship_film(run, out=tmp_path / "film.npz", shipped_checkpoint=assets / "cvae_mnist.pt")
    assert path == tmp_path / "film.npz" and np.array_equal(back.z, film.z)
    assert back.info == {"checkpoint_sha256": hashlib.sha256((assets / "cvae_mnist.pt").read_bytes()).hexdigest(),
                         "separate_run": True, "source": "run.pt", "command": "python -m cvae train --recipe fast",
                         "recipe": "fast", "seed": 4, "epochs": 3, "best_val_loss": 150.5, "wall_seconds": 60.0,
                         "film_seconds": 2.5, "machine": "a laptop", "created": load_checkpoint(run).meta["created"],
                         "snapshots": len(film)}
    # The run is the shipped checkpoint itself; the command given wins; the default place is assets/.
    path, back = shipped.ship_film(run, shipped_checkpoint=run, command="python -m cvae train")
    assert path == assets / "film.npz"
    assert back.info["separate_run"] is False and back.info["command"] == "python -m cvae train"
    assert back.info["checkpoint_sha256"] == shipped.file_sha256(run)
    # Stamped for the shipped checkpoint unless told another.
    _, back = shipped.ship_film(run, out=tmp_path / "f2.npz")
    assert back.info["checkpoint_sha256"] == shipped.file_sha256(assets / "cvae_mnist.pt")


def test_a_run_without_a_film_has_none_to_ship_and_says_why(tmp_path):
    plain = save_checkpoint(CVAE(), tmp_path / "plain.pt")
    with pytest.raises(FilmError) as info:
        shipped.ship_film(plain, out=tmp_path / "f.npz")
    assert str(info.value) == f"{plain}: no film to ship (no snapshots)"
    bad = save_checkpoint(CVAE(latent_dim=3), tmp_path / "bad.pt", film=Film.load_npz(shipped.SHIPPED_FILM))
    with pytest.raises(FilmError) as info:
        shipped.ship_film(bad, out=tmp_path / "f.npz")
    assert str(info.value) == f"{bad}: no film to ship ({load_checkpoint(bad).meta['film_problem']})"
    assert not (tmp_path / "f.npz").exists()
