"""Flags that pick the architecture."""

from absl import flags


def define_model_flags(default_arch="cnn"):
    flags.DEFINE_string(
        "arch",
        default_arch,
        "Architecture from the registry: resnet18, preresnet20, preresnet32, cnn, ...",
    )


def define_init_flag():
    flags.DEFINE_string(
        "init",
        "keras",
        "How the network's weights start: keras (Keras' defaults: glorot-uniform kernels, zero "
        "biases) or reference (the reference PyTorch model's: kaiming-uniform(a=sqrt(5)) kernels "
        "and uniform biases, He-normal fan-out convolutions in PreResNet and ResNeXt).",
    )
