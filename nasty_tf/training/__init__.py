"""Training jobs: `train`, `train_nasty`, `distill`, `evaluate`, their configs, and the evaluation
helpers (`predict_logits`, `accuracy_percent`, `adversarial_kl`) that the jobs, protocols and
data-free attacks share."""

from nasty_tf.training.checkpoints import load_network
from nasty_tf.training.config import DistillConfig, NastyConfig, TrainConfig
from nasty_tf.training.evaluation import accuracy_percent, adversarial_kl, predict_logits
from nasty_tf.training.jobs import distill, evaluate, load_data, train, train_nasty
from nasty_tf.training.optimizers import ReferenceAdam, ReferenceSGD

__all__ = [
    "DistillConfig",
    "NastyConfig",
    "ReferenceAdam",
    "ReferenceSGD",
    "TrainConfig",
    "distill",
    "evaluate",
    "load_data",
    "load_network",
    "accuracy_percent",
    "adversarial_kl",
    "predict_logits",
    "train",
    "train_nasty",
]
