"""The scorecard: the audit's result as JSON, a Markdown table and a figure.

`D/scorecard.json` holds `{"teacher": {"accuracy"}, "baselines": {"scratch",
"label_smoothing"}, "stealers": [{"name", "kind", "accuracy", "vs_scratch",
"vs_label_smoothing", "vs_reference", "protected", "accuracies", and for a searched stealer
"search"}], "doubling_check", ...}`; `D/scorecard.md` the same as a table, each search's grid
and the doubling check (`nasty_tf.audit.schedule`) below it; `D/scorecard.png` the student
accuracy per stealer, the baselines as lines. A stealer is `protected` against when its student
ends at or below the label-smoothing student (CMIM's bar, issue 20).
"""

import os
import statistics

from nasty_tf.atomic_io import atomic_write_json, atomic_write_text
from nasty_tf.audit.config import LABEL_SMOOTHING, REFERENCE_KD, SCRATCH
from nasty_tf.audit.schedule import format_doubling_check
from nasty_tf.stealers.registry import DATAFREE

SCORECARD_JSON = "scorecard.json"
SCORECARD_MD = "scorecard.md"
SCORECARD_PNG = "scorecard.png"


def stealer_rows(names, kinds, accuracies):
    """One scorecard row per stealer of `names`.

    Args:
        names: the stealers, in order.
        kinds: `{name: "served" | "datafree"}`.
        accuracies: `{name: [test accuracy per seed]}` for the stealers, the baselines
            (`scratch`, `label_smoothing`) and, with a reference, `reference_kd`.
    """
    mean = {name: statistics.fmean(values) for name, values in accuracies.items()}
    scratch, smoothing = mean[SCRATCH], mean[LABEL_SMOOTHING]
    reference = mean.get(REFERENCE_KD)
    return [
        {
            "name": name,
            "kind": kinds[name],
            "accuracy": mean[name],
            "vs_scratch": mean[name] - scratch,
            "vs_label_smoothing": mean[name] - smoothing,
            "vs_reference": None if reference is None else mean[name] - reference,
            "protected": bool(mean[name] <= smoothing),
            "accuracies": accuracies[name],
        }
        for name in names
    ]


def write_scorecard(scorecard, output_dir):
    """Writes the figure, `scorecard.md` and, last, `scorecard.json` into `output_dir`."""
    plot_scorecard(scorecard, os.path.join(output_dir, SCORECARD_PNG))
    atomic_write_text(os.path.join(output_dir, SCORECARD_MD), format_scorecard(scorecard))
    atomic_write_json(os.path.join(output_dir, SCORECARD_JSON), scorecard)


def _signed(value):
    return "n/a" if value is None else f"{value:+.2f}"


def _per_seed(accuracies):
    return ", ".join(f"{accuracy:.2f}" for accuracy in accuracies)


def _baseline_seeds(scorecard, name):
    """` (seeds: a, b, ...)`: the baseline's test accuracy per seed, in the audit's seed order
    (the order of each stealer's `accuracies`)."""
    accuracies = [run["accuracy"] for run in scorecard["runs"] if run["name"] == name]
    return f" (seeds: {_per_seed(accuracies)})"


def _what_is_audited(scorecard):
    config = scorecard["config"]
    if config.get("saved_model"):
        return f"SavedModel `{config['saved_model']}` (as it serves)"
    release = scorecard["settings"]["teacher"].get("release", "plain")
    ratio = config.get("top_k_ratio")
    shown = f"{release} release" + (f", top_k_ratio {ratio}" if ratio is not None else "")
    return f"`{config.get('model')}`, {shown}"


def _row_name(row):
    return f"{row['name']} (data-free)" if row.get("kind") == DATAFREE else row["name"]


def _data_free_note(scorecard):
    rows = [row for row in scorecard["stealers"] if row.get("kind") == DATAFREE]
    if not rows:
        return []
    schedules = scorecard["settings"].get("datafree", {})
    shown = "; ".join(
        f"{row['name']}: "
        + ", ".join(
            f"{k} {v}"
            for k, v in schedules.get(row["name"], {}).items()
            if k != "name" and v is not None
        )
        for row in rows
    )
    return [
        "Data-free stealers attack the network file itself (white-box: gradients through it; "
        "DeepInversion reads its BatchNorm statistics), so the release's serving does not apply "
        f"to them; each trains with its own schedule ({shown})."
    ]


def _search_tables(scorecard):
    """Below the main table: each searched stealer's grid, chosen on the validation split."""
    lines = []
    for row in scorecard["stealers"]:
        record = row.get("search")
        if not record:
            continue
        params = list(record["chosen"])
        lines += [
            "",
            f"**{row['name']}**: {', '.join(params)} chosen on the {record['split']} split "
            "(the highest validation accuracy; ties: the first in grid order), never on the "
            f"test split; the row above is the chosen student. Test accuracy only reports.",
            "",
            f"| {' | '.join(params)} | validation accuracy (%) | test accuracy (%) | chosen |",
            "|" + "---|" * (len(params) + 3),
        ]
        for candidate in record["rows"]:
            values = " | ".join(str(candidate["params"][p]) for p in params)
            chosen = "**yes**" if candidate["params"] == record["chosen"] else ""
            lines.append(
                f"| {values} | {candidate['validation_accuracy']:.2f} | "
                f"{candidate['accuracy']:.2f} | {chosen} |"
            )
    return lines


def _validation_text(config):
    fraction = config["validation_fraction"]
    # Scorecards written before `validation_split` existed carved theirs.
    if config.get("validation_split", "carved") == "unseen":
        return (
            f"validation split of {fraction} of the training images kept, drawn from the "
            "training images the subset leaves out"
        )
    return f"validation fraction {fraction} held out"


def _stealer_table_head(scorecard, several_seeds):
    # A baselines-only audit (`stealers=()`) has no stealer rows: a sentence, not an empty table.
    if not scorecard["stealers"]:
        return ["No stealers: this audit trained the baselines only."]
    return [
        "A stealer is **protected** against when its student ends at or below the "
        "label-smoothing student.",
        "",
        "| stealer | student accuracy (%) | vs scratch | vs label smoothing | vs reference | protected |"
        + (" per seed |" if several_seeds else ""),
        "|---|---|---|---|---|---|" + ("---|" if several_seeds else ""),
    ]


def format_scorecard(scorecard):
    """The scorecard as Markdown: what was audited, the baselines, one row per stealer."""
    config = scorecard["config"]
    seeds = ", ".join(str(seed) for seed in config["seeds"])
    # With several seeds each mean shows its seeds' spread: a margin within it is noise.
    several_seeds = len(config["seeds"]) > 1
    lines = [
        "# Protection scorecard",
        "",
        f"Audited: {_what_is_audited(scorecard)} on `{config['dataset']}`.",
        f"Students: {scorecard['settings']['arch']}, {config['epochs']} epochs of "
        f"{config['optimizer']} at {config['learning_rate']}, batch {config['batch_size']}; "
        f"seeds {seeds} (means); {_validation_text(config)}.",
        *_data_free_note(scorecard),
        "",
        f"Teacher (served argmax) test accuracy: {scorecard['teacher']['accuracy']:.2f}%.",
        f"Baselines: scratch {scorecard['baselines'][SCRATCH]:.2f}%"
        f"{_baseline_seeds(scorecard, SCRATCH) if several_seeds else ''}, "
        f"label smoothing {scorecard['baselines'][LABEL_SMOOTHING]:.2f}%"
        f"{_baseline_seeds(scorecard, LABEL_SMOOTHING) if several_seeds else ''}"
        + (
            f"; KD from the reference {scorecard['reference']['kd_accuracy']:.2f}%."
            if scorecard.get("reference")
            else "."
        ),
        "",
        *_stealer_table_head(scorecard, several_seeds),
    ]
    for row in scorecard["stealers"]:
        lines.append(
            f"| {_row_name(row)} | {row['accuracy']:.2f} | {_signed(row['vs_scratch'])} | "
            f"{_signed(row['vs_label_smoothing'])} | {_signed(row['vs_reference'])} | "
            f"{'yes' if row['protected'] else '**no**'} |"
            + (f" {_per_seed(row['accuracies'])} |" if several_seeds else "")
        )
    lines += _search_tables(scorecard)
    # Scorecards written before the check existed have none.
    lines += format_doubling_check(scorecard.get("doubling_check"))
    lines += ["", f"![student accuracy per stealer]({scorecard['figure']})", ""]
    lines += [
        f"{scorecard['date']}, {scorecard['machine']}, backend {scorecard['backend']}, "
        f"{scorecard['seconds']} s.",
        "",
        f"`{scorecard['command']}`" if scorecard.get("command") else "",
    ]
    return "\n".join(lines).rstrip() + "\n"


def plot_scorecard(scorecard, path):
    """Student test accuracy per stealer (bars) with the baselines and teacher as lines."""
    from nasty_tf.figures import _pyplot, _save

    plt = _pyplot()
    rows = scorecard["stealers"]
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 4), 4.2), layout="constrained")
    colors = ["tab:green" if row["protected"] else "tab:red" for row in rows]
    bars = axis.bar(
        [_row_name(row) for row in rows], [row["accuracy"] for row in rows], color=colors
    )
    axis.bar_label(bars, fmt="%.2f", fontsize=7)
    lines = [
        (scorecard["teacher"]["accuracy"], "teacher (served)", "black", "--"),
        (scorecard["baselines"][SCRATCH], "student from scratch", "tab:gray", ":"),
        (scorecard["baselines"][LABEL_SMOOTHING], "label smoothing (the bar)", "tab:blue", "-"),
    ]
    if scorecard.get("reference"):
        lines.append(
            (scorecard["reference"]["kd_accuracy"], "KD from the reference", "tab:purple", "-.")
        )
    for value, label, color, style in lines:
        axis.axhline(value, color=color, linestyle=style, linewidth=1.2, label=label)
    accuracies = [row["accuracy"] for row in rows] + [value for value, *_ in lines]
    axis.set_ylim(max(0.0, min(accuracies) - 10.0), min(100.0, max(accuracies) + 3.0))
    axis.set_xlabel("stealer (green: protected, red: not)")
    axis.set_ylabel("student test accuracy (%)")
    axis.set_title(f"Audit: {_what_is_audited(scorecard).replace('`', '')}", fontsize=9)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axis.tick_params(axis="x", labelrotation=20)
    _save(figure, path)
    return os.path.basename(path)
