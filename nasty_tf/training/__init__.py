"""Training jobs: `train`, `train_nasty`, `distill`, `evaluate`, and their configs."""

from nasty_tf.training.checkpoints import load_network
from nasty_tf.training.config import DistillConfig, NastyConfig, TrainConfig
from nasty_tf.training.jobs import distill, evaluate, load_data, train, train_nasty
from nasty_tf.training.optimizers import ReferenceSGD

__all__ = [
    "DistillConfig",
    "NastyConfig",
    "ReferenceSGD",
    "TrainConfig",
    "distill",
    "evaluate",
    "load_data",
    "load_network",
    "train",
    "train_nasty",
]
