"""The semi-supervised SMILES VAE and its property heads."""

from .checkpoint import CheckpointError, LoadedRun, load_run
from .vae import BatchNoise, SmilesVAE

__all__ = ["BatchNoise", "CheckpointError", "LoadedRun", "SmilesVAE", "load_run"]
