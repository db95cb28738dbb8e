"""A stealer's held-out parameter search: every combination of a grid, chosen on validation.

`AuditConfig.stealer_search` maps a stealer that runs to a grid, `{parameter: [values, ...]}`.
The audit trains one student per combination (each an ordinary cached run, keyed by its full
parameters, in `D/runs/<run_name>_seed<k>/`), and the stealer's scorecard entry is the
combination whose student has the highest validation accuracy (mean over the seeds): the
strongest attacker the validation split can tell apart. Ties go to the first combination in
grid order. The test split only reports (DESIGN.md section 6, "Selection"): the chosen
student's test accuracy is the stealer's result, and every combination's test accuracy is
recorded beside its validation accuracy, never read to choose.

Grid order is `itertools.product` over the parameters in the order the grid lists them (the
last parameter varies fastest).
"""

import itertools
import re

from nasty_tf.errors import InputError, check_count
from nasty_tf.stealers import get_stealer

SPLIT = "validation"

# The Skeptical Student's two parameters its authors leave unset (ksouvik52/Skeptical2021):
# - `loc`, the head the teacher is distilled into: 1 (the auxiliary head nearest the final
#   one) and 2 (one stage shallower). Every student this audit supports (the CNN, PreResNet,
#   ResNet) has at least two intermediate stages; 0 (the final head) would be plain KD plus
#   self-distillation, not the skeptical idea of keeping the teacher off the final head.
# - `kd_delay`, in epochs; as shares of the schedule trained on labels alone before KD starts,
#   resolved against the audit's `epochs` (`skeptical_search`): 0 (distil from the first
#   epoch, as plain KD does) and a quarter (the student's own features form on the labels
#   first, which is what the skeptical student bets on, and three quarters of the schedule
#   are left to distil). Fractions, not epochs, so that the grid means the same at the
#   digits audit's 24 epochs and at a 200-epoch CIFAR schedule.
# Four students, three more than the unsearched skeptical row.
SKEPTICAL_SEARCH = {"loc": (1, 2), "kd_delay": (0.0, 0.25)}


def skeptical_search(epochs):
    """`SKEPTICAL_SEARCH` resolved against a schedule of `epochs`: `{"loc": [...], "kd_delay":
    [...]}` in epochs, repeats dropped.

    A share `f` of the schedule on labels alone is `kd_delay = round(f * epochs) - 1`: the KD
    terms start once `epoch > kd_delay` (0-based), so `f = 0` gives -1 (every epoch distils)
    and `f = 0.25` at 24 epochs gives 5 (epochs 0-5 on labels, KD from epoch 6).

    Raises:
        InputError: `epochs` is not an integer >= 1.
    """
    check_count("epochs", epochs)
    delays = [round(share * epochs) - 1 for share in SKEPTICAL_SEARCH["kd_delay"]]
    return {
        "loc": list(SKEPTICAL_SEARCH["loc"]),
        "kd_delay": list(dict.fromkeys(delays)),
    }


def combinations(grid):
    """Every combination of `grid` (`{param: [values]}`) as dicts, in grid order."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def _slug(value):
    if isinstance(value, (list, tuple)):
        return "+".join(_slug(v) for v in value)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))


def run_name(stealer, params):
    """The run name (and run directory stem) of one combination: `skeptical-kd_delay=5-loc=1`.

    Parameters in sorted order, so that reordering a grid's keys names the same runs.
    """
    return "-".join([stealer, *(f"{key}={_slug(params[key])}" for key in sorted(params))])


def _refuse(message, name, grid):
    return InputError(
        f"stealer_search[{name!r}]: {message}. Received: stealer_search[{name!r}]={grid!r}"
    )


def check_stealer_search(search, chosen, stealer_params):
    """Validates `AuditConfig.stealer_search` before anything trains.

    Args:
        search: the field: None, or `{stealer name: {param: [values, ...]}}`.
        chosen: the stealers that run.
        stealer_params: `AuditConfig.stealer_params` (the fixed parameters under the grid).

    Raises:
        InputError: naming `stealer_search`: not a dict, a stealer that does not run, a grid
            that is not a non-empty dict, a parameter also fixed in `stealer_params`, a value
            list that is empty, not a list or repeats a value, a combination the stealer
            refuses (its message: an unknown parameter, a value out of range), or two
            combinations with one run name.
    """
    if search is None:
        return
    if not isinstance(search, dict) or not search:
        raise InputError(
            "stealer_search must be a non-empty dict {stealer: {parameter: [values, ...]}}. "
            f"Received: stealer_search={search!r}"
        )
    for name, grid in search.items():
        if name not in chosen:
            raise InputError(
                f"stealer_search: unknown stealer {name!r}: only the stealers that run can be "
                f"searched ({', '.join(chosen)}). Received: stealer_search={search!r}"
            )
        if not isinstance(grid, dict) or not grid:
            raise _refuse("must be a non-empty dict {parameter: [values, ...]}", name, grid)
        fixed = (stealer_params or {}).get(name, {})
        for param, values in grid.items():
            if param in fixed:
                raise _refuse(
                    f"{param!r} is also fixed in stealer_params[{name!r}]; give it in one place",
                    name,
                    grid,
                )
            if not isinstance(values, (list, tuple)) or not values:
                raise _refuse(f"{param!r} needs a non-empty list of values", name, grid)
            if len({repr(v) for v in values}) != len(values):
                raise _refuse(f"{param!r} repeats a value", name, grid)
        runs = [run_name(name, params) for params in combinations(grid)]
        if len(set(runs)) != len(runs):
            raise _refuse("two combinations share a run name; use plainer values", name, grid)
        for params in combinations(grid):
            try:
                get_stealer(name, **fixed, **params)
            except InputError as error:
                raise _refuse(str(error).rstrip("."), name, grid) from None


def candidates(config, name):
    """`[(params, run name, Stealer)]` for every combination of `config.stealer_search[name]`,
    over `config.stealer_params[name]`, in grid order."""
    fixed = (config.stealer_params or {}).get(name, {})
    return [
        (params, run_name(name, params), get_stealer(name, **fixed, **params))
        for params in combinations(config.stealer_search[name])
    ]


def choose(rows):
    """The index of the row with the highest `validation_accuracy`; the first on a tie."""
    best = 0
    for index, row in enumerate(rows):
        if row["validation_accuracy"] > rows[best]["validation_accuracy"]:
            best = index
    return best


def search_record(rows):
    """The scorecard entry's `search`: `{"split": "validation", "rows": [{params, run,
    validation_accuracy, accuracy}], "chosen": params}` (accuracies: means over the seeds,
    `accuracy` on the test split, reported only)."""
    return {"split": SPLIT, "rows": rows, "chosen": rows[choose(rows)]["params"]}


def chosen_row(record):
    """The row of a `search_record` that was chosen."""
    return record["rows"][choose(record["rows"])]
