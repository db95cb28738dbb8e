"""Exports a saved network as a TensorFlow SavedModel for serving (the network only).

    python -m tools.export --model=runs/nasty/model.keras --export_dir=exports/nasty

The `serving_default` signature takes a uint8 image batch `images` and returns `logits` and
`probabilities`; `--top_k=K` adds a `top_k` signature (`classes`, `scores`).
"""

from absl import flags as absl_flags
from absl import logging as absl_logging

from flags import export
from tools import common

export.define_export_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf.export import export_saved_model

    if not FLAGS["verbosity"].present:
        # tf.saved_model.save logs routine INFO lines (renamed inputs, fingerprints) through
        # absl; the summary below says what was written. --verbosity=0 brings them back.
        absl_logging.set_verbosity(absl_logging.WARNING)

    result = export_saved_model(
        FLAGS.model,
        FLAGS.export_dir,
        FLAGS.overwrite,
        FLAGS.top_k,
        release=FLAGS.release,
        top_k_ratio=FLAGS.top_k_ratio,
    )
    shape = ", ".join("None" if d is None else str(d) for d in result["input_shape"])
    print(
        f"{FLAGS.model} -> SavedModel {result['export_dir']}: signatures "
        f"{', '.join(result['signatures'])}; input images uint8 [{shape}]; "
        f"{result['num_classes']} classes; {result['variables']} variables "
        f"({result['parameters']:,} parameters), the network's only; release "
        f"{result['release']}"
        + (f", {result['served_classes']} classes served" if "served_classes" in result else "")
    )


def console_main():
    """Console script `nasty-tf-export`: what `python -m tools.export` runs."""
    absl_flags.mark_flag_as_required("model")
    absl_flags.mark_flag_as_required("export_dir")
    common.run(main)


if __name__ == "__main__":
    console_main()
