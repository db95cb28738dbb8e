"""Data-free KD attacks (paper Section 4.4, Table 5, Fig. 6): DAFL and DeepInversion.

A data-free stealer holds only the released teacher (`model.keras`). It synthesises inputs
from the teacher itself and trains a student by KD on them:

- DAFL (Chen et al., ICCV 2019): a generator trained against the frozen teacher, alternating
  (here: simultaneous, as in the authors' code) with a student distilled on its batches;
- DeepInversion (Yin et al., CVPR 2020): batches of images optimised from noise until the
  teacher's BatchNorm statistics, confident outputs and image priors are matched, then KD
  on the synthesised set.

`run_datafree(DataFreeConfig(...))` is the job; `tools.datafree` is its binary.
"""

from nasty_tf.datafree.config import METHODS, DataFreeConfig, dafl_loss_weights
from nasty_tf.datafree.dafl import DAFL
from nasty_tf.datafree.deep_inversion import DeepInversion, batchnorm_input_model, synthesize
from nasty_tf.datafree.generator import dafl_generator
from nasty_tf.datafree.image_grid import save_image_grid
from nasty_tf.datafree.jobs import run_datafree
from nasty_tf.datafree.pixel_space import PixelSpace

__all__ = [
    "DAFL",
    "METHODS",
    "DataFreeConfig",
    "DeepInversion",
    "PixelSpace",
    "batchnorm_input_model",
    "dafl_loss_weights",
    "dafl_generator",
    "run_datafree",
    "save_image_grid",
    "synthesize",
]
