"""Flags of the audit binary (`tools.audit`): the release, the stealers, the students' schedule."""

from absl import flags

from flags import data


def define_audit_flags():
    flags.DEFINE_string(
        "model",
        None,
        "The released network (.keras file), served through --release. Exactly one of "
        "--model and --saved_model.",
    )
    flags.DEFINE_string(
        "saved_model",
        None,
        "A SavedModel export directory (tools.export), audited as its serving_default serves "
        "(TensorFlow backend only). Exactly one of --model and --saved_model.",
    )
    data.define_dataset_flags()
    data.define_subset_flags()
    flags.DEFINE_bool(
        "matrix",
        False,
        "Audit the defences x stealers matrix of two networks instead of one release: --model "
        "is the nasty network and --reference the normal one. The four defences (plain: the "
        "normal network served plain; nasty; stingy: the normal network's top-k; "
        "nasty+stingy) each get an audit in --output_dir/<defence>/ (the runs that do not "
        "depend on the release train once), beside matrix.json and matrix.md with each "
        "defence's teacher cost against plain. Not with --saved_model or --release.",
    )
    flags.DEFINE_string(
        "reference",
        None,
        "Optional normally trained network (.keras file): each stealer is also compared with a "
        "KD student of its plain release (vs_reference).",
    )
    flags.DEFINE_list(
        "stealers",
        None,
        "Stealers to run (comma-separated): hard_label, high_temperature, kd, skeptical, "
        "standardized, topk, and the data-free dafl, deepinversion; default all but the "
        "data-free ones (a few minutes each on 2 cores), which attack the network file itself "
        "and need --model (dafl: TensorFlow backend). The scratch and label_smoothing baselines "
        "always run; --stealers= (empty) runs only them, e.g. for the doubling check of a "
        "schedule (not with --matrix).",
    )
    flags.DEFINE_list(
        "stealer_params",
        None,
        "Stealer parameters over the registry's defaults, as stealer.parameter=value items "
        "(comma-separated), e.g. skeptical.loc=1,skeptical.kd_delay=9,high_temperature."
        "temperature=50; only for stealers that run.",
    )
    flags.DEFINE_bool(
        "search_skeptical",
        False,
        "Choose the skeptical stealer's loc (1, 2) and kd_delay (KD from the first epoch, or "
        "after a quarter of --epochs on labels alone) on the validation split: the 4 "
        "combinations each train a cached student, and skeptical's row is the one with the "
        "highest validation accuracy (scorecard.md shows the grid). Default: loc 1, kd_delay 0.",
    )
    flags.DEFINE_string(
        "release",
        None,
        "How --model is served: plain (logits and softmax) or stingy (top-k logits only); "
        "default plain. Not for --saved_model, which serves what it was exported with.",
    )
    flags.DEFINE_float(
        "top_k_ratio",
        None,
        "--release=stingy: the share of classes served, in (0, 1]; default 0.2 below 100 "
        "classes, 0.1 from 100 on.",
    )
    flags.DEFINE_string(
        "arch",
        None,
        "The students' architecture; default the teacher's own when its network names a "
        "registered one, else cnn.",
    )
    flags.DEFINE_integer(
        "epochs", 24, "Epochs of every student (24 converges on digits; train to the end)."
    )
    flags.DEFINE_string(
        "optimizer", "adam", "Every student's optimizer: adam or sgd (momentum 0.9)."
    )
    flags.DEFINE_float("learning_rate", 1e-3, "Every student's (constant) learning rate.")
    flags.DEFINE_integer("batch_size", 128, "Every student's batch size.")
    flags.DEFINE_list(
        "seeds", ["0"], "Seeds (comma-separated): one student per seed and stealer, averaged."
    )
    flags.DEFINE_float(
        "validation_fraction",
        0.1,
        "Stratified share of the training split held out from every student, in (0, 1); it "
        "only reports (the test split reports the scorecard, nothing is chosen on it).",
    )
    flags.DEFINE_enum(
        "validation_split",
        "carved",
        ["carved", "unseen"],
        "Where the validation images come from. carved: out of the students' training split. "
        "unseen: out of the training images that --train_fraction leaves out, for a teacher "
        "trained on that subset (a protocol's), which fits its own training images better than "
        "new ones and so flatters its copies' validation accuracy; the students then train on "
        "the whole subset. Needs --train_fraction below 1.",
    )
    flags.DEFINE_bool(
        "augment",
        False,
        "Train every served stealer and baseline on the dataset's augmentation (crop, and flip "
        "for natural images), the release queried on each augmented batch: a small training "
        "split overfits without it. Off: the digits default converges without it.",
    )
    flags.DEFINE_list(
        "reuse_runs_from",
        None,
        "Other audits' output directories (comma-separated): a student run of exactly the same "
        "settings finished there, or one that trains the same student (hard labels from a plain "
        "or stingy release), is copied instead of trained again (e.g. the baselines, which do "
        "not depend on the release).",
    )
    flags.DEFINE_string(
        "output_dir",
        "runs/audit",
        "Where scorecard.json, scorecard.md, scorecard.png and the cached runs/ go; a rerun "
        "reuses finished runs.",
    )
    flags.DEFINE_integer("verbose", 0, "Keras verbosity of each student's training.")
