"""Command line: ``python -m cvae train|evaluate|encode|ship|film|site|import``.

Errors a person can fix (missing data, bad checkpoint, bad option) print one clear
message to stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_USAGE = 2


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .training.config import BUDGET_RECIPE, DEFAULT_RECIPE, RECIPES

    p = argparse.ArgumentParser(prog="python -m cvae", description="The tutorial's CVAE on MNIST.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and save a checkpoint",
                       description="Train the CVAE on MNIST and save the best epoch's weights (atomically).")
    t.add_argument("--data-dir", help="MNIST folder (holds MNIST/raw); default $CVAE_DATA or a cache folder")
    t.add_argument("--out", required=True, help="checkpoint file to write (best epoch, written atomically)")
    t.add_argument("--recipe", choices=sorted(RECIPES),
                   help=f"preset of the options below (default {DEFAULT_RECIPE}; with --seconds, {BUDGET_RECIPE}); "
                        + "; ".join(f"{k}: {v}" for k, v in RECIPES.items()))
    t.add_argument("--init", metavar="CHECKPOINT",
                   help="start from this checkpoint's weights and architecture (fine-tuning) instead of "
                        "a fresh model")
    t.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    r = t.add_argument_group("research options", "the recipe's schedule and regularisation, and how the CPU "
                                                  "computes (docs/model-card.md, docs/performance.md)")
    _config_options(t, r)

    e = sub.add_parser("evaluate", help="test-set loss of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data-dir")
    e.add_argument("--seed", type=int, default=0, help="seed of the one z sample per image")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    e.add_argument("--no-download", action="store_true")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    c = sub.add_parser("encode", help="write the test set's encodings (z_mean, z_log_var, label) to .npz")
    c.add_argument("checkpoint")
    c.add_argument("--data-dir")
    c.add_argument("--out", required=True)
    c.add_argument("--no-download", action="store_true")

    s = sub.add_parser("ship", help="make a checkpoint the app's shipped model: copy it into assets/ with "
                                    "its test encodings and a model card")
    s.add_argument("checkpoint")
    s.add_argument("--data-dir")
    s.add_argument("--assets", default="assets")
    s.add_argument("--train-command", help="the command that trained it (default: read from the checkpoint)")
    s.add_argument("--no-download", action="store_true")

    f = sub.add_parser("film", help="render a checkpoint's training film (how its latent space formed) as an "
                                    "animated GIF; the shipped model's is the film shipped beside it")
    f.add_argument("checkpoint")
    f.add_argument("--out", help="GIF file to write (one frame per snapshot)")
    f.add_argument("--frame-ms", type=_positive_int, default=500, help="milliseconds per frame (default 500)")
    f.add_argument("--ship", action="store_true",
                   help="also write the film to assets/film.npz as the shipped model's film (a separate run "
                        "of its recipe; the page says so)")
    w = sub.add_parser("site", help="write a static explorer of a checkpoint (no server: any static host, a "
                                    "ZIP, or opened as a file)",
                       description="Write the explorer of CHECKPOINT as a self-contained static site: index.html, "
                                   "its script and styles, the decoder's weights and the test digits' encodings. "
                                   "Serve it with `python -m http.server -d DIR`, or open DIR/index.html.")
    w.add_argument("checkpoint", help="a checkpoint, or any model file `python -m cvae import` reads (converted "
                                      "first)")
    w.add_argument("--out", required=True, help="the folder to write (refused when it exists and is not empty)")
    w.add_argument("--data-dir", help="MNIST folder: the test digits shown when one is clicked, and the encodings "
                                      "of a model other than the shipped one")
    w.add_argument("--force", action="store_true", help="replace the folder --out if it holds files")

    i = sub.add_parser("import", help="convert your own model (the Keras tutorial's weights, a PyTorch "
                                      "state_dict or checkpoint) into this app's checkpoint",
                       description="Read FILE, a model of the Keras tutorial's architecture: Keras 3 weights "
                                   "(vae.save_weights(\"vae.weights.h5\")), a Keras 3 archive "
                                   "(vae.save(\"vae.keras\")), TF 2 / Keras 2 weights (.h5), a PyTorch "
                                   "state_dict or a checkpoint of this app; check it and write it as a checkpoint "
                                   "that every command and the app open. Nothing in the file is ever run.")
    i.add_argument("file")
    i.add_argument("--out", required=True, help="checkpoint file to write (atomically; nothing is written when "
                                                "FILE is refused)")
    return p


_PARSE = {"int": (int, "a whole number"), "float": (float, "a number"), "str": (str, "")}


def _parser_of(kind: str):
    convert, what = _PARSE[kind]

    def parse(text: str):
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def _config_options(main, research) -> None:
    """``train``'s options, one per field of TrainConfig that has a help text: its name, type,
    choices and help come from the field; unset, it keeps the recipe's value; its checks are
    TrainConfig's own (a bad value is the config's ValueError, exit 2)."""
    from .training.config import cli_fields

    for f in cli_fields():
        meta = f.metadata
        group = research if meta["research"] else main
        if meta["flag"]:  # a switch that turns a default-on field off
            group.add_argument(meta["flag"], dest=f.name, action="store_const", const=not f.default,
                               default=None, help=meta["help"])
            continue
        kind = str(f.type).split(" |")[0]
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_parser_of(kind),
                           choices=meta["choices"], metavar=meta["metavar"], help=meta["help"])


def config_from_args(args):
    """The TrainConfig that ``train``'s options ask for: unset options keep the recipe's values; the
    recipe is --recipe, else the quick recipe for a time budget (--seconds), else the default."""
    from .training.config import BUDGET_RECIPE, DEFAULT_RECIPE, ConfigError, TrainConfig, cli_fields

    recipe = args.recipe or (BUDGET_RECIPE if args.seconds is not None else DEFAULT_RECIPE)
    try:
        return TrainConfig.from_recipe(recipe, **{f.name: getattr(args, f.name) for f in cli_fields()})
    except ConfigError as exc:  # name the option, as argparse does for the values it refuses
        raise ValueError(f"--{exc.field.replace('_', '-')}: {exc}") from None


def _cmd_train(args) -> int:
    from .core.data import load_mnist
    from .core.latent import collapse_message
    from .core.model import pick_device
    from .core.shipped import machine_description
    from .training.hardware import describe_precision
    from .training.loop import train

    cfg = config_from_args(args)
    model, init_from = None, None
    if args.init:
        from .core.checkpoint import load_checkpoint

        model = load_checkpoint(args.init)
        prev = model.meta.get("extra", {})
        init_from = {"checkpoint": str(args.init), "command": prev.get("command"),
                     "epochs": len(model.meta.get("history", [])), "best_val_loss": prev.get("best_val_loss"),
                     "wall_seconds": prev.get("wall_seconds")}
        print(f"Starting from {args.init} ({init_from['epochs']} epochs, "
              f"val_loss {prev.get('best_val_loss')})", flush=True)
    train_x, _ = load_mnist("train", args.data_dir, download=not args.no_download)
    test_x, test_y = load_mnist("test", args.data_dir, download=not args.no_download)
    n = min(len(train_x), cfg.limit or len(train_x))
    print(f"Training on {n} images, validating on {len(test_x)}; recipe {cfg.recipe}: "
          f"batch {cfg.batch_size}, lr {cfg.lr}, {cfg.optimizer}, {cfg.schedule}"
          + (f" after a warm-up over {cfg.warmup:.0%} of the steps" if cfg.warmup and cfg.schedule == "cosine" else "")
          + (f", for {cfg.seconds:g} s" if cfg.seconds else f", up to {cfg.epochs} epochs")
          + ", "
          f"patience {cfg.patience or 'off'}, seed {cfg.seed}"
          + (f", weight decay {cfg.weight_decay}" if cfg.weight_decay else "")
          + (f", EMA {cfg.ema}" if cfg.ema else "")
          + (f", augment {cfg.augment} (rotate {cfg.rotate}, zoom {cfg.zoom})" if cfg.augment else "")
          + f"; {describe_precision(cfg.precision, pick_device(cfg.device))}",
          flush=True)
    meta = {"command": "python -m cvae " + " ".join(sys.argv[1:] if argv_is_cli() else []),
            "machine": machine_description()}
    if init_from:
        meta["init_from"] = init_from
    def warn_short_plan(event: dict) -> None:  # the budget's plan, a second into the run
        if event["kind"] == "plan" and event["warning"]:
            print(f"warning: {event['warning']}", flush=True)

    result = train(cfg, train_x, test_x, model=model, out=args.out, progress=not args.quiet, started=args.started,
                   log=lambda line: print(line, flush=True), meta=meta, test_y=test_y, callback=warn_short_plan)
    print(result.message)
    if result.spread is not None:
        print("Latent spread (std of z_mean over 2,000 test digits): "
              + ", ".join(f"z{k + 1} {v:.3f}" for k, v in enumerate(result.spread)))
        if (warning := collapse_message(result.spread)) is not None:
            print(f"warning: {warning}")
    if result.film is not None:
        secs = result.film.info.get("record_seconds", 0.0)
        print(f"Film: {len(result.film)} snapshots of {result.film.z.shape[1]} test digits, recorded in "
              f"{secs:.1f}s ({secs / max(result.seconds, 1e-9):.1%} of the run); replay it in the app or with "
              f"`python -m cvae film {args.out} --out film.gif`")
    if result.best_epoch is None:
        print(f"error: no epoch finished, nothing saved to {args.out}", file=sys.stderr)
        return 1
    print(f"Saved the best model (epoch {result.best_epoch}, val_loss {result.best_val_loss:.4f}) "
          f"to {args.out} in {result.seconds:.1f}s")
    return 1 if result.stop_reason == "nan" else 0


def argv_is_cli() -> bool:
    return bool(sys.argv) and sys.argv[0].endswith(("__main__.py", "cvae"))


def _cmd_evaluate(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.data import load_mnist
    from .core.latent import evaluate
    from .core.model import pick_device

    model = load_checkpoint(args.checkpoint, device=pick_device(args.device))
    test_x, _ = load_mnist("test", args.data_dir, download=not args.no_download)
    t0 = time.perf_counter()
    res = evaluate(model, test_x, seed=args.seed)
    secs = time.perf_counter() - t0
    print(f"{args.checkpoint}: test_loss {res['loss']:.4f} (recon {res['recon']:.4f} + kl {res['kl']:.4f}) "
          f"over {res['n']} test images, seed {args.seed}, {secs:.1f}s")
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "test_loss": res["loss"], "recon": res["recon"],
                          "kl": res["kl"], "n": res["n"], "seed": args.seed}))
    return 0


def _cmd_encode(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.data import load_mnist
    from .core.encodings import write_encodings

    model = load_checkpoint(args.checkpoint)
    test_x, test_y = load_mnist("test", args.data_dir, download=not args.no_download)
    path = write_encodings(model, test_x, test_y, args.out)
    print(f"wrote {path} ({Path(path).stat().st_size / 1e3:.0f} kB)")
    return 0


def _cmd_ship(args) -> int:
    from .core.shipped import build_assets

    card = build_assets(args.checkpoint, args.data_dir, args.assets, train_command=args.train_command,
                        download=not args.no_download)
    print(f"shipped {args.checkpoint} to {args.assets}/: test_loss {card['test_loss']:.4f} "
          f"(recon {card['recon']:.4f} + kl {card['kl']:.4f})")
    return 0


def _cmd_film(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.files import atomic_write
    from .core.shipped import replay_for, ship_film
    from .draw.film import film_gif

    if not args.out and not args.ship:
        print("error: say where to write the film: --out FILE.gif (and/or --ship)", file=sys.stderr)
        return EXIT_USAGE
    model = load_checkpoint(args.checkpoint)
    if args.ship:
        if model.meta.get("film") is None:
            problem = model.meta.get("film_problem") or "it has no snapshots"
            print(f"error: {args.checkpoint}: no film of its own to ship ({problem})", file=sys.stderr)
            return EXIT_USAGE
        path, shipped = ship_film(args.checkpoint)
        print(f"wrote {path}: {len(shipped)} snapshots, {path.stat().st_size / 1e3:.0f} kB, for the shipped "
              f"model (sha256 {shipped.info['checkpoint_sha256'][:12]}...)")
    if not args.out:
        return 0
    replay = replay_for(model)  # its own film, or the shipped film made for this very file
    film = replay.film
    if film is None:
        problem = replay.problem
        print(f"error: {args.checkpoint}: " + (f"its film cannot be read ({problem})" if problem else
              "this checkpoint has no training film (it was trained with --no-film, or by a version that "
              "recorded none); retrain it with `python -m cvae train` to record one"), file=sys.stderr)
        return EXIT_USAGE
    data = film_gif(film, frame_ms=args.frame_ms)
    try:
        out = atomic_write(args.out, data)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    source = " (the film shipped beside this model: a separate run of its recipe)" if replay.shipped else ""
    print(f"wrote {out}: {len(film)} frames (epoch {film.epoch[0]:.2f} to {film.epoch[-1]:.2f}), "
          f"{len(data) / 1e3:.0f} kB{source}")
    return 0


def _cmd_import(args) -> int:
    from .core.importer import import_model

    out, imported = import_model(args.file, args.out)
    notes = "".join(f"; {n}" for n in imported.notes)
    print(f"wrote {out}: {imported.description}, {sum(p.numel() for p in imported.model.parameters()):,} "
          f"parameters, {imported.model.latent_dim}-D latent space{notes}")
    return 0


def _cmd_site(args) -> int:
    import tempfile

    from .core.importer import import_model, is_checkpoint
    from .site import write_site

    try:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = args.checkpoint
            if not is_checkpoint(checkpoint):  # another kind of model file: converted first
                checkpoint, _ = import_model(checkpoint, Path(tmp) / f"{Path(checkpoint).name.split('.')[0]}.pt")
            out, files = write_site(checkpoint, args.out, args.data_dir, force=args.force)
    except FileExistsError as exc:
        print(f"error: {exc}; choose another folder or pass --force to replace it", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    size = sum(len(b) for b in files.values())
    originals = ("with the test digits' originals" if "digits.png" in files
                 else "without the test digits' originals (no MNIST here)")
    print(f"Wrote {out}/: {len(files)} files, {size / 1e6:.2f} MB, {originals}. "
          f"Serve it with `python -m http.server -d {out}`, or open {out}/index.html.")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .core.checkpoint import CheckpointError
    from .core.data import DataMissingError

    from .training.budget import process_started

    started = process_started()  # a time budget counts from here: starting Python and loading the data are part of it
    args = build_parser().parse_args(argv)
    args.started = started
    try:
        return {"train": _cmd_train, "evaluate": _cmd_evaluate, "encode": _cmd_encode, "ship": _cmd_ship,
                "film": _cmd_film, "site": _cmd_site, "import": _cmd_import}[args.command](args)
    except (DataMissingError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
