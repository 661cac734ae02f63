"""The command line: errors a person can fix exit 2 with one clear message."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cvae import CVAE, save_checkpoint
from devkit import DATA_DIR, REPO, cli, needs_data


def run_cli(*args, env_extra=None, timeout=600):
    env = dict(os.environ)
    env.pop("CVAE_DATA", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "cvae", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def main_cli(*args) -> tuple[int, str]:
    """`python -m cvae ARGS` in this process (devkit.cli), where the process boundary is not what a
    test checks: the exit code and what went to stderr."""
    r = cli(*args)
    return r.returncode, r.stderr


def test_offline_without_data_is_one_clear_paragraph(tmp_path):
    empty = tmp_path / "no-mnist"
    # The checkpoint is read first; give a real one so the data error is what shows.
    ck = save_checkpoint(CVAE(), tmp_path / "m.pt")
    code, err = main_cli("evaluate", ck, "--data-dir", empty, "--no-download")
    assert code == 2
    err = err.strip()
    assert len(err.splitlines()) == 1
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert f in err
    assert str(empty / "MNIST" / "raw") in err


@pytest.mark.slow  # a process that tries the network and waits for it to refuse
def test_offline_download_attempt_fails_cleanly(tmp_path):
    """With downloading on but no network (this workplace, CI), the same clear error."""
    r = run_cli("train", "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "m.pt"), "--epochs", "1",
                env_extra={"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "could not be downloaded" in r.stderr
    assert not (tmp_path / "m.pt").exists()


def test_bad_checkpoint_exit_code(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, err = main_cli("evaluate", bad, "--data-dir", DATA_DIR)
    assert code == 2
    assert str(bad) in err


@pytest.mark.parametrize("args,names", [
    (["--epochs", "0"], "--epochs"), (["--batch-size", "-3"], "--batch-size"), (["--lr", "nan"], "--lr"),
    (["--augment", "2"], "augment"), (["--augment", "-0.1"], "augment"), (["--warmup", "1.5"], "warmup"),
    (["--warmup", "-0.5"], "warmup"),
])
def test_bad_training_options_are_refused_before_the_data(tmp_path, args, names):
    """A bad option is exit 2 with a message about that option, before MNIST is looked for: the
    data folder here is empty, so a run that got past the check would fail on the data instead
    (also exit 2, but with the MNIST message). In process: an exception would fail the test."""
    code, err = main_cli("train", "--data-dir", tmp_path / "no-mnist", "--no-download",
                         "--out", tmp_path / "m.pt", *args)
    assert code == 2, err[-2000:]
    err = err.strip().splitlines()[-1]
    assert names in err and "MNIST" not in err, err
    assert not (tmp_path / "m.pt").exists()


def test_good_training_options_reach_the_data_check(tmp_path):
    """Control for the test above: the same command with good values fails on the missing data."""
    code, err = main_cli("train", "--data-dir", tmp_path / "no-mnist", "--no-download",
                         "--out", tmp_path / "m.pt", "--augment", "0.5", "--warmup", "0.1")
    assert code == 2 and "MNIST was not found" in err, err[-2000:]


@pytest.mark.slow  # a training in a process
def test_train_then_evaluate_json(tmp_path, small_mnist):
    """`python -m cvae train` as a process, then `evaluate` twice (in this process), on MNIST's first 1,024 training and
    1,000 test images (conftest small_mnist)."""
    out = tmp_path / "m.pt"
    r = run_cli("train", "--data-dir", str(small_mnist), "--out", str(out), "--epochs", "1", "--limit", "512",
                "--batch-size", "64", "--augment", "0.5", "--rotate", "5", "--warmup", "0.1", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Epoch 1/1" in r.stdout and "val_loss" in r.stdout and "augment 0.5 (rotate 5.0, zoom 0.06)" in r.stdout
    assert "cosine after a warm-up over 10% of the steps" in r.stdout
    from cvae import load_checkpoint

    meta = load_checkpoint(out).meta
    cfg = meta["train_config"]
    assert (cfg["augment"], cfg["rotate"], cfg["zoom"], cfg["warmup"]) == (0.5, 5.0, 0.06, 0.1)
    # It trained on the first 512 images of the training split, not of the test split.
    from cvae import load_mnist
    from cvae.core.data import fingerprint

    train_x, test_x = (load_mnist(split, small_mnist, download=False)[0][:512] for split in ("train", "test"))
    assert meta["extra"]["train_images"] == 512
    assert meta["extra"]["train_images_sha256"] == fingerprint(train_x) != fingerprint(test_x)
    r = cli("evaluate", out, "--data-dir", small_mnist, "--json")  # in this process: what it prints is the subject
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"test_loss", "recon", "kl"} <= set(res)
    assert res["test_loss"] == pytest.approx(res["recon"] + res["kl"], rel=1e-5)
    assert res["n"] == 1_000  # the test images of that folder
    # The same seed gives the same figure.
    r2 = cli("evaluate", out, "--data-dir", small_mnist, "--json")
    assert json.loads(r2.stdout.strip().splitlines()[-1])["test_loss"] == res["test_loss"]


@pytest.mark.slow  # a training (in this process: --init is the subject, not the process)
def test_train_init_starts_from_the_checkpoint(tmp_path, small_mnist):
    """--init fine-tunes a checkpoint: its architecture is kept and training starts at its weights."""
    from cvae import load_checkpoint

    torch.manual_seed(3)
    start = CVAE(latent_dim=3)
    save_checkpoint(start, tmp_path / "start.pt", extra={"command": "python -m cvae train (the first run)"})
    out = tmp_path / "tuned.pt"
    r = cli("train", "--data-dir", small_mnist, "--out", out, "--init", tmp_path / "start.pt",
            "--epochs", "1", "--limit", "256", "--batch-size", "64", "--lr", "1e-9", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Starting from" in r.stdout
    tuned = load_checkpoint(out)
    assert tuned.latent_dim == 3
    assert tuned.meta["extra"]["init_from"]["command"] == "python -m cvae train (the first run)"
    for (name, a), b in zip(start.state_dict().items(), tuned.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name  # lr 1e-9: the weights barely move


def test_train_init_from_a_bad_file_is_exit_2(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, err = main_cli("train", "--data-dir", tmp_path, "--out", tmp_path / "o.pt", "--init", bad,
                         "--no-download")
    assert code == 2
    assert "bad.pt" in err and "MNIST" not in err  # the checkpoint is checked before the data


# Every option of `train` and the TrainConfig field it sets (the value given, then the field's).
TRAIN_OPTIONS = [
    ("--recipe", "tutorial", "recipe", "tutorial"), ("--epochs", "3", "epochs", 3),
    ("--batch-size", "16", "batch_size", 16), ("--lr", "0.002", "lr", 0.002), ("--seed", "7", "seed", 7),
    ("--limit", "100", "limit", 100), ("--device", "cpu", "device", "cpu"),
    ("--optimizer", "rmsprop", "optimizer", "rmsprop"), ("--schedule", "constant", "schedule", "constant"),
    ("--warmup", "0.05", "warmup", 0.05), ("--patience", "4", "patience", 4),
    ("--weight-decay", "0.01", "weight_decay", 0.01), ("--ema", "0.99", "ema", 0.99),
    ("--augment", "0.25", "augment", 0.25), ("--rotate", "3", "rotate", 3.0), ("--zoom", "0.1", "zoom", 0.1),
    ("--workers", "2", "workers", 2), ("--precision", "fp32", "precision", "fp32"),
    ("--no-film", None, "film", False),
]


@pytest.mark.parametrize("option, value, field, want", TRAIN_OPTIONS, ids=[o[0] for o in TRAIN_OPTIONS])
def test_each_training_option_sets_its_config_field(option, value, field, want):
    from cvae.cli import build_parser, config_from_args
    from cvae.training.config import TrainConfig

    base = ["train", "--out", "x.pt"]
    given = build_parser().parse_args(base + [option] + ([value] if value is not None else []))
    if option == "--weight-decay":  # AdamW: with adam only
        given.optimizer = "adam"
    cfg = config_from_args(given)
    assert getattr(cfg, field) == want
    default = config_from_args(build_parser().parse_args(base))
    assert getattr(default, field) != want  # the option changed something
    assert isinstance(cfg, TrainConfig)


def test_train_help_puts_the_research_options_in_their_own_group():
    r = cli("train", "--help")
    assert r.returncode == 0
    first, _, research = r.stdout.partition("research options:")
    for opt in ("--data-dir", "--out", "--recipe", "--epochs", "--batch-size", "--lr", "--seed", "--limit",
                "--device"):
        assert opt in first.split("options:", 1)[1], opt
    for opt in ("--ema", "--weight-decay", "--augment", "--optimizer", "--workers", "--precision"):
        assert opt in research and opt not in first.split("options:", 1)[1], opt


def test_film_of_the_shipped_model_is_the_shipped_film(tmp_path):
    from PIL import Image

    from cvae.core.film import Film
    from cvae.core.shipped import SHIPPED_CHECKPOINT, SHIPPED_FILM

    out = tmp_path / "film.gif"
    r = cli("film", SHIPPED_CHECKPOINT, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "shipped beside this model" in r.stdout
    with Image.open(out) as gif:
        assert gif.n_frames == len(Film.load_npz(SHIPPED_FILM))
    # A copy under another name is still the shipped model (same bytes); a resaved one is not.
    other = save_checkpoint(CVAE(), tmp_path / "other.pt")
    r = cli("film", other, "--out", tmp_path / "other.gif")
    assert r.returncode == 2 and "has no training film" in r.stderr
    assert not (tmp_path / "other.gif").exists()


@needs_data
def test_train_names_a_collapsed_dimension(tmp_path, monkeypatch, capsys):
    """The summary after a run gives each dimension's spread and, for one under 0.1, says what
    posterior collapse is and what to do."""
    import cvae.training.loop as loop
    from cvae import CVAE
    from cvae.cli import main
    from cvae.training.loop import TrainResult

    def fake_train(cfg, *args, out=None, **kwargs):
        save_checkpoint(CVAE(), out)
        return TrainResult(model=CVAE(), history=[{"epoch": 1}], best_epoch=1, best_val_loss=200.0,
                           stop_reason="completed", message="finished 1 epochs", seconds=1.0, spread=[1.25, 0.04])

    monkeypatch.setattr(loop, "train", fake_train)
    code = main(["train", "--data-dir", str(DATA_DIR), "--out", str(tmp_path / "m.pt"), "--no-download", "--quiet",
                 "--no-film", "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Latent spread (std of z_mean over 2,000 test digits): z1 1.250, z2 0.040" in out
    assert "warning: Posterior collapse in z2 (spread 0.040)" in out and "Train longer" in out


@pytest.mark.parametrize("given, recipe", [
    (["--seconds", "30"], "quick"), (["--seconds", "30", "--recipe", "fast"], "fast"), ([], "fast"),
    (["--recipe", "tutorial"], "tutorial"),
])
def test_seconds_means_the_quick_recipe_unless_another_is_named(given, recipe):
    from cvae.cli import build_parser, config_from_args
    from cvae.training.config import RECIPES

    cfg = config_from_args(build_parser().parse_args(["train", "--out", "x.pt", *given]))
    assert cfg.recipe == recipe
    assert cfg.lr == RECIPES[recipe]["lr"] and cfg.batch_size == RECIPES[recipe]["batch_size"]
    assert cfg.seconds == (30 if given[:1] == ["--seconds"] else RECIPES[recipe].get("seconds"))


def test_the_options_are_the_configs_fields():
    """One source: every option of `train` that sets a config is a TrainConfig field with its help,
    choices and default; an option name that is not a field is refused by the config itself."""
    from dataclasses import FrozenInstanceError, fields

    from cvae.cli import build_parser
    from cvae.training.config import TrainConfig, cli_fields

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()
                 if "--seconds" in a._option_string_actions)
    for f in cli_fields():
        action = next(a for a in train._actions if a.dest == f.name)
        assert action.help == f.metadata["help"] and action.default is None
        if f.metadata["choices"]:
            assert tuple(action.choices) == tuple(f.metadata["choices"])
    with pytest.raises(ValueError, match="unknown training option 'epoch'"):
        TrainConfig.from_recipe("fast", epoch=3)
    cfg = TrainConfig.from_recipe("fast")
    with pytest.raises(FrozenInstanceError):
        cfg.epochs = 3
    assert {f.name for f in fields(TrainConfig)} >= {f.name for f in cli_fields()}


@needs_data
def test_a_budget_too_short_to_spread_is_a_warning_before_the_run_goes_on(tmp_path, monkeypatch, capsys):
    """The budget's plan reaches the command line as it happens (a second in), not after the run."""
    import cvae.training.loop as loop
    from cvae import CVAE
    from cvae.cli import main
    from cvae.training.loop import TrainResult

    seen_before_end = []

    def fake_train(cfg, *args, out=None, callback=None, **kwargs):
        callback({"kind": "plan", "steps": 250, "needed": 700, "seconds": cfg.seconds,
                  "warning": "This budget fits about 250 training steps in 20 s ..."})
        seen_before_end.append(capsys.readouterr().out)
        save_checkpoint(CVAE(), out)
        return TrainResult(model=CVAE(), history=[{"epoch": 1}], best_epoch=1, best_val_loss=200.0,
                           stop_reason="completed", message="finished 1 epoch", seconds=1.0, spread=[1.0, 1.0])

    monkeypatch.setattr(loop, "train", fake_train)
    assert main(["train", "--data-dir", str(DATA_DIR), "--out", str(tmp_path / "m.pt"), "--no-download", "--quiet",
                 "--no-film", "--seconds", "20"]) == 0
    assert "warning: This budget fits about 250 training steps in 20 s" in seen_before_end[0]
