"""nasty-tf: make a trained classifier undistillable (Ma et al., ICLR 2021), in Keras 3."""

__version__ = "0.1.0"

# `models` registers the legacy layers that files saved before releases were plain Keras hold,
# so that such files load once nasty_tf is imported.
from nasty_tf import models, releases, stealers
from nasty_tf.errors import InputError
from nasty_tf.knowledge_distiller import KnowledgeDistiller
from nasty_tf.losses import KnowledgeDistillationLoss, SelfUnderminingLoss, TemperedKLDivergence
from nasty_tf.nasty_teacher import NastyTeacher

__all__ = [
    "InputError",
    "KnowledgeDistillationLoss",
    "KnowledgeDistiller",
    "NastyTeacher",
    "SelfUnderminingLoss",
    "TemperedKLDivergence",
    "models",
    "releases",
    "stealers",
]
