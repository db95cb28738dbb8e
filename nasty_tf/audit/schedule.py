"""Would half the epochs have been enough? The doubling check, read from one audit's curves.

Issue 20: doubling a stealer's epochs must not change its verdict. The audit's students train
at a constant learning rate and every run seeds itself, so the first half of a run of 2N epochs
is the N-epoch run (its `validation_curve` at epoch N is that run's final validation accuracy,
tested): one audit at 2N epochs holds both ends of the doubling.

One epoch's validation accuracy jitters by more than the half point the check is about (about
0.7 points epoch to epoch at the end of cifar10_cpu's 160-epoch students), so each end is read
as the mean of the curve over that schedule's last tenth (`tail_epochs`).

The rule, fixed on 2026-12-05 before its first use (the cifar10_cpu matrix's 160-epoch
baselines): half the schedule is enough when neither baseline, scratch nor label smoothing,
moves by more than `TOLERANCE` points from its tail mean at half the epochs to its tail mean at
the full epochs (each the mean over the seeds). The baselines never query the teacher, so a
validation split carved from the teachers' training subset does not flatter them. Each
stealer's validation margin over the label-smoothing bar at both ends is reported beside it,
not ruled on: that split flatters the students a teacher taught (docs/attacks.md).
"""

import math
import statistics

from nasty_tf.audit.config import LABEL_SMOOTHING, SCRATCH

TOLERANCE = 0.5  # points of validation accuracy


def tail_epochs(epochs):
    """How many final epochs a schedule of `epochs` is read over: its last tenth, at least 1."""
    return math.ceil(epochs / 10)


def tail_mean(curve, epochs):
    """The mean of `curve` (validation accuracy after each epoch) over the last
    `tail_epochs(epochs)` of its first `epochs` epochs."""
    if not 1 <= epochs <= len(curve):
        raise ValueError(
            f"epochs must be within the curve's 1..{len(curve)} epochs. Received: epochs={epochs}"
        )
    return statistics.fmean(curve[epochs - tail_epochs(epochs) : epochs])


def _ends(curves, epochs):
    """`(half, full)`: the seeds' mean tail means at `epochs // 2` and `epochs`."""
    return tuple(
        statistics.fmean(tail_mean(curve, end) for curve in curves) for end in (epochs // 2, epochs)
    )


def _complete(curves, epochs):
    return bool(curves) and all(curve is not None and len(curve) >= epochs for curve in curves)


def doubling_check(curves, epochs):
    """The doubling check of an audit whose students trained `epochs` epochs.

    Args:
        curves: `{name: [validation curve per seed]}` for the baselines (`scratch`,
            `label_smoothing`) and any stealers; a name whose curves are missing or short (a
            data-free student, a run recorded before curves were) is left out.
        epochs: the audit's schedule.

    Returns:
        None when `epochs` is odd or below 2, or a baseline has no full curve. Else
        `{"half_epochs", "epochs", "tail_epochs": {"half", "full"}, "tolerance",
        "baselines": {name: {"half", "full", "shift"}}, "half_is_enough",
        "stealers": {name: {"half", "full", "shift", "half_margin", "full_margin",
        "verdict_changes"}}}`: tail means (validation %, seeds' means) at half and full
        epochs, `shift` full - half; a stealer's margins over the label-smoothing tail mean at
        each end, and whether its validation verdict (margin <= 0: protected) differs between
        the ends.
    """
    if epochs < 2 or epochs % 2:
        return None
    if not all(_complete(curves.get(name), epochs) for name in (SCRATCH, LABEL_SMOOTHING)):
        return None
    ends = {}
    for name, name_curves in curves.items():
        if _complete(name_curves, epochs):
            half, full = _ends(name_curves, epochs)
            ends[name] = {"half": half, "full": full, "shift": full - half}
    baselines = {name: ends.pop(name) for name in (SCRATCH, LABEL_SMOOTHING)}
    bar = baselines[LABEL_SMOOTHING]
    stealers = {}
    for name, row in ends.items():
        half_margin, full_margin = row["half"] - bar["half"], row["full"] - bar["full"]
        stealers[name] = {
            **row,
            "half_margin": half_margin,
            "full_margin": full_margin,
            "verdict_changes": (half_margin <= 0) != (full_margin <= 0),
        }
    return {
        "half_epochs": epochs // 2,
        "epochs": epochs,
        "tail_epochs": {"half": tail_epochs(epochs // 2), "full": tail_epochs(epochs)},
        "tolerance": TOLERANCE,
        "baselines": baselines,
        "half_is_enough": all(abs(b["shift"]) <= TOLERANCE for b in baselines.values()),
        "stealers": stealers,
    }


def _tails_text(half, full, tails):
    """Which epochs each end averages: "epochs 73-80 and 145-160", "epoch 1 and epoch 2"."""
    spans = [(end - tail + 1, end) for end, tail in ((half, tails["half"]), (full, tails["full"]))]
    if all(first < end for first, end in spans):
        return "epochs " + " and ".join(f"{first}-{end}" for first, end in spans)
    return " and ".join(
        f"epoch {end}" if first == end else f"epochs {first}-{end}" for first, end in spans
    )


def format_doubling_check(check):
    """The check as Markdown lines (none for None)."""
    if check is None:
        return []
    half, full = check["half_epochs"], check["epochs"]
    tails = check["tail_epochs"]
    verdict = "enough" if check["half_is_enough"] else "**not** enough"
    half_epochs = f"{half} epoch" + ("" if half == 1 else "s")
    lines = [
        "",
        f"**Would half the schedule, {half_epochs}, have done?** Validation accuracy (%), each "
        f"end the mean over its schedule's last tenth ({_tails_text(half, full, tails)}); "
        f"the first {half_epochs} of these runs are the {half}-epoch runs. Half the schedule "
        f"is enough when neither baseline moves by more than {check['tolerance']} points: "
        f"{half_epochs} is {verdict} here.",
        "",
        f"| student | at {half} | at {full} | shift | margin over the bar at {half} | "
        f"at {full} | verdict changes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in (SCRATCH, LABEL_SMOOTHING):
        row = check["baselines"][name]
        lines.append(
            f"| {name} | {row['half']:.2f} | {row['full']:.2f} | {row['shift']:+.2f} | | | |"
        )
    for name, row in check["stealers"].items():
        lines.append(
            f"| {name} | {row['half']:.2f} | {row['full']:.2f} | {row['shift']:+.2f} | "
            f"{row['half_margin']:+.2f} | {row['full_margin']:+.2f} | "
            f"{'**yes**' if row['verdict_changes'] else 'no'} |"
        )
    return lines
