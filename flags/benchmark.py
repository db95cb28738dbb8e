"""Flags of the training-step benchmark (issue 7)."""

from absl import flags


def define_benchmark_flags():
    flags.DEFINE_string("arch", "resnet18", "Architecture from the registry: resnet18, cnn, ...")
    flags.DEFINE_string(
        "teacher_arch", None, "kd mode: the teacher's architecture (default: --arch)."
    )
    flags.DEFINE_integer("batch_size", 128, "Images per training step.")
    flags.DEFINE_list(
        "mode",
        ["normal", "nasty"],
        "Comma-separated steps to time, interleaved: normal (one network), nasty (train step "
        "plus the frozen adversary's forward), kd (student step plus the teacher's forward).",
    )
    flags.DEFINE_list(
        "batch_norm",
        ["fused"],
        "BatchNormalization layers to build the networks with, each timed with every mode "
        "(interleaved): fused (the zoo's, TensorFlow's fused kernel) and/or keras (Keras' own).",
    )
    flags.DEFINE_integer("steps", 10, "Timed steps per repeat (one fit call).")
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps after compilation, per mode.")
    flags.DEFINE_integer("repeats", 3, "Timed repeats per mode; the median is printed.")
    flags.DEFINE_string(
        "precision", "float32", "Keras dtype policy: float32, mixed_bfloat16 or mixed_float16."
    )
    flags.DEFINE_string(
        "jit_compile",
        "auto",
        "XLA: auto (as real runs: on under JAX, off on a CPU-only TensorFlow), true or false.",
    )
    flags.DEFINE_integer("steps_per_execution", 1, "Training steps per compiled call.")
    flags.DEFINE_string(
        "augmentation",
        "crop_flip",
        "Augmentation recipe in the step: crop, crop_flip, rotate_flip or none.",
    )
    flags.DEFINE_integer("image_size", 32, "Synthetic images are image_size x image_size x 3.")
    flags.DEFINE_integer("num_classes", 10, "Classes of the synthetic labels.")
    flags.DEFINE_integer(
        "inter_op_threads", 0, "TensorFlow inter-op threads (0: TensorFlow's default)."
    )
    flags.DEFINE_integer(
        "intra_op_threads", 0, "TensorFlow intra-op threads (0: TensorFlow's default)."
    )
    flags.DEFINE_integer("seed", 0, "Seeds weights, synthetic data and augmentation.")
