"""Make tests/golden/keras_tutorial/: the Keras tutorial's own VAE, trained one epoch, as its readers save it.

The model, the sampling layer, the loss and the training are the code of Chollet's keras.io
example "Variational AutoEncoder" (Keras 3), with the additions a reader needs to save the
whole model and to call ``evaluate``: the ``call`` of the example's TF 2 version, a ``get_config``
(``vae.save`` refuses a model built from arguments without one), and a ``test_step`` that
computes the same losses as its ``train_step``. It is trained
for one epoch (batch 128) on the 60,000 MNIST training digits, and saved the three ways its
readers save it:

- ``vae.weights.h5``: ``vae.save_weights(...)`` in Keras 3;
- ``vae.keras``: ``vae.save(...)`` in Keras 3 (the whole model, optimizer state included);
- ``vae_legacy.h5``: ``vae.save_weights(...)`` in TF 2 / Keras 2 (tf_keras), after the same
  weights are copied into the tutorial's Keras 2 model, layer by layer;

and ``outputs.npz``: Keras' own z_mean and z_log_var for 8 MNIST test digits (stored by index;
no MNIST pixels are kept), its decoder's images for 8 latent points, and ``evaluate``'s loss,
reconstruction loss and KL over the 10,000 test digits (from several runs: the loss samples z),
with the versions that made them. tests/test_importer.py holds the imported model to them.

TensorFlow is a dev-only tool here, never a runtime or CI requirement::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu tf-keras
    nice /tmp/tfvenv/bin/python tools/keras_tutorial.py --data-dir ../shared/mnist
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "golden" / "keras_tutorial"
TEST_INDICES = [0, 1, 2, 3, 4, 7, 8, 18]  # 8 test digits: 7 2 1 0 4 9 5 3
Z_POINTS = [[0.0, 0.0], [1.0, -0.5], [-2.0, 1.5], [3.0, 3.0], [-3.0, -2.5], [0.25, 2.0], [-0.7, -0.1], [6.0, -4.0]]
EVAL_RUNS = 5


def read_idx(path: Path):
    """An MNIST idx file (images: (N, 28, 28) float32 in [0, 1]; labels: (N,) uint8)."""
    import numpy as np

    raw = path.read_bytes()
    magic = int.from_bytes(raw[:4], "big")
    n = int.from_bytes(raw[4:8], "big")
    if magic == 2051:
        return np.frombuffer(raw, np.uint8, n * 784, 16).reshape(n, 28, 28).astype("float32") / 255
    if magic == 2049:
        return np.frombuffer(raw, np.uint8, n, 8)
    raise ValueError(f"{path} is not an MNIST idx file")


def tutorial_keras3():
    """The keras.io example's model (Keras 3), as written there, plus ``test_step``."""
    import keras
    from keras import layers, ops
    import tensorflow as tf

    class Sampling(layers.Layer):
        """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = ops.shape(z_mean)[0]
            dim = ops.shape(z_mean)[1]
            epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    latent_dim = 2

    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def vae_losses(self, data):
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss

        def report(self, total_loss, reconstruction_loss, kl_loss):
            self.total_loss_tracker.update_state(total_loss)
            self.reconstruction_loss_tracker.update_state(reconstruction_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            return {"loss": self.total_loss_tracker.result(),
                    "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                    "kl_loss": self.kl_loss_tracker.result()}

        def train_step(self, data):
            with tf.GradientTape() as tape:
                total_loss, reconstruction_loss, kl_loss = self.vae_losses(data)
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return self.report(total_loss, reconstruction_loss, kl_loss)

        def get_config(self):  # vae.save() needs it (the explorer never reads the config)
            return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                    "decoder": keras.saving.serialize_keras_object(self.decoder)}

        def call(self, x):  # as in the example's TF 2 version: saving needs a built model
            z_mean, z_log_var, z = self.encoder(x)
            return self.decoder(z)

        def test_step(self, data):  # the one addition: evaluate() with the tutorial's loss
            if isinstance(data, tuple):
                data = data[0]
            return self.report(*self.vae_losses(data))

    return VAE(encoder, decoder)


def tutorial_keras2():
    """The keras.io example's model as written for TF 2 / Keras 2 (tf_keras), for its .h5 layout."""
    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import layers

    class Sampling(layers.Layer):
        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = tf.shape(z_mean)[0]
            dim = tf.shape(z_mean)[1]
            epsilon = keras.backend.random_normal(shape=(batch, dim))
            return z_mean + tf.exp(0.5 * z_log_var) * epsilon

    latent_dim = 2
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder

        def call(self, x):
            z_mean, z_log_var, z = self.encoder(x)
            return self.decoder(z)

    vae = VAE(encoder, decoder)
    vae(tf.zeros((1, 28, 28, 1)))  # built
    return vae


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("CVAE_DATA") or str(REPO.parent / "shared" / "mnist"))
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, help="train on the first N training digits only (a quick try of the tool)")
    args = p.parse_args(argv)

    import numpy as np
    import keras
    import tensorflow as tf
    import tf_keras

    keras.utils.set_random_seed(0)
    raw = Path(args.data_dir) / "MNIST" / "raw"
    x_train = read_idx(raw / "train-images-idx3-ubyte")[..., None]
    x_test = read_idx(raw / "t10k-images-idx3-ubyte")[..., None]
    x_train = x_train[: args.limit]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    vae = tutorial_keras3()
    vae.compile(optimizer=keras.optimizers.Adam())
    vae.fit(x_train, epochs=args.epochs, batch_size=128, verbose=2)
    vae(x_test[:1])  # built (a subclassed model is built by its first call)

    # The two lines a tutorial reader adds (Keras 3).
    vae.save_weights(str(out / "vae.weights.h5"))
    vae.save(str(out / "vae.keras"))

    # The Keras 2 layout: the same weights in the tutorial's TF 2 model, saved by tf_keras.
    old = tutorial_keras2()
    for new_part, old_part in ((vae.encoder, old.encoder), (vae.decoder, old.decoder)):
        for new_layer, old_layer in zip(new_part.layers, old_part.layers, strict=True):
            assert type(new_layer).__name__ == type(old_layer).__name__, (new_layer, old_layer)
            if old_layer.weights:  # Keras 3's sampling layer holds its seed; Keras 2's holds nothing
                old_layer.set_weights(new_layer.get_weights())
    old.save_weights(str(out / "vae_legacy.h5"))

    digits = x_test[TEST_INDICES]
    z_mean, z_log_var, _ = (np.asarray(t, np.float32) for t in vae.encoder(digits, training=False))
    z = np.asarray(Z_POINTS, np.float32)
    decoded = np.asarray(vae.decoder(z, training=False), np.float32)[..., 0]
    # Keras 2's model computes the same numbers from its own file.
    check = tutorial_keras2()
    check.load_weights(str(out / "vae_legacy.h5"))
    legacy_err = float(np.abs(np.asarray(check.decoder(z), np.float32)[..., 0] - decoded).max())

    runs = [vae.evaluate(x_test, batch_size=128, verbose=0, return_dict=True) for _ in range(EVAL_RUNS)]
    loss = np.array([r["loss"] for r in runs], np.float64)
    recon = np.array([r["reconstruction_loss"] for r in runs], np.float64)
    kl = np.array([r["kl_loss"] for r in runs], np.float64)
    np.savez_compressed(
        out / "outputs.npz", test_indices=np.array(TEST_INDICES, np.int64), z_mean=z_mean, z_log_var=z_log_var,
        z_points=z, decoded=decoded, eval_loss=loss, eval_recon=recon, eval_kl=kl,
        eval_images=np.array("the 10,000 MNIST test digits (t10k-images-idx3-ubyte), batch 128"),
        epochs=np.int64(args.epochs),
        made_with=np.array(f"tensorflow {tf.__version__}, keras {keras.__version__}, tf_keras {tf_keras.__version__}, "
                           f"numpy {np.__version__}, python {sys.version.split()[0]}"))
    for f in sorted(out.iterdir()):
        print(f"{f.name}: {f.stat().st_size:,} bytes")
    print(f"evaluate loss {loss.mean():.4f} (runs {np.round(loss, 4).tolist()}), recon {recon.mean():.4f}, "
          f"kl {kl.mean():.4f}; legacy .h5 reloaded in Keras 2 decodes within {legacy_err:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
