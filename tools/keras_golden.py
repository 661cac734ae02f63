"""Make tests/golden/keras_cvae.npz: the tutorial's real Keras model on seeded weights.

tests/test_keras_alignment.py holds the PyTorch port to this file within 1e-5, so a change
to the port's padding, crop, flatten order or activations shows up as a failing test. The
file is a few tens of KB: the seed (the weights are regenerated from it, in Keras' layout,
by :func:`seeded_weights`), the Keras weight names and shapes, the indices of 8 MNIST test
images (no MNIST pixels are stored) with the Keras encoder's z_mean and z_log_var for them,
the same for 8 synthetic images (regenerated from a seed by :func:`synthetic_images`),
and 8 latent points with the Keras decoder's images for them.

TensorFlow is a dev-only tool here, never a runtime or CI requirement. Rerun with::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy
    /tmp/tfvenv/bin/python tools/keras_golden.py --data-dir ../shared/mnist

The model is Chollet's "Variational AutoEncoder" Keras example, as docs/model-card.md
describes it: Conv2D(32, 3, strides 2, same, relu) -> Conv2D(64, 3, strides 2, same, relu)
-> Flatten -> Dense(16, relu) -> z_mean, z_log_var (Dense(2) each); Dense(7*7*64, relu) ->
Reshape((7, 7, 64)) -> Conv2DTranspose(64, 3, strides 2, same, relu) -> Conv2DTranspose(32,
3, strides 2, same, relu) -> Conv2DTranspose(1, 3, same, sigmoid). Layers are named like the
PyTorch modules. Numpy only at import time (the test imports :func:`seeded_weights` and
:func:`synthetic_images`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "golden" / "keras_cvae.npz"
SEED = 20240516
# 8 MNIST test images (one of each of several digits) and 8 latent points, some far out.
TEST_INDICES = [0, 1, 2, 3, 4, 7, 8, 18]
Z_POINTS = [[0.0, 0.0], [1.0, -0.5], [-2.0, 1.5], [3.0, 3.0], [-3.0, -2.5], [0.25, 2.0], [-0.7, -0.1], [6.0, -4.0]]


def seeded_weights(seed: int, names: list[str], shapes: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
    """float32 weights in Keras' layouts, in the given order, from numpy's legacy RandomState
    (its stream is frozen across numpy versions): kernels He-uniform (limit sqrt(6 / fan_in),
    so signals keep their scale through the ReLUs and the outputs vary), biases uniform in
    +-0.1 (non-zero, so every bias is exercised)."""
    rs = np.random.RandomState(seed)
    out = {}
    for name, shape in zip(names, shapes):
        shape = tuple(int(s) for s in shape)
        if name.endswith("bias"):
            out[name] = rs.uniform(-0.1, 0.1, shape).astype(np.float32)
        else:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            # Keras kernels are (..., in, out) except Conv2DTranspose's (kh, kw, out, in).
            fan_in = receptive * shape[-1 if ".deconv" in name else -2]
            limit = np.sqrt(6.0 / fan_in)
            out[name] = rs.uniform(-limit, limit, shape).astype(np.float32)
    return out


def synthetic_images(seed: int, n: int = 8) -> np.ndarray:
    """(n, 28, 28) float32 MNIST-like inputs (half the pixels exactly 0) from RandomState(seed):
    they check the encoder where MNIST is not at hand."""
    x = np.random.RandomState(seed).uniform(0, 1, (n, 28, 28)).astype(np.float32)
    x[x < 0.5] = 0.0
    return x


def read_idx_images(path: Path) -> np.ndarray:
    """An MNIST idx3 file -> (N, 28, 28) float32 in [0, 1] (pixel / 255, as cvae.data does)."""
    raw = path.read_bytes()
    if int.from_bytes(raw[:4], "big") != 2051:
        raise ValueError(f"{path} is not an idx3 image file")
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw, np.uint8, n * h * w, 16).reshape(n, h, w).astype(np.float32) / 255.0


def build_keras(latent_dim: int = 2):
    import keras
    from keras import layers

    enc_in = keras.Input(shape=(28, 28, 1))
    h = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same", name="conv1")(enc_in)
    h = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same", name="conv2")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(16, activation="relu", name="dense")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    encoder = keras.Model(enc_in, [z_mean, z_log_var], name="encoder")

    dec_in = keras.Input(shape=(latent_dim,))
    h = layers.Dense(7 * 7 * 64, activation="relu", name="dense")(dec_in)
    h = layers.Reshape((7, 7, 64))(h)
    h = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same", name="deconv1")(h)
    h = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same", name="deconv2")(h)
    out = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same", name="deconv3")(h)
    decoder = keras.Model(dec_in, out, name="decoder")
    return encoder, decoder


def _named_weights(model, prefix: str) -> list[tuple[str, object]]:
    """[(f"{prefix}.{layer}.{kernel|bias}", variable)] in the model's layer order."""
    out = []
    for layer in model.layers:
        for v in layer.weights:
            kind = "bias" if "bias" in v.path.split("/")[-1] else "kernel"
            out.append((f"{prefix}.{layer.name}.{kind}", v))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("CVAE_DATA") or str(REPO.parent / "shared" / "mnist"))
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    encoder, decoder = build_keras()
    named = _named_weights(encoder, "encoder") + _named_weights(decoder, "decoder")
    names = [n for n, _ in named]
    shapes = [tuple(v.shape) for _, v in named]
    weights = seeded_weights(SEED, names, shapes)
    for name, v in named:
        v.assign(weights[name])

    images = read_idx_images(Path(args.data_dir) / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    x = images[TEST_INDICES][..., None]  # NHWC
    z_mean, z_log_var = (np.asarray(t, np.float32) for t in encoder(x, training=False))
    synth_mean, synth_log_var = (np.asarray(t, np.float32)
                                 for t in encoder(synthetic_images(SEED + 1)[..., None], training=False))
    z = np.asarray(Z_POINTS, np.float32)
    decoded = np.asarray(decoder(z, training=False), np.float32)[..., 0]  # (8, 28, 28)

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, seed=np.int64(SEED), names=np.array(names), shapes=np.array([",".join(map(str, s)) for s in shapes]),
        test_indices=np.array(TEST_INDICES, np.int64), z_mean=z_mean, z_log_var=z_log_var,
        synthetic_seed=np.int64(SEED + 1), synthetic_z_mean=synth_mean, synthetic_z_log_var=synth_log_var,
        z_points=z, decoded=decoded.astype(np.float32),
        made_with=np.array(f"tensorflow {tf.__version__}, keras {keras.__version__}, numpy {np.__version__}"))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes): z_mean range "
          f"[{z_mean.min():.3f}, {z_mean.max():.3f}], decoded range [{decoded.min():.3f}, {decoded.max():.3f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
