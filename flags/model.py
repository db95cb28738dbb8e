"""Flags that pick the architecture."""

from absl import flags


def define_model_flags(default_arch="cnn"):
    flags.DEFINE_string(
        "arch",
        default_arch,
        "Architecture from the registry: resnet18, preresnet20, preresnet32, cnn, ...",
    )
