"""Audits a release: attacks it through what it serves with every stealer, writes a scorecard.

    python -m tools.audit --model=runs/nasty/model.keras --release=stingy --dataset=digits \
        --reference=runs/normal/model.keras --output_dir=audits/nasty_stingy
    python -m tools.audit --saved_model=exports/nasty --dataset=digits --output_dir=audits/export

    python -m tools.audit --model=runs/nasty/model.keras --dataset=digits \
        --stealers=kd,topk,skeptical,dafl,deepinversion --output_dir=audits/nasty_datafree

A protocol's release audited on the data its students train on, the skeptical stealer at a
chosen setting, the baselines copied from an earlier audit of the same data and schedule:

    python -m tools.audit --model=runs/cifar/teacher_nasty/model.keras --dataset=image_folder \
        --data_dir=cifar10-jpeg.tar.gz --data_cache_dir=cache --train_fraction=0.3 --augment \
        --epochs=40 --stealers=kd,skeptical --stealer_params=skeptical.loc=1,skeptical.kd_delay=9 \
        --reuse_runs_from=audits/plain40 --output_dir=audits/nasty40

The defences x stealers matrix of a nasty network and its normal one (plain, nasty, stingy and
nasty+stingy releases, each audited in its own subdirectory; matrix.json and matrix.md):

    python -m tools.audit --matrix --model=runs/nasty/model.keras \
        --reference=runs/normal/model.keras --dataset=digits --output_dir=audits/matrix

Writes scorecard.json, scorecard.md and scorecard.png in --output_dir, and each student run
under runs/ (a rerun reuses the finished ones; one audit at a time holds --output_dir). A
stealer is protected against when its student ends at or below the label-smoothing student.
The data-free stealers (dafl, deepinversion) are not in the default --stealers: they attack
the network file (--model only) and take minutes each. --search_skeptical chooses the
skeptical stealer's loc and kd_delay on the validation split (4 students instead of 1).
"""

from absl import flags as absl_flags

from flags import audit
from tools import common

audit.define_audit_flags()
FLAGS = absl_flags.FLAGS


def _seeds(values):
    from nasty_tf.errors import InputError

    try:
        return tuple(int(value) for value in values or ())
    except ValueError:
        shown = ",".join(values)
        raise InputError(f"seeds must be a list of integers. Received: seeds={shown}") from None


def _number_or_text(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _stealer_params(items):
    """`--stealer_params` (`stealer.parameter=value` items) as `AuditConfig.stealer_params`:
    `{stealer: {parameter: value}}`, a value an int or float where it reads as one."""
    from nasty_tf.errors import InputError

    params = {}
    for item in items or ():
        target, equals, value = item.partition("=")
        stealer, dot, parameter = target.partition(".")
        if not (equals and dot and stealer and parameter and value):
            raise InputError(
                "stealer_params must be stealer.parameter=value items, e.g. skeptical.loc=1. "
                f"Received: stealer_params={','.join(items)}"
            )
        if parameter in params.setdefault(stealer, {}):
            raise InputError(
                f"stealer_params gives {stealer}.{parameter} twice. "
                f"Received: stealer_params={','.join(items)}"
            )
        params[stealer][parameter] = _number_or_text(value)
    return params or None


def _stealer_search():
    """`--search_skeptical` as `AuditConfig.stealer_search`: the default grid at `--epochs`."""
    from nasty_tf.audit import skeptical_search
    from nasty_tf.errors import InputError

    if not FLAGS.search_skeptical:
        return None
    if FLAGS.stealers is not None and "skeptical" not in FLAGS.stealers:
        raise InputError(
            "search_skeptical searches the skeptical stealer, which --stealers leaves out. "
            f"Received: stealers={','.join(FLAGS.stealers)}"
        )
    return {"skeptical": skeptical_search(FLAGS.epochs)}


def _shared_settings():
    """The settings a single audit and the matrix's four audits take alike."""
    return dict(
        output_dir=FLAGS.output_dir,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        data_cache_dir=FLAGS.data_cache_dir,
        train_fraction=FLAGS.train_fraction,
        stealers=None if FLAGS.stealers is None else tuple(FLAGS.stealers),
        stealer_params=_stealer_params(FLAGS.stealer_params),
        stealer_search=_stealer_search(),
        top_k_ratio=FLAGS.top_k_ratio,
        arch=FLAGS.arch,
        epochs=FLAGS.epochs,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        batch_size=FLAGS.batch_size,
        seeds=_seeds(FLAGS.seeds),
        validation_fraction=FLAGS.validation_fraction,
        validation_split=FLAGS.validation_split,
        augment=FLAGS.augment,
        verbose=FLAGS.verbose,
        reuse_runs_from=tuple(FLAGS.reuse_runs_from or ()),
    )


def _unprotected(stealer_rows):
    return ", ".join(row["name"] for row in stealer_rows if not row["protected"]) or "none"


def _audit_one_release():
    from nasty_tf.audit import AuditConfig
    from nasty_tf.audit import audit as run_audit

    config = AuditConfig(
        **_shared_settings(),
        model=FLAGS.model,
        saved_model=FLAGS.saved_model,
        reference=FLAGS.reference,
        release=FLAGS.release,
    )
    scorecard = run_audit(config)
    verdicts = (
        f"not protected against: {_unprotected(scorecard['stealers'])}"
        if scorecard["stealers"]
        else "no stealers (the baselines only)"
    )
    print(
        f"teacher {scorecard['teacher']['accuracy']:.2f}%; label smoothing "
        f"{scorecard['baselines']['label_smoothing']:.2f}%; {verdicts} -> "
        f"{config.output_dir}/scorecard.md"
    )


def _audit_matrix():
    from nasty_tf.audit import MatrixConfig, audit_matrix
    from nasty_tf.errors import InputError

    for name in ("saved_model", "release"):
        if FLAGS[name].value is not None:
            raise InputError(
                f"matrix audits the four releases of two .keras networks (each defence says how "
                f"its network is served), so `{name}` does not apply. "
                f"Received: {name}={FLAGS[name].value}"
            )
    if not FLAGS.model or not FLAGS.reference:
        raise InputError(
            "matrix needs two .keras files: `model`, the nasty network, and `reference`, the "
            f"normal one. Received: model={FLAGS.model}, reference={FLAGS.reference}"
        )
    config = MatrixConfig(**_shared_settings(), normal=FLAGS.reference, nasty=FLAGS.model)
    matrix = audit_matrix(config)
    for name in matrix["order"]:
        defence = matrix["defences"][name]
        print(
            f"{name}: teacher {defence['teacher']['accuracy']:.2f}% "
            f"({defence['teacher']['cost']:+.2f}); label smoothing "
            f"{defence['baselines']['label_smoothing']:.2f}%; not protected against: "
            f"{_unprotected(defence['stealers'])}"
        )
    print(f"-> {config.output_dir}/matrix.md")


def main():
    if FLAGS.matrix:
        _audit_matrix()
    else:
        _audit_one_release()


def console_main():
    """Console script `nasty-tf-audit`: what `python -m tools.audit` runs."""
    common.run(main)


if __name__ == "__main__":
    console_main()
