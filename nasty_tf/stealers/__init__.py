"""Stealers: every attack on a release, learning only from what the release serves (issue 20).

One module per stealer, one registry (`get_stealer`, `available_stealers`), and `steal`, which
trains a student with one of them on arrays:

| name | what it is |
|---|---|
| `kd` | knowledge distillation (paper eq. 1) on the served logits |
| `hard_label` | cross-entropy on the served argmax only |
| `high_temperature` | eq. 1 with `tau_s` in [20, 100] (default 20) |
| `standardized` | eq. 1 on per-sample z-scored logits (Sun et al., CVPR 2024) |
| `topk` | eq. 1 against the served top-k, renormalised |
| `skeptical` | Skeptical Student (Kundu et al., NeurIPS 2021): auxiliary heads, KD into one |
| `label_smoothing` | the baseline that never sees the teacher: CE with label smoothing 0.1 |
| `dafl` | DAFL (Chen et al., ICCV 2019): data-free, on the released network itself |
| `deepinversion` | DeepInversion (Yin et al., CVPR 2020): data-free, on the network's BatchNorm statistics |

A stealer is given `served`, a Keras layer or model mapping images to the release's outputs
(`logits` and/or `probabilities`, as `nasty_tf.releases` builds and `serving_default` returns;
a stingy release's withheld classes are `-inf` logits, probability 0), and never the teacher
network. Each is a Keras model wrapper whose objective lives in `compute_loss`, built from
`keras.losses.Loss` instances, so one code path serves TensorFlow, JAX and `tf.distribute`
(DESIGN.md section 3).

The two data-free stealers (`kind == "datafree"`, `nasty_tf.stealers.data_free`) are the
exception: white-box, they need the released network itself and run as
`nasty_tf.datafree.run_datafree` jobs (`Stealer.datafree_config`), never through `steal`.

Example:

```python
from nasty_tf import models, releases, stealers

served = releases.stingy(teacher)  # what the owner serves
student = stealers.steal(stealers.get_stealer("skeptical", loc=1), models.get_model("cnn", 10),
                         served, x_train, y_train, epochs=24)
```
"""

from nasty_tf.stealers.data_free import DataFreeAttack
from nasty_tf.stealers.hard_label import HardLabelLoss, HardLabelStealer
from nasty_tf.stealers.high_temperature import HighTemperatureLoss, HighTemperatureStealer
from nasty_tf.stealers.kd import KDStealer
from nasty_tf.stealers.label_smoothing import LabelSmoothingCrossEntropy, LabelSmoothingStudent
from nasty_tf.stealers.registry import Stealer, available_stealers, get_stealer
from nasty_tf.stealers.served import served_logits_model
from nasty_tf.stealers.served_distiller import ServedDistillationLoss, ServedDistiller
from nasty_tf.stealers.skeptical import (
    SkepticalLoss,
    SkepticalStudent,
    auxiliary_heads,
    stage_outputs,
)
from nasty_tf.stealers.standardized import StandardizedDistillationLoss, StandardizedStealer
from nasty_tf.stealers.steal import steal
from nasty_tf.stealers.topk import TopKDistillationLoss, TopKStealer

__all__ = [
    "DataFreeAttack",
    "HardLabelLoss",
    "HardLabelStealer",
    "HighTemperatureLoss",
    "HighTemperatureStealer",
    "KDStealer",
    "LabelSmoothingCrossEntropy",
    "LabelSmoothingStudent",
    "ServedDistillationLoss",
    "ServedDistiller",
    "SkepticalLoss",
    "SkepticalStudent",
    "StandardizedDistillationLoss",
    "StandardizedStealer",
    "Stealer",
    "TopKDistillationLoss",
    "TopKStealer",
    "auxiliary_heads",
    "available_stealers",
    "get_stealer",
    "served_logits_model",
    "stage_outputs",
    "steal",
]
