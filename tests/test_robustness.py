"""Robustness and security: hostile files, faults during training, bad values.

Every refusal must be one line that names the file, and must lose nothing: a previous
checkpoint stays byte-for-byte intact, training keeps its best weights so far.
Run: python -m pytest tests/test_robustness.py
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import cvae.core.checkpoint as ck
import cvae.core.files as files
from cvae import CVAE, CheckpointError, DataMissingError, TrainConfig, decode_grid, decode_points, load_checkpoint, load_mnist, save_checkpoint, train
from cvae.cli import main as cli_main
from cvae.core.latent import grid_points, MAX_GRID_N

from devkit import DATA_DIR as DATA, EVIL_KINDS, REPO as ROOT, require_data, write_evil


# --------------------------------------------------------------------------- helpers


def assert_one_line_naming(message: str, path) -> None:
    """A message for people: one line, names the file, no traceback."""
    message = str(message).strip()
    assert "\n" not in message, f"not one line: {message!r}"
    assert str(path) in message, f"does not name {path}: {message!r}"
    assert "Traceback" not in message
    assert len(message) < 500, message


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real command line in a fresh interpreter (`python -m cvae ...`)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "cvae", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.pt"
    torch.manual_seed(0)
    save_checkpoint(CVAE(), path, train_config={"epochs": 1}, history=[{"epoch": 1, "val_loss": 200.0}])
    return path


def tamper(src: Path, dst: Path, change) -> Path:
    """Read a valid checkpoint's payload, let ``change`` edit it, write it to ``dst``."""
    payload = torch.load(src, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, dst)
    return dst


@pytest.fixture(scope="module")
def mnist():
    require_data()
    train_x, _ = load_mnist("train", DATA, download=False, limit=256)
    test_x, _ = load_mnist("test", DATA, download=False, limit=300)
    return train_x, test_x


# --------------------------------------------------------------------------- code in a pickle


@pytest.mark.parametrize("kind", EVIL_KINDS)
def test_code_in_pickle_is_refused_and_never_runs(tmp_path, kind):
    target = tmp_path / "pwned.txt"
    evil = write_evil(kind, tmp_path / "evil.pt", target)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(evil)
    assert not target.exists(), "the pickle ran code while loading"
    assert_one_line_naming(info.value, evil)
    assert "refused" in str(info.value) and "nothing was run" in str(info.value)


def test_the_evil_pickle_is_live(tmp_path):
    """Control: an unsafe load of the same file *does* write the file, so the test above can fail."""
    target = tmp_path / "pwned.txt"
    evil = write_evil("exec-torch-zip", tmp_path / "evil.pt", target)
    torch.load(evil, weights_only=False)
    assert target.read_text() == "pwned"


def test_cli_refuses_code_in_pickle(tmp_path):
    target = tmp_path / "pwned.txt"
    evil = write_evil("exec-torch-zip", tmp_path / "evil.pt", target)
    proc = run_cli("evaluate", str(evil), "--data-dir", str(DATA), "--no-download", "--device", "cpu")
    assert proc.returncode == 2, proc.stderr
    assert not target.exists(), "the CLI ran code from the checkpoint"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert_one_line_naming(lines[0], evil)
    assert "refused" in lines[0]


def test_cli_encode_refuses_code_in_pickle(tmp_path, capsys):
    target = tmp_path / "pwned.txt"
    evil = write_evil("system-torch-zip", tmp_path / "evil.pt", target)
    out = tmp_path / "enc.npz"
    assert cli_main(["encode", str(evil), "--out", str(out), "--data-dir", str(DATA), "--no-download"]) == 2
    assert not target.exists() and not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert_one_line_naming(err, evil)


# --------------------------------------------------------------------------- broken and foreign files


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, format="PNG")
    return buf.getvalue()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a model")
    return buf.getvalue()


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, z_mean=np.zeros((3, 2), np.float32))
    return buf.getvalue()


BROKEN_BYTES = {
    "empty": lambda good: b"",
    "one-byte": lambda good: b"\x80",
    "truncated-half": lambda good: good[: len(good) // 2],
    "truncated-head": lambda good: good[:100],
    "truncated-last-byte": lambda good: good[:-1],
    "random-bytes": lambda good: random.Random(7).randbytes(4096),
    "random-after-zip-magic": lambda good: b"PK\x03\x04" + random.Random(8).randbytes(4096),
    "corrupted-middle": lambda good: good[:2000] + bytes(4000) + good[6000:],
    "json": lambda good: json.dumps({"latent_dim": 2}).encode(),
    "text": lambda good: b"hello, I am not a model\n",
    "png": lambda good: _png_bytes(),
    "zip-of-text": lambda good: _zip_bytes(),
    "numpy-npz": lambda good: _npz_bytes(),
}


# What the message says, where one word tells the person what is wrong.
BROKEN_WORDS = {"empty": "the file is empty", "truncated-half": "truncated", "truncated-last-byte": "truncated"}


@pytest.mark.parametrize("kind", sorted(BROKEN_BYTES))
def test_broken_and_foreign_files_give_one_line_naming_the_file(tmp_path, good_ckpt, kind):
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(BROKEN_BYTES[kind](good_ckpt.read_bytes()))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_naming(info.value, path)
    assert info.value.path == str(path)
    assert BROKEN_WORDS.get(kind, "") in str(info.value)


def _drop_decoder(p):
    p["state_dict"] = {k: v for k, v in p["state_dict"].items() if k.startswith("encoder.")}


def _extra_weight(p):
    p["state_dict"]["encoder.backdoor.weight"] = torch.zeros(3)


def _narrow_filters_weights(p):
    p["state_dict"] = CVAE(filters=(16, 32)).state_dict()


def _latent3_weights(p):  # config says 2-D, weights are a 3-D model's
    p["state_dict"] = CVAE(latent_dim=3).state_dict()


def _nan_weight(p):
    p["state_dict"]["decoder.dense.bias"][0] = float("nan")


def _int_weight(p):
    p["state_dict"]["decoder.dense.bias"] = p["state_dict"]["decoder.dense.bias"].to(torch.int64)


TAMPERED = {
    "foreign-format": lambda p: p.update(format="someone-else/model"),
    "future-format-version": lambda p: p.update(format_version=99),
    "no-model-config": lambda p: p.pop("model_config"),
    "model-config-not-a-dict": lambda p: p.update(model_config=[2, 32, 64, 16]),
    "unknown-config-key": lambda p: p["model_config"].update(layers=7),
    "latent-dim-zero": lambda p: p["model_config"].update(latent_dim=0),
    "latent-dim-huge": lambda p: p["model_config"].update(latent_dim=10**9),
    "latent-dim-text": lambda p: p["model_config"].update(latent_dim="two"),
    "filters-text": lambda p: p["model_config"].update(filters=["a", "b"]),
    "no-weights": lambda p: p.pop("state_dict"),
    "weights-not-tensors": lambda p: p.update(state_dict={"encoder.conv1.weight": [1, 2, 3]}),
    "missing-decoder": _drop_decoder,
    "unexpected-weight": _extra_weight,
    "wrong-architecture-filters": _narrow_filters_weights,
    "wrong-latent-size": _latent3_weights,
    "nan-weight": _nan_weight,
    "integer-weight": _int_weight,
}


TAMPERED_WORDS = {"foreign-format": "not a checkpoint of this app", "future-format-version": "not supported",
                  "wrong-latent-size": "shape", "nan-weight": "NaN", "integer-weight": "not floating point",
                  "unexpected-weight": "do not fit the architecture", "missing-decoder": "do not fit the architecture"}


@pytest.mark.parametrize("kind", sorted(TAMPERED))
def test_wrong_contents_give_one_line_naming_the_file(tmp_path, good_ckpt, kind):
    path = tamper(good_ckpt, tmp_path / f"{kind}.pt", TAMPERED[kind])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_naming(info.value, path)
    assert TAMPERED_WORDS.get(kind, "") in str(info.value)


def test_wrong_latent_size_says_which_shapes(tmp_path, good_ckpt):
    path = tamper(good_ckpt, tmp_path / "latent3.pt", _latent3_weights)
    with pytest.raises(CheckpointError, match=r"shape"):
        load_checkpoint(path)


def test_huge_config_in_a_tiny_file_allocates_nothing(tmp_path, good_ckpt):
    """A 1 kB file asking for a ~400 MB model is refused at once, without building it."""
    def huge(p):
        p["model_config"] = {"latent_dim": 64, "filters": [512, 512], "dense": 4096}
        p["state_dict"] = {"encoder.conv1.weight": torch.zeros(1)}
    path = tamper(good_ckpt, tmp_path / "huge.pt", huge)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 1.5  # building it would take seconds and ~400 MB
    assert_one_line_naming(info.value, path)


def test_bare_state_dict_is_explained(tmp_path):
    path = tmp_path / "weights_only.pt"
    torch.save(CVAE().state_dict(), path)
    with pytest.raises(CheckpointError, match="bare state_dict") as info:
        load_checkpoint(path)
    assert_one_line_naming(info.value, path)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.pt"
    with open(path, "wb") as fh:  # sparse: takes no disk space
        fh.truncate(ck.MAX_CHECKPOINT_BYTES + 1)
    with pytest.raises(CheckpointError, match="larger than") as info:
        load_checkpoint(path)
    assert_one_line_naming(info.value, path)


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_missing_file_or_folder(tmp_path, kind):
    path = tmp_path / "nope.pt"
    if kind == "folder":
        path.mkdir()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_naming(info.value, path)
    assert ("no such file" if kind == "missing" else "is a folder") in str(info.value)


def test_consistent_other_latent_size_loads_but_grid_refuses(tmp_path):
    """A valid 3-D model is a real checkpoint; the 2-D views refuse it with a clear message."""
    path = save_checkpoint(CVAE(latent_dim=3), tmp_path / "latent3.pt")
    model = load_checkpoint(path)
    assert model.latent_dim == 3
    with pytest.raises(ValueError, match="latent_dim 2"):
        decode_grid(model, n=3)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        decode_points(model, [[0.0, 0.0]])


@pytest.mark.parametrize("kind", ["random-bytes", "truncated-half", "wrong-latent-size"])
def test_cli_broken_checkpoint_is_one_line_exit_2(tmp_path, good_ckpt, capsys, kind):
    path = tmp_path / f"{kind}.pt"
    if kind in BROKEN_BYTES:
        path.write_bytes(BROKEN_BYTES[kind](good_ckpt.read_bytes()))
    else:
        tamper(good_ckpt, path, TAMPERED[kind])
    code = cli_main(["evaluate", str(path), "--data-dir", str(DATA), "--no-download", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert_one_line_naming(err, path)


# --------------------------------------------------------------------------- faults during training


def _corrupt(tensor: torch.Tensor, value: str) -> None:
    tensor.fill_(float(value))


def _train_and_spoil_after_epoch1(tmp_path, train_x, test_x, spoil):
    """Train 4 epochs; after epoch 1, ``spoil()`` ruins the data the loop reads (same storage).
    Returns the result, the weights after epoch 1 and the checkpoint path."""
    out = tmp_path / "run.pt"
    model = CVAE()
    after_epoch1 = {}

    def callback(event):
        if event["kind"] == "epoch" and event["epoch"] == 1:
            after_epoch1.update(state_of(model))
            spoil()

    cfg = TrainConfig(epochs=4, batch_size=64, patience=0, device="cpu")
    res = train(cfg, train_x, test_x, model=model, callback=callback, out=out)
    return res, after_epoch1, out


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_nonfinite_loss_mid_training_keeps_best_weights(tmp_path, mnist, value):
    """Data turn bad after epoch 1: training stops with a message, keeps epoch 1, on disk too."""
    train_x, test_x = mnist[0].clone(), mnist[1]
    res, after_epoch1, out = _train_and_spoil_after_epoch1(tmp_path, train_x, test_x,
                                                           lambda: _corrupt(train_x, value))
    assert res.stop_reason == "nan"
    assert res.best_epoch == 1 and len(res.history) == 1
    assert "loss became" in res.message and "epoch 2" in res.message
    assert "kept the best weights (epoch 1)" in res.message
    final = state_of(res.model)
    assert all(torch.isfinite(v).all() for v in final.values())
    assert same_state(final, after_epoch1)
    saved = load_checkpoint(out)
    assert same_state(state_of(saved), after_epoch1)
    assert saved.meta["extra"]["stop_reason"] == "nan"


def test_nonfinite_val_loss_keeps_best_weights(tmp_path, mnist):
    train_x, test_x = mnist[0], mnist[1].clone()
    res, after_epoch1, out = _train_and_spoil_after_epoch1(tmp_path, train_x, test_x,
                                                           lambda: test_x.fill_(float("nan")))
    assert res.stop_reason == "nan" and "val_loss became nan at epoch 2" in res.message
    assert same_state(state_of(res.model), after_epoch1)
    assert same_state(state_of(load_checkpoint(out)), after_epoch1)


def test_learning_rate_too_high_stops_cleanly_and_keeps_previous_file(tmp_path, mnist):
    """lr=10 blows up within the first epoch: a clear message, finite weights, old file untouched."""
    out = tmp_path / "run.pt"
    save_checkpoint(CVAE(), out)
    before = out.read_bytes()
    model = CVAE()
    initial = state_of(model)
    res = train(TrainConfig(epochs=3, batch_size=64, lr=10.0, patience=0, device="cpu"),
                mnist[0], mnist[1], model=model, out=out)
    assert res.stop_reason == "nan" and res.best_epoch is None
    assert "lower learning rate" in res.message
    final = state_of(res.model)
    assert all(torch.isfinite(v).all() for v in final.values()), "NaN weights were returned"
    assert same_state(final, initial), "the message promises the initial weights"
    assert out.read_bytes() == before, "a run with no finished epoch overwrote the previous checkpoint"


@pytest.mark.parametrize("how", ["return-false", "raise-stop"])
def test_stop_request_keeps_best_weights(tmp_path, mnist, how):
    """The app's stop button goes through the callback: the best epoch so far is kept and saved."""
    from cvae import StopTraining

    out = tmp_path / "run.pt"
    model = CVAE()
    after_epoch1 = {}

    def callback(event):
        if event["kind"] == "epoch" and event["epoch"] == 1:
            after_epoch1.update(state_of(model))
        if event["kind"] == "step" and event["epoch"] == 2 and event["step"] == 2:
            if how == "return-false":
                return False
            raise StopTraining
        return None

    res = train(TrainConfig(epochs=5, batch_size=64, patience=0, device="cpu"), mnist[0], mnist[1],
                model=model, callback=callback, out=out)
    assert res.stop_reason == "stopped" and res.best_epoch == 1
    assert same_state(state_of(res.model), after_epoch1)
    assert same_state(state_of(load_checkpoint(out)), after_epoch1)


def test_crash_in_callback_leaves_best_checkpoint_on_disk(tmp_path, mnist):
    """A session that dies mid-training (any exception) still leaves the best epoch on disk."""
    out = tmp_path / "run.pt"
    model = CVAE()
    after_epoch1 = {}

    def callback(event):
        if event["kind"] == "epoch" and event["epoch"] == 1:
            after_epoch1.update(state_of(model))
        if event["kind"] == "step" and event["epoch"] == 2:
            raise RuntimeError("the browser tab went away")

    with pytest.raises(RuntimeError, match="tab went away"):
        train(TrainConfig(epochs=5, batch_size=64, patience=0, device="cpu"), mnist[0], mnist[1],
              model=model, callback=callback, out=out)
    assert same_state(state_of(load_checkpoint(out)), after_epoch1)


# --------------------------------------------------------------------------- SIGKILL while writing

_STEPPED_WRITER = textwrap.dedent("""
    import io, sys
    import torch
    import cvae.core.checkpoint as ck
    from cvae import CVAE

    real_save = torch.save

    def stepped_save(obj, fh):  # the real bytes, in 16 kB pieces, each one waiting for a go-ahead
        buf = io.BytesIO()
        real_save(obj, buf)
        data = buf.getvalue()
        for i in range(0, len(data), 16384):
            fh.write(data[i:i + 16384])
            fh.flush()
            print("piece", i // 16384, flush=True)
            sys.stdin.readline()

    ck.torch.save = stepped_save
    i = 0
    while True:
        torch.manual_seed(i)
        model = CVAE()
        print("begin", i, flush=True)
        ck.save_checkpoint(model, sys.argv[1], extra={"i": i})
        print("done", i, flush=True)
        i += 1
""")


@pytest.mark.slow  # a training child process, killed while it writes
def test_sigkill_while_writing_leaves_previous_checkpoint(tmp_path):
    """Kill a writer at random points inside a checkpoint write, several times. The writer
    stops after each 16 kB piece until the test answers, so the kill lands exactly after the
    chosen piece (no timing involved)."""
    script = tmp_path / "writer.py"
    script.write_text(_STEPPED_WRITER)
    path = tmp_path / "model.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(int(os.environ.get("ROBUSTNESS_SEED", "1234")))
    for round_ in range(3):
        for stale in tmp_path.glob(".model.pt.*.tmp"):
            stale.unlink()
        proc = subprocess.Popen([sys.executable, str(script), str(path)], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            want = rng.randint(1, 2)  # kill during write number `want` (0-based), after `want` good ones
            piece = rng.randint(0, 30)  # a write is 34 or more pieces
            writing = None
            while True:
                line = proc.stdout.readline().split()
                assert line, f"writer died: {proc.stderr.read()}"
                if line[0] == "begin":
                    writing = int(line[1])
                elif line[0] == "piece":
                    if writing == want and int(line[1]) == piece:
                        break  # the writer waits on its stdin, in the middle of the write
                    proc.stdin.write("\n")
                    proc.stdin.flush()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        leftovers = list(tmp_path.glob(".model.pt.*.tmp"))
        assert leftovers, "the kill did not land inside a write"
        model = load_checkpoint(path)  # intact and loadable
        assert model.meta["extra"]["i"] == want - 1, f"round {round_}: expected the previous checkpoint"
        torch.manual_seed(want - 1)
        assert same_state(state_of(model), state_of(CVAE()))


# --------------------------------------------------------------------------- full disk


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_write_then_enospc(obj, fh, *args, **kwargs):
    buf = io.BytesIO()
    torch.serialization.save(obj, buf)  # the real function, not the patched attribute
    fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
    _enospc()


@pytest.mark.parametrize("where", ["write", "fsync", "mkstemp"])
def test_full_disk_gives_clear_error_and_keeps_previous_file(tmp_path, monkeypatch, where):
    path = tmp_path / "model.pt"
    torch.manual_seed(1)
    save_checkpoint(CVAE(), path)
    before = path.read_bytes()
    if where == "write":
        monkeypatch.setattr(ck.torch, "save", _half_write_then_enospc)
    elif where == "fsync":
        monkeypatch.setattr(ck.os, "fsync", _enospc)
    else:
        monkeypatch.setattr(files.tempfile, "mkstemp", _enospc)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(CVAE(), path)
    monkeypatch.undo()
    msg = str(info.value)
    assert_one_line_naming(msg, path)
    assert "No space left on device" in msg
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"], "a temporary file was left behind"
    load_checkpoint(path)


@pytest.mark.slow  # a training in a process on a full disk
def test_full_disk_during_cli_training_is_exit_2_and_keeps_previous_file(tmp_path, monkeypatch, capsys, mnist):
    out = tmp_path / "run.pt"
    save_checkpoint(CVAE(), out)
    before = out.read_bytes()
    monkeypatch.setattr(ck.os, "fsync", _enospc)
    code = cli_main(["train", "--data-dir", str(DATA), "--no-download", "--out", str(out), "--limit", "128",
                     "--epochs", "1", "--batch-size", "64", "--quiet", "--device", "cpu"])
    monkeypatch.undo()
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "No space left on device" in err
    assert_one_line_naming(err, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def test_saving_where_a_folder_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "sub" / "model.pt"
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(CVAE(), path)
    assert_one_line_naming(info.value, path)
    assert "cannot write here" in str(info.value)


def test_a_training_into_a_folder_it_cannot_make_stops_before_its_first_step(tmp_path):
    """A run whose checkpoint cannot be written says so before it trains, not an epoch later."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "runs" / "model.pt"
    events = []
    x = torch.rand(64, 1, 28, 28)
    with pytest.raises(CheckpointError) as info:
        train(TrainConfig(epochs=1, batch_size=32), x, x[:32], out=path, callback=events.append)
    assert_one_line_naming(info.value, path)
    assert "cannot write here" in str(info.value)
    assert [e for e in events if e.get("kind") == "step"] == []
    assert blocker.read_text() == "x"


# --------------------------------------------------------------------------- bad values

BAD_TRAIN = [
    ("epochs", 0, "epochs"), ("epochs", -3, "epochs"), ("epochs", 2.5, "epochs"), ("epochs", 10**6, "epochs"),
    ("batch_size", 0, "batch size"), ("batch_size", -64, "batch size"),
    ("lr", 0.0, "learning rate"), ("lr", -1e-3, "learning rate"), ("lr", float("nan"), "learning rate"),
    ("lr", float("inf"), "learning rate"), ("patience", -1, "patience"), ("limit", 0, "limit"),
    ("optimizer", "sgd!", "optimizer"), ("schedule", "zigzag", "schedule"),
]


@pytest.mark.parametrize("field,value,words", BAD_TRAIN, ids=[f"{f}={v}" for f, v, _ in BAD_TRAIN])
def test_bad_training_values_are_refused(field, value, words):
    with pytest.raises(ValueError, match=words) as info:
        TrainConfig(**{field: value})
    assert "\n" not in str(info.value) and str(value) in str(info.value)


@pytest.mark.parametrize("option,value,words", [
    ("--epochs", "0", "--epochs: epochs must be 1..10000"), ("--epochs", "-2", "--epochs: epochs must be 1..10000"),
    ("--epochs", "many", "'many' is not a whole number"),
    ("--batch-size", "0", "--batch-size: batch size must be 1..65536"),
    ("--batch-size", "-32", "--batch-size: batch size must be 1..65536"),
    ("--lr", "0", "--lr: learning rate must be in (0, 10]"), ("--lr", "nan", "--lr: learning rate must be in (0, 10]"),
    ("--limit", "0", "--limit: limit must be a positive number"),
])
def test_cli_bad_numbers_exit_2(tmp_path, capsys, option, value, words):
    """Not a number: argparse refuses it; a number out of range: TrainConfig's own check, naming the option."""
    out = tmp_path / "x.pt"
    try:
        code = cli_main(["train", "--out", str(out), "--no-download", option, value])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists()


def test_cli_negative_patience_exit_2(tmp_path, capsys):
    code = cli_main(["train", "--out", str(tmp_path / "x.pt"), "--no-download", "--patience", "-1"])
    assert code == 2 and "patience must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["missing", "empty", "a-file"])
def test_bad_data_dir_is_explained(tmp_path, kind):
    data = tmp_path / "nowhere"
    if kind == "empty":
        data.mkdir()
    elif kind == "a-file":
        data.write_text("not a folder")
    with pytest.raises(DataMissingError) as info:
        load_mnist("test", data, download=False)
    msg = str(info.value)
    assert str(data) in msg and "t10k-images-idx3-ubyte" in msg and "--data-dir" in msg
    assert "\n" not in msg


def test_cli_missing_data_dir_exit_2(tmp_path, capsys, good_ckpt):
    data = tmp_path / "nowhere"
    code = cli_main(["train", "--data-dir", str(data), "--out", str(tmp_path / "x.pt"), "--no-download",
                     "--epochs", "1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(data) in err and "\n" not in err
    assert not (tmp_path / "x.pt").exists()
    code = cli_main(["evaluate", str(good_ckpt), "--data-dir", str(data), "--no-download"])
    assert code == 2 and str(data) in capsys.readouterr().err


@pytest.mark.parametrize("n", [0, -1, MAX_GRID_N + 1, 10**9, float("nan")])
def test_grid_n_out_of_range_is_refused(n):
    with pytest.raises(ValueError):
        grid_points(n)


@pytest.mark.parametrize("z1,z2", [
    ((2.0, -2.0), (-1.0, 3.0)), ((0.0, 0.0), (-1.0, 3.0)), ((-2.0, 2.0), (float("nan"), 3.0)),
    ((-float("inf"), 2.0), (-1.0, 3.0)), ((-2.0, 2.0), (3.0, -1.0)),
])
def test_grid_bad_ranges_are_refused(z1, z2):
    with pytest.raises(ValueError, match="range"):
        grid_points(5, z1, z2)


@pytest.mark.parametrize("z", [[[float("nan"), 0.0]], [[0.0, float("inf")]], [[0.0, 0.0, 0.0]], [[[0.0, 0.0]]]])
def test_decode_refuses_bad_points(z):
    with pytest.raises(ValueError):
        decode_points(CVAE(), z)
