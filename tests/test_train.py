"""cvae.training: training on real MNIST (a slice, to stay fast)."""

import importlib
import math
import os

import pytest
import torch

from cvae import CVAE, TrainConfig, evaluate, load_checkpoint, load_mnist

from cvae import train
from devkit import DATA_DIR, needs_data
from stepcheck import shard_reference, split_step

pytestmark = needs_data


@pytest.fixture(scope="module")
def data():
    train_x, _ = load_mnist("train", DATA_DIR, download=False, limit=3000)
    test_x, test_y = load_mnist("test", DATA_DIR, download=False)
    return train_x, test_x[:1000], test_y[:1000]


@pytest.mark.slow  # a two-epoch training
def test_short_training_lowers_the_test_loss(data, tmp_path):
    train_x, test_x, _ = data
    cfg = TrainConfig(epochs=2, batch_size=64, lr=2e-3, patience=0, seed=0)
    torch.manual_seed(cfg.seed)
    before = evaluate(CVAE(), test_x)["loss"]
    res = train(cfg, train_x, test_x, out=tmp_path / "m.pt")
    after = evaluate(res.model, test_x)["loss"]
    assert after < before - 150, (before, after)
    assert len(res.history) == 2 and res.stop_reason == "completed"
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert [h["epoch"] for h in loaded.meta["history"]] == [1, 2]
    assert loaded.meta["train_config"]["batch_size"] == 64
    assert evaluate(loaded, test_x)["loss"] == pytest.approx(res.best_val_loss, rel=1e-6)


@pytest.mark.slow  # a training of five epochs
def test_callback_reports_progress_and_can_stop(data):
    train_x, test_x, _ = data
    events = []

    def cb(ev):
        events.append(ev)
        return not (ev["kind"] == "step" and ev["epoch"] == 2 and ev["step"] == 3)

    res = train(TrainConfig(epochs=5, batch_size=256, patience=0), train_x, test_x, callback=cb)
    assert res.stop_reason == "stopped"
    assert res.best_epoch == 1 and len(res.history) == 1
    steps = [e for e in events if e["kind"] == "step"]
    assert steps[0]["steps"] == 12 and steps[-1]["step"] == 3


@pytest.mark.slow  # two trainings on 1,024 images
def test_seeded_runs_are_reproducible(data):
    """With the way of computing a step fixed (--workers, --precision): by default the pacer picks it
    from the machine's pace at the moment (tests/test_pace.py)."""
    train_x, test_x, _ = data
    cfg = TrainConfig(epochs=1, batch_size=128, seed=7, limit=1024, workers=2, precision="fp32")
    a = train(cfg, train_x, test_x)
    b = train(cfg, train_x, test_x)
    assert a.history[0]["val_loss"] == b.history[0]["val_loss"]
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k


@pytest.mark.slow  # a training of up to 10 epochs
def test_early_stopping_stops_after_patience_and_keeps_the_best_epoch(data):
    train_x, test_x, _ = data
    # With a negligible learning rate no epoch beats the first by min_delta: stale twice.
    cfg = TrainConfig(epochs=10, batch_size=500, lr=1e-9, patience=2, min_delta=1.0, seed=0, limit=1000)
    res = train(cfg, train_x, test_x)
    assert res.stop_reason == "early_stopping"
    assert len(res.history) == 3 and res.best_epoch == 1
    assert evaluate(res.model, test_x)["loss"] == pytest.approx(res.history[0]["val_loss"], rel=1e-6)


@pytest.mark.slow  # two trainings
def test_ema_keeps_the_moving_average_of_the_raw_trajectory(data):
    train_x, test_x, _ = data
    decay = 0.8
    # The raw run: averaging never changes the trajectory, so record its weights after each step.
    raw_model = CVAE()
    torch.manual_seed(0)
    start = {k: v.clone() for k, v in CVAE().state_dict().items()}
    raw_model.load_state_dict(start)
    trail = []
    raw = train(TrainConfig(epochs=1, batch_size=256, patience=0), train_x, test_x, model=raw_model,
                callback=lambda ev: trail.append({k: v.detach().clone() for k, v in raw_model.state_dict().items()})
                if ev["kind"] == "step" else None)
    expected = dict(trail[0])
    for w in trail[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * w[k] for k in expected}

    ema_model = CVAE()
    ema_model.load_state_dict(start)
    res = train(TrainConfig(epochs=1, batch_size=256, patience=0, ema=decay), train_x, test_x, model=ema_model)
    got = res.model.state_dict()
    assert len(trail) == 12
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-6)
    # The averaged weights are what is validated; the raw ones are logged beside them.
    assert res.history[0]["val_loss_raw"] == pytest.approx(raw.history[0]["val_loss"], rel=1e-6)
    assert res.history[0]["val_loss"] == pytest.approx(evaluate(res.model, test_x)["loss"], rel=1e-6)
    assert res.history[0]["val_loss"] != pytest.approx(res.history[0]["val_loss_raw"], rel=1e-4)


@pytest.mark.slow  # a training
def test_weight_decay_shrinks_the_weights(data):
    train_x, test_x, _ = data
    norms = {}
    for wd in (0.0, 1.0):
        torch.manual_seed(0)
        res = train(TrainConfig(epochs=1, batch_size=32, patience=0, weight_decay=wd), train_x[:1024], test_x)
        norms[wd] = sum(p.detach().pow(2).sum() for p in res.model.parameters()).sqrt().item()
    assert norms[1.0] < 0.99 * norms[0.0], norms


@pytest.mark.parametrize("bad, words", [
    (dict(weight_decay=-0.1), "weight decay"), (dict(weight_decay=0.01, optimizer="rmsprop"), "adam"),
    (dict(ema=1.0), "ema"), (dict(ema=float("nan")), "ema"),
    (dict(augment=1.5), "augment"), (dict(rotate=-1), "rotate"), (dict(zoom=1.0), "zoom"),
])
def test_bad_averaging_options_are_refused(bad, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**bad)


@pytest.mark.parametrize("path, channels_last", [("stock", False), ("stock", True), ("gemm-float32", True)])
def test_split_batch_gives_the_whole_batch_gradient(data, path, channels_last):
    """Two threads, one shard each: the summed shard gradients equal one backward pass over
    the batch with the same noise per shard (each shard draws from its own generator), in the
    parameters' own layout, so an optimizer step from them is the same step. On PyTorch's stock
    layers and on cvae.training.gemm's products (in float32, to compare with autograd)."""
    train_x, _, _ = data
    torch.manual_seed(0)
    model = CVAE()
    model.decoder.channels_last = channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = train_x[:37].contiguous(memory_format=fmt)  # odd size: shards of 19 and 18
    parts, got = split_step(model, x, 2, dtype=torch.float32 if path == "gemm-float32" else None)
    for name, p in model.named_parameters():
        # Fused Adam reads .grad as if laid out like the parameter (channels_last weight
        # gradients from autograd.grad once scrambled the transposed convolutions' updates).
        assert p.grad.stride() == p.stride(), name
    ref = shard_reference(model, x, 2)
    for (name, _p), g, r in zip(model.named_parameters(), got, ref["grads"]):
        if path == "stock":
            torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6, msg=name)
        else:  # the products sum in another order: within 1e-5 of the gradient's norm (tests/test_gemm.py)
            assert ((g - r).norm() / r.norm()).item() < 1e-5, name
    assert parts[0].item() == pytest.approx(ref["loss"], rel=1e-6)
    assert parts[1].item() == pytest.approx(ref["recon"], rel=1e-6)

    if path != "stock":
        return
    # One fused AdamW step from each set of gradients lands on the same weights (Adam divides by
    # each gradient's own scale, so this holds the stock path's exact sums, not the products' order).
    after = []
    for grads in (got, ref["grads"]):
        copy = CVAE()
        copy.load_state_dict(model.state_dict())
        for p, g in zip(copy.parameters(), grads):
            p.grad = g.clone(memory_format=torch.preserve_format)
        torch.optim.AdamW(copy.parameters(), lr=1e-3, fused=True).step()
        after.append([p.detach().clone() for p in copy.parameters()])
    for a, b in zip(*after):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_augmented_training_scores_the_augmented_images(data):
    """With augmentation the encoder sees the turned/zoomed images and the loss scores their
    reconstruction (one more training image each); about the chosen share differ from x."""
    train_x, _, _ = data
    x = train_x[:200]
    torch.manual_seed(0)
    model = CVAE()
    seen = []
    hook = model.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    try:
        parts, _ = split_step(model, x, 1, augment=(0.5, 8.0, 0.06))
    finally:
        hook.remove()
    changed = (seen[0] != x).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.6
    # The same draws by hand: augment with the shard's generator, then the loss of those images.
    from cvae.training.augment import random_affine

    g = torch.Generator().manual_seed(5 + 1)
    xa = random_affine(x, g, 0.5, 8.0, 0.06)
    torch.testing.assert_close(seen[0], xa)
    assert parts[0].item() == pytest.approx(model.loss(xa, generator=g).loss.item(), rel=1e-5)


@pytest.mark.slow  # three trainings
def test_split_training_is_reproducible_and_restores_threads(data, monkeypatch):
    cvae_train = importlib.import_module("cvae.training.loop")  # the module; cvae.train is the function

    train_x, test_x, _ = data
    threads = torch.get_num_threads()
    eval_threads, step_threads = [], []
    real_evaluate = cvae_train.evaluate
    monkeypatch.setattr(cvae_train, "evaluate",
                        lambda *a, **k: eval_threads.append(torch.get_num_threads()) or real_evaluate(*a, **k))
    cb = lambda ev: step_threads.append(torch.get_num_threads()) if ev["kind"] == "step" else None  # noqa: E731
    cfg = TrainConfig(epochs=2, batch_size=33, seed=3, limit=500, workers=2)  # last batch: 5 images
    a, b = train(cfg, train_x, test_x, callback=cb), train(cfg, train_x, test_x)
    assert torch.get_num_threads() == threads
    # Steps run one intra-op thread per shard; evaluation (one big batch) gets them all back.
    assert set(step_threads) == {1} and eval_threads == [threads] * 4
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k
    # More workers than images in a batch: the extra threads get no shard.
    c = train(TrainConfig(epochs=1, batch_size=2, seed=3, limit=6, workers=4), train_x, test_x)
    assert c.history[0]["images"] == 6 and math.isfinite(c.history[0]["val_loss"])


class _InTurn:
    """A stand-in for ThreadPoolExecutor that runs each submitted shard at once, in the caller."""

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*args))
        return f

    def shutdown(self, wait=True):
        pass


@pytest.mark.slow  # two trainings on 1,600 images
def test_split_threads_train_like_the_same_split_run_in_turn(data, monkeypatch):
    """Many steps with the shards on two threads at once land on the same weights as the
    same shards run one after the other: nothing shared between the threads races."""
    cvae_step = importlib.import_module("cvae.training.step")
    train_x, test_x, _ = data
    cfg = TrainConfig(epochs=1, batch_size=32, seed=7, limit=1600, workers=2)  # 50 steps
    together = train(cfg, train_x, test_x[:200])
    monkeypatch.setattr(cvae_step, "ThreadPoolExecutor", _InTurn)
    in_turn = train(cfg, train_x, test_x[:200])
    assert together.history[0]["loss"] == pytest.approx(in_turn.history[0]["loss"], rel=1e-5)
    for (k, v), (_, w) in zip(together.model.state_dict().items(), in_turn.model.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=1e-4, atol=1e-5, msg=k)


def test_learning_rate_schedule_warms_up_then_follows_the_cosine():
    from cvae.training.config import lr_factor

    cos = TrainConfig(schedule="cosine", warmup=0.1)
    f = [lr_factor(cos, s, 100) for s in range(100)]
    # Linear rise over the first 10 steps, reaching the full rate at step 10 ...
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert f[10] == pytest.approx(1.0)
    # ... then half a cosine down towards zero over the remaining 90.
    assert f[10 + 45] == pytest.approx(0.5, abs=1e-9)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.001
    assert [lr_factor(TrainConfig(schedule="cosine"), s, 100) for s in (0, 50)] == pytest.approx([1.0, 0.5])
    assert lr_factor(TrainConfig(schedule="constant", warmup=0.1), 0, 100) == 1.0
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(warmup=1.0)


_FAULTS_SCRIPT = """
import importlib, resource, sys, torch
if sys.argv[1] == "tuned":
    assert importlib.import_module("cvae.training.hardware").keep_freed_memory()
def step():  # like a training step: several MiB-sized buffers alive at once, then all freed
    bufs = [torch.empty(2 << 20, dtype=torch.uint8).fill_(1) for _ in range(4)]
    del bufs
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not (os.name == "posix" and __import__("platform").libc_ver()[0] == "glibc"),
                    reason="the malloc setting is for glibc")
@pytest.mark.slow  # counts page faults over repeated steps in three child processes
def test_keep_freed_memory_stops_the_page_faults_of_each_step():
    """With the trainer's malloc setting, a step's freed buffers are reused: (almost) no page
    faults, where glibc's defaults give the pages back and fault them in again each step."""
    import subprocess
    import sys

    # glibc's defaults move the mmap threshold up to the size of a block once it is freed, so
    # whether they keep a step's blocks depends on where the heap lies (3 runs here: 40,320,
    # 40,320 and 0 faults). Both children start from the default's first threshold (128 KiB),
    # fixed by its environment variable, which also stops that drift: the default then faults
    # every time, and the trainer's setting, called after, must still keep the blocks.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 << 10)}

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], capture_output=True, text=True, env=env,
                             check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return int(out.stdout.split()[-1])

    default = faults("default")
    assert default > 10_000, default  # 20 steps of 8 MiB: 40,960 pages if every one faulted
    tuned = [faults("tuned") for _ in range(2)]
    assert max(tuned) < 100, (default, tuned)
    assert importlib.import_module("cvae.training.hardware").keep_freed_memory()  # idempotent
