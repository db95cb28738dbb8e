"""How much a carved validation split flatters the students of a teacher that trained on it.

For every finished student of a matrix (`<matrix_dir>/<defence>/runs/<run>/`), its recorded
validation accuracy (the audit's split, carved from the teacher's training subset), its test
accuracy, and its accuracy on a split of training images outside that subset
(`unseen_validation`), each as a gap above the test accuracy, averaged by kind of student.
Writes JSON with the rows, the group means and `nasty_tf.report.provenance()`:

    python benchmarks/validation_bias.py MATRIX_DIR DATA_DIR CACHE_DIR OUTPUT.json
"""

import glob
import json
import os
import statistics
import sys

from nasty_tf.atomic_io import atomic_write_json
from nasty_tf.data import load_dataset
from nasty_tf.data.validation import unseen_validation
from nasty_tf.report import provenance
from nasty_tf.training import accuracy_percent, load_network, predict_logits

# What each student learns from: the teacher's soft targets, or none of them (labels, its argmax).
NO_SOFT_TARGETS = ("scratch", "label_smoothing", "hard_label")


def kind(run_name):
    if run_name.startswith(NO_SOFT_TARGETS):
        return "no_soft_targets"
    return "skeptical" if run_name.startswith("skeptical") else "soft_targets"


def main(matrix_dir, data_dir, cache_dir, output):
    matrix = json.load(open(os.path.join(matrix_dir, "matrix.json")))
    settings = matrix["settings"]
    full = load_dataset(
        settings["dataset"], data_dir=data_dir, seed=settings["seeds"][0], cache_dir=cache_dir
    )
    _, (x_unseen, y_unseen) = unseen_validation(
        full, settings["train_fraction"], settings["validation_fraction"], settings["seeds"][0]
    )
    rows, seen = [], set()
    for path in sorted(glob.glob(os.path.join(matrix_dir, "*", "runs", "*", "result.json"))):
        run_dir = os.path.dirname(path)
        result = json.load(open(path))
        run = os.path.basename(run_dir)
        # A release-independent run is copied into every defence's audit: count it once.
        identity = (run, json.dumps(result["config"], sort_keys=True))
        if identity in seen:
            continue
        seen.add(identity)
        network = load_network(os.path.join(run_dir, "model.keras"), "model", full)
        unseen = accuracy_percent(predict_logits(network, x_unseen), y_unseen)
        rows.append(
            {
                "run": os.path.relpath(run_dir, matrix_dir),
                "kind": kind(run),
                "test": round(result["accuracy"], 2),
                "carved_gap": round(result["validation_accuracy"] - result["accuracy"], 2),
                "unseen_gap": round(unseen - result["accuracy"], 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    groups = {}
    for name in ("soft_targets", "no_soft_targets", "skeptical"):
        members = [row for row in rows if row["kind"] == name]
        groups[name] = {
            "students": len(members),
            "carved_gap_mean": round(statistics.mean(r["carved_gap"] for r in members), 2),
            "carved_gap_max": max(r["carved_gap"] for r in members),
            "unseen_gap_mean": round(statistics.mean(r["unseen_gap"] for r in members), 2),
        }
    atomic_write_json(
        output,
        {"unseen_images": len(y_unseen), "groups": groups, "rows": rows, **provenance()},
    )


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(*sys.argv[1:])
