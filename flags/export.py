"""Flags of the SavedModel export binary."""

from absl import flags


def define_export_flags():
    flags.DEFINE_string(
        "model",
        None,
        "The network (.keras file) to export; a saved NastyTeacher/KnowledgeDistiller is "
        "unwrapped to its trained network (the adversary or teacher is never exported).",
    )
    flags.DEFINE_string("export_dir", None, "The SavedModel directory to write.")
    flags.DEFINE_bool(
        "overwrite", False, "Replace a SavedModel already in --export_dir (never other data)."
    )
    flags.DEFINE_integer(
        "top_k",
        None,
        "Also write a 'top_k' signature returning the k most probable classes and their "
        "probabilities.",
    )
    flags.DEFINE_enum(
        "release",
        "plain",
        ["plain", "stingy"],
        "What serving_default serves: plain (the logits and their softmax) or stingy (only each "
        "image's top --top_k_ratio x classes logits, the rest -inf, so exactly k probabilities "
        "are non-zero; Stingy Teacher, Ma et al. 2022). A nasty network exported stingy is "
        "the nasty+stingy defence.",
    )
    flags.DEFINE_float(
        "top_k_ratio",
        None,
        "--release=stingy: the share of classes served, in (0, 1]; default 0.2 below 100 "
        "classes, 0.1 from 100 on.",
    )
