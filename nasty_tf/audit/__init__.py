"""The audit: how protected is a release against the attacks known today (issue 20, item 3).

`audit(config)` is the battery seen from a model owner's side: it attacks a release only
through what the release serves, with the stealers of `nasty_tf.stealers`, and writes a
scorecard (`scorecard`):

- `D/scorecard.json`: `{"teacher": {"accuracy"}, "baselines": {"scratch", "label_smoothing"},
  "stealers": [{"name", "kind", "accuracy", "vs_scratch", "vs_label_smoothing",
  "vs_reference", "protected"}], ...}` plus the config, machine, date, backend and command;
- `D/scorecard.md`: the same as a table;
- `D/scorecard.png`: student accuracy per stealer, the baselines as lines.

What is attacked is what is served (`target`): a `.keras` network through
`nasty_tf.releases` (`plain` or `stingy`), the same code `tools.export --release` writes; a
SavedModel export as its `serving_default` serves (TensorFlow backend only). Teacher accuracy
is the argmax of the served logits. The two data-free stealers, `dafl` and `deepinversion`,
are the exception: white-box, they attack the `.keras` network file itself (a SavedModel
audit refuses them up front) with their own schedule (their registry parameters), and are
left out of the default stealers for time; name them in `stealers` to add them.

Every other student (the two baselines, each served stealer, and the KD-from-reference student
when a reference is given) trains the same architecture with the same schedule and seed, on
the training split less a stratified validation split (`validation_fraction`), and reports its
test accuracy, averaged over seeds. Nothing is chosen on the test split: the stealers run with
their registry defaults (or `stealer_params`), except those of `stealer_search`, a held-out
search (`search`): every combination of the grid trains, and the stealer's entry is the
student with the highest validation accuracy, its `search` record beside it
(`search.skeptical_search(epochs)` is skeptical's default grid over `loc` and `kd_delay`,
`tools.audit --search_skeptical`). A stealer is `protected` against when its student ends at
or below the label-smoothing student (CMIM's bar, issue 20).

The audit is resumable and cached (`runs`): each student run lives in `D/runs/<name>_seed<k>/`.
A rerun with the same config reuses every finished run and trains only the missing ones; a
finished run whose config differs is refused, naming its directory. One audit at a time
writes `D`: it holds `D`'s `RunLock` for its whole life, and a second is refused at once,
naming the holder's process id.

Runs that do not depend on the release can be shared between audits: `reuse_runs_from` names
other audits' directories whose finished runs are copied in when their cache key equals the one
needed, or when they train the same student under another key (`twins`: e.g. hard labels from
a plain and a stingy release), never otherwise. The defences x stealers matrix (`matrix`,
`audit_matrix`) uses it: four audits (`plain`, `nasty`, `stingy`, `nasty+stingy`), the
baselines trained once, and each defence's teacher cost against the plain release.

Modules: `config` (`AuditConfig`, its checks), `target` (the data and the release), `runs` (the
student runs and their cache), `twins` (which keys train the same student), `search` (a
stealer's grid, chosen on validation), `scorecard` (rows, Markdown, figure), `job` (`audit`),
`matrix` (`MatrixConfig`, `audit_matrix`).

Example:

```python
from nasty_tf.audit import AuditConfig, audit

scorecard = audit(AuditConfig(model="runs/nasty/model.keras", dataset="digits",
                              release="stingy", output_dir="audits/nasty_stingy",
                              stealers=("kd", "topk", "skeptical", "dafl")))
[(s["name"], s["protected"]) for s in scorecard["stealers"]]
```
"""

from nasty_tf.audit.config import (
    DATA_FREE_STEALERS,
    LABEL_SMOOTHING,
    REFERENCE_KD,
    RELEASES,
    SCRATCH,
    AuditConfig,
    auditable_stealers,
    check_config,
    default_stealers,
)
from nasty_tf.audit.job import audit
from nasty_tf.audit.matrix import (
    DEFENCES,
    MATRIX_JSON,
    MATRIX_MD,
    MatrixConfig,
    audit_matrix,
    check_matrix_config,
    defence_configs,
    defence_dir,
    matrix_stealer_names,
)
from nasty_tf.audit.runs import (
    MODEL_FILE,
    RESULT_FILE,
    RUNS_DIR,
    AuditRuns,
    _make_optimizer,  # noqa: F401 (tests/test_fidelity.py reads it)
)
from nasty_tf.audit.scorecard import (
    SCORECARD_JSON,
    SCORECARD_MD,
    SCORECARD_PNG,
    format_scorecard,
    plot_scorecard,
)
from nasty_tf.audit.search import SKEPTICAL_SEARCH, skeptical_search
from nasty_tf.audit.target import AuditTarget, load_target

__all__ = [
    "DATA_FREE_STEALERS",
    "DEFENCES",
    "LABEL_SMOOTHING",
    "MATRIX_JSON",
    "MATRIX_MD",
    "MODEL_FILE",
    "REFERENCE_KD",
    "RELEASES",
    "RESULT_FILE",
    "RUNS_DIR",
    "SCORECARD_JSON",
    "SCORECARD_MD",
    "SCORECARD_PNG",
    "SCRATCH",
    "SKEPTICAL_SEARCH",
    "AuditConfig",
    "AuditRuns",
    "AuditTarget",
    "MatrixConfig",
    "audit",
    "audit_matrix",
    "check_matrix_config",
    "auditable_stealers",
    "check_config",
    "default_stealers",
    "defence_configs",
    "defence_dir",
    "format_scorecard",
    "load_target",
    "matrix_stealer_names",
    "plot_scorecard",
    "skeptical_search",
]
