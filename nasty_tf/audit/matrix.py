"""The defences x stealers matrix: four audits, one per defence, and their teacher cost.

A defence is a network and a release (issue 20, item 2):

| defence | network | release |
|---|---|---|
| `plain` | normal | plain |
| `nasty` | nasty | plain |
| `stingy` | normal | stingy |
| `nasty+stingy` | nasty | stingy |

`audit_matrix(config)` runs one `audit` per defence, in that order, each in its own
subdirectory of `output_dir` (`plain/`, `nasty/`, `stingy/`, `nasty_stingy/`) with its own
scorecard and run cache, and the normal network as every audit's `reference`. The runs that
do not depend on the release (the scratch and label-smoothing baselines, the reference's KD
student, a data-free attack of the same network file) train once: each later audit takes
them from the earlier ones through `AuditConfig.reuse_runs_from`, which copies a finished run
only when its cache key (data, schedule, stealer, release, seed) equals the one it needs, or
when it trains the same student (`nasty_tf.audit.twins`): the stingy defences take
`hard_label` from the plain ones (the argmax is kept), `kd` from `topk` on the plain release
where `topk`'s k is what stingy serves, and the reference's KD student is the plain
defence's `kd`.

It writes `output_dir/matrix.json` (the dict `audit_matrix` returns) and `output_dir/matrix.md`
(`nasty_tf.report.format_matrix_table`). A defence's teacher cost is its served teacher's
test accuracy minus the plain release's: 0 for `stingy`, which keeps the argmax.

Example:

```python
from nasty_tf.audit import MatrixConfig, audit_matrix

matrix = audit_matrix(MatrixConfig(normal="runs/teacher_normal/model.keras",
                                   nasty="runs/teacher_nasty/model.keras",
                                   output_dir="audits/matrix", stealers=("kd", "topk")))
matrix["defences"]["nasty"]["teacher"]["cost"]
```
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

from nasty_tf.atomic_io import atomic_write_json, atomic_write_text
from nasty_tf.audit.config import AuditConfig, check_config
from nasty_tf.audit.job import _jsonable, audit
from nasty_tf.errors import InputError
from nasty_tf.training.run_directory import RunLock

# name -> (network, release), in the order they run: `plain` first, since it trains the runs
# the others share.
DEFENCES = {
    "plain": ("normal", "plain"),
    "nasty": ("nasty", "plain"),
    "stingy": ("normal", "stingy"),
    "nasty+stingy": ("nasty", "stingy"),
}
MATRIX_JSON = "matrix.json"
MATRIX_MD = "matrix.md"


def defence_dir(name):
    """A defence's subdirectory name: `nasty+stingy` -> `nasty_stingy`."""
    return name.replace("+", "_")


@dataclasses.dataclass(frozen=True)
class MatrixConfig:
    """Everything the matrix depends on: the two networks, and its audits' shared settings.

    Attributes:
        normal: the normally trained network, a `.keras` file (the `plain` and `stingy`
            defences, and every audit's reference).
        nasty: the nasty network, a `.keras` file (`nasty`, `nasty+stingy`).
        output_dir: where the four audits, `matrix.json` and `matrix.md` go.
        overwrite: delete the four audits' directories first and train everything again.
        reuse_runs_from: other audits' output directories whose finished runs of the same
            key (or twins of it) each defence's audit may copy
            (`AuditConfig.reuse_runs_from`), before the matrix's own earlier defences.
        Every other field is the `AuditConfig` field of the same name, shared by the four
        audits (`top_k_ratio` applies to the stingy ones only). With `stealer_search`, each
        defence's audit chooses its own combination on its own validation accuracy (the
        strongest attacker of that defence); the combinations' runs are shared between the
        audits like any other run, where their cache keys match.
    """

    normal: str
    nasty: str
    output_dir: str
    stealers: tuple[str, ...] | None = None
    stealer_params: dict | None = None
    stealer_search: dict | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    data_cache_dir: str | None = None
    train_fraction: float = 1.0
    top_k_ratio: float | None = None
    arch: str | None = None
    epochs: int = 24
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 128
    seeds: tuple[int, ...] = (0,)
    validation_fraction: float = 0.1
    validation_split: str = "carved"
    augment: bool = False
    verbose: int = 0
    overwrite: bool = False
    reuse_runs_from: tuple[str, ...] = ()


# The fields the matrix sets per defence; the rest pass through to every audit.
_PER_DEFENCE = {
    "output_dir",
    "model",
    "saved_model",
    "release",
    "top_k_ratio",
    "reference",
    "reuse_runs_from",
}


def defence_configs(config):
    """`{defence: AuditConfig}` in `DEFENCES` order; each later audit may reuse the earlier
    audits' runs (`AuditConfig.reuse_runs_from`)."""
    shared = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(AuditConfig)
        if field.name not in _PER_DEFENCE and hasattr(config, field.name)
    }
    configs, earlier = {}, []
    for name, (network, release) in DEFENCES.items():
        directory = os.path.join(config.output_dir, defence_dir(name))
        configs[name] = AuditConfig(
            **shared,
            output_dir=directory,
            model=config.normal if network == "normal" else config.nasty,
            release=release,
            top_k_ratio=config.top_k_ratio if release == "stingy" else None,
            reference=config.normal,
            reuse_runs_from=(*config.reuse_runs_from, *earlier),
        )
        earlier.append(directory)
    return configs


# `matrix_stealers` aliases: every stealer, or every one that learns from what is served.
ALL_STEALERS = "all"
SERVED_STEALERS = "served"


def matrix_stealer_names(names):
    """The stealers a protocol's `matrix_stealers` names, aliases expanded.

    Args:
        names: distinct stealer names (`auditable_stealers()`), or the one alias `all` (every
            stealer, the data-free `dafl` and `deepinversion` included) or `served` (every one
            that learns from what the release serves, `default_stealers()`).

    Returns:
        The names, in the given order (an alias: the registry's order).

    Raises:
        InputError: an unknown or repeated name, an alias among names, or no name.
    """
    from nasty_tf.audit.config import auditable_stealers, default_stealers

    chosen = [names] if isinstance(names, str) else list(names or ())
    if chosen == [ALL_STEALERS]:
        return tuple(auditable_stealers())
    if chosen == [SERVED_STEALERS]:
        return tuple(default_stealers())
    known = auditable_stealers()
    if not chosen or len(set(chosen)) != len(chosen) or any(n not in known for n in chosen):
        shown = ",".join(str(name) for name in chosen)
        raise InputError(
            f"matrix_stealers must be distinct names from {', '.join(known)}, or one of "
            f"{ALL_STEALERS} (every one) and {SERVED_STEALERS} (all but the data-free ones). "
            f"Received: matrix_stealers={shown}"
        )
    return tuple(chosen)


def check_matrix_config(config):
    """Validates `config` before anything loads, locks or trains; returns `defence_configs`.

    Raises:
        InputError: naming the argument and what was received.
    """
    if not config.output_dir:
        raise InputError(f"output_dir is required. Received: output_dir={config.output_dir!r}")
    for name in ("normal", "nasty"):
        path = getattr(config, name)
        if not isinstance(path, str) or not path:
            raise InputError(f"{name} must be a .keras file. Received: {name}={path!r}")
    if config.stealers is not None and not config.stealers:
        raise InputError(
            "stealers must name at least one stealer for a matrix (None: the defaults). "
            f"Received: stealers={config.stealers!r}"
        )
    configs = defence_configs(config)
    for audit_config in configs.values():
        # Checked without the earlier defences' directories, which exist only once their
        # audits ran; the stealers, schedule and given directories are checked here, before
        # anything trains.
        check_config(dataclasses.replace(audit_config, reuse_runs_from=config.reuse_runs_from))
    return configs


def audit_matrix(config):
    """Audits the four defences and writes `matrix.json` and `matrix.md` into `output_dir`.

    Resumable: each audit reuses its finished runs, so a rerun trains only what is missing.
    One matrix at a time writes `output_dir` (its `RunLock`).

    Args:
        config: a `MatrixConfig`.

    Returns:
        The matrix dict: `defences` (`{name: {network, release, teacher: {accuracy, cost},
        baselines, reference, stealers: [{name, kind, accuracy, vs_scratch,
        vs_label_smoothing, vs_reference, protected}], runs: [{name, seed, reused,
        reused_from}], doubling_check, scorecard}}`, `cost` = the served teacher's test
        accuracy minus the plain release's; `doubling_check` the audit's, None where it does
        not apply), `order` (the defences), `stealers` (the names, in order),
        `settings` (the students' arch and schedule, as resolved), `config`, `date`,
        `machine`, `backend`, `command`, `seconds`.

    Raises:
        InputError: a bad config (before anything trains), a network that cannot be loaded,
            or `output_dir` held by another process.
    """
    configs = check_matrix_config(config)
    with RunLock(config.output_dir):
        if config.overwrite:
            for audit_config in configs.values():
                shutil.rmtree(audit_config.output_dir, ignore_errors=True)
        return _audit_matrix(config, configs)


def _audit_matrix(config, configs):
    from nasty_tf.report import format_matrix_table, provenance

    start = time.perf_counter()
    scorecards = {}
    for name, audit_config in configs.items():
        network, release = DEFENCES[name]
        print(f"== matrix: {name} ({network} network, {release} release)", flush=True)
        scorecards[name] = audit(audit_config)
    plain_accuracy = scorecards["plain"]["teacher"]["accuracy"]
    defences = {}
    for name, scorecard in scorecards.items():
        network, release = DEFENCES[name]
        accuracy = scorecard["teacher"]["accuracy"]
        defences[name] = {
            "network": network,
            "release": release,
            "teacher": {"accuracy": accuracy, "cost": accuracy - plain_accuracy},
            "baselines": scorecard["baselines"],
            "reference": scorecard["reference"],
            "stealers": [
                {key: row[key] for key in row if key != "accuracies"}
                for row in scorecard["stealers"]
            ],
            "runs": [
                {key: run[key] for key in ("name", "seed", "reused", "reused_from")}
                for run in scorecard["runs"]
            ],
            "doubling_check": scorecard["doubling_check"],
            "scorecard": os.path.join(defence_dir(name), "scorecard.json"),
        }
    first = scorecards["plain"]
    matrix = {
        "defences": defences,
        "order": list(DEFENCES),
        "stealers": first["settings"]["stealers"],
        "settings": {
            "arch": first["settings"]["arch"],
            **{
                key: first["config"][key]
                for key in (
                    "dataset",
                    "train_fraction",
                    "epochs",
                    "optimizer",
                    "learning_rate",
                    "batch_size",
                    "seeds",
                    "validation_fraction",
                    "validation_split",
                    "augment",
                )
            },
            # The stingy release's share of classes served; None for its default
            # (`nasty_tf.releases.default_top_k_ratio`).
            "top_k_ratio": config.top_k_ratio,
        },
        "config": _jsonable(dataclasses.asdict(config)),
        **provenance(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_text(
        os.path.join(config.output_dir, MATRIX_MD),
        "\n".join(["# Defences x stealers", "", *format_matrix_table(matrix)]).rstrip() + "\n",
    )
    atomic_write_json(os.path.join(config.output_dir, MATRIX_JSON), matrix)
    return matrix
