"""Flags of the evaluation binary."""

from absl import flags


def define_evaluate_flags():
    flags.DEFINE_string("model", None, "The network (.keras file) to evaluate.")
    flags.DEFINE_string("split", "test", "Which split to measure: test or train.")
    flags.DEFINE_string("output_dir", None, "Optional directory to write evaluation.json into.")
