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
