"""CVAE Latent Explorer: the tutorial's convolutional VAE on MNIST, in PyTorch.

- ``cvae.core``: the model, its data, latent maths, checkpoints, the film's data, shipped files;
- ``cvae.training``: the training loop, its callbacks, the hardware set-up, training jobs;
- ``cvae.draw``: Plotly figures and Pillow renderings (PNG, GIF);
- ``cvae.cli``: ``python -m cvae``.

The core and training never import the drawing layer (``tests/test_layers.py``).
"""

from .core import __version__
from .core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .core.data import DataMissingError, load_mnist, resolve_data_dir
from .core.latent import decode_grid, decode_point, decode_points, encode_dataset, evaluate
from .core.model import CVAE, ModelConfig, count_parameters, kl_divergence, pick_device, reparameterize, vae_loss
from .training.callbacks import StopTraining
from .training.config import DEFAULT_RECIPE, RECIPES, TrainConfig
from .training.loop import TrainResult, train

__all__ = [
    "CVAE", "ModelConfig", "CheckpointError", "DataMissingError", "DEFAULT_RECIPE", "RECIPES", "StopTraining",
    "TrainConfig", "TrainResult", "__version__", "count_parameters", "decode_grid", "decode_point",
    "decode_points", "encode_dataset", "evaluate", "kl_divergence", "load_checkpoint",
    "load_mnist", "pick_device", "reparameterize", "resolve_data_dir", "save_checkpoint",
    "train", "vae_loss",
]
