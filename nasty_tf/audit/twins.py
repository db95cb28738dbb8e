"""Which cached runs train the same student though their keys differ: the audit's twins.

A run's cache key (`runs.AuditRuns.run`) says what was asked for. Some different keys train
the very same student, step for step, and a run of one may stand in for the other:

- the run name is only a label: `reference_kd` and `kd` against the normal network's plain
  release, or a searched combination and the same parameters given outright;
- `hard_label` reads only the served argmax, which every stingy release keeps: its runs
  against one network's plain and stingy releases are one run;
- `topk` keeping `k` classes of a plain release computes the targets `kd` (same `alpha` and
  `temperature`) reads from the stingy release that serves those `k` classes:
  `stealers.served.keep_top_k` adds the log of the same top-k mask that
  `releases.stingy` serves with;
- a stingy release that serves every class is the plain release.

`training_identity(key, num_classes)` maps a key to what decides the training; keys with equal
identities are twins. Only releases of a `.keras` network are looked into: a SavedModel's
release is opaque (keyed by its own hash), so its keys stay as they are.
"""

from nasty_tf import releases

_TOPK, _KD, _HARD_LABEL = "topk", "kd", "hard_label"


def _served_classes(release, num_classes):
    """How many classes a `.keras` release key serves: all for plain (a reference's key names
    no release: plain), `top_k_count` for stingy."""
    if release.get("release", "plain") == "plain":
        return num_classes
    return releases.top_k_count(num_classes, release.get("top_k_ratio"))


def training_identity(key, num_classes):
    """`key` without what leaves the student's training unchanged (the module docstring).

    Args:
        key: a run's cache key: its `name`, `stealer` (`Stealer.config()`), `release` (None for
            a student that never reads one), and the data, schedule and seed fields.
        num_classes: the dataset's, to count what a stingy release serves.
    """
    identity = {field: value for field, value in key.items() if field != "name"}
    release = key.get("release")
    if not release or release.get("kind") != "keras" or "stealer" not in key:
        return identity
    stealer = dict(key["stealer"])
    served = _served_classes(release, num_classes)
    if stealer["name"] == _HARD_LABEL:
        served = 1  # the argmax alone
    elif stealer["name"] == _TOPK and isinstance(stealer.get("k"), int):
        served = min(stealer.pop("k"), served)
        stealer["name"] = _KD
    identity["stealer"] = stealer
    identity["release"] = {"kind": "keras", "sha256": release["sha256"], "served": served}
    return identity
