"""CVAE Latent Explorer: the tutorial's convolutional VAE on MNIST, in PyTorch."""

__version__ = "0.1.0"

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DataMissingError, load_mnist, resolve_data_dir
from .latent import decode_grid, decode_point, decode_points, encode_dataset, evaluate
from .model import CVAE, ModelConfig, count_parameters, kl_divergence, pick_device, reparameterize, vae_loss
from .train import DEFAULT_RECIPE, RECIPES, StopTraining, TrainConfig, TrainResult, train

__all__ = [
    "CVAE", "ModelConfig", "CheckpointError", "DataMissingError", "DEFAULT_RECIPE", "RECIPES", "StopTraining",
    "TrainConfig", "TrainResult", "count_parameters", "decode_grid", "decode_point",
    "decode_points", "encode_dataset", "evaluate", "kl_divergence", "load_checkpoint",
    "load_mnist", "pick_device", "reparameterize", "resolve_data_dir", "save_checkpoint",
    "train", "vae_loss",
]
