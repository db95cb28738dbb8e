"""Flags of `tools.reproduce`: the protocol and overrides of its defaults."""

from absl import flags


def define_reproduce_flags():
    flags.DEFINE_string("protocol", None, "Protocol to run (default: digits_demo).")
    flags.DEFINE_string(
        "output_dir", None, "Where the runs and reports go (default runs/<protocol>)."
    )
    flags.DEFINE_bool("overwrite", False, "Retrain stages that already finished.")
    flags.DEFINE_string("dataset", None, "Override the protocol's dataset.")
    flags.DEFINE_string("data_dir", None, "Dataset location (see tools.train --helpfull).")
    flags.DEFINE_string(
        "data_cache_dir",
        None,
        "Keep decoded images here, memory-mapped (see tools.train --helpfull).",
    )
    flags.DEFINE_float("train_fraction", None, "Stratified fraction of the training split, (0, 1].")
    flags.DEFINE_integer("seed", None, "Seed of the teachers (students use --student_seeds).")
    flags.DEFINE_string(
        "precision",
        None,
        "Keras dtype policy of every stage: float32, mixed_bfloat16 or mixed_float16.",
    )
    flags.DEFINE_string(
        "init",
        None,
        "Initialisers of every network trained: keras (Keras' defaults) or reference (the "
        "reference PyTorch models'). Default: the protocol's (reference for the paper tables, "
        "keras for digits_demo, cifar10_cpu and fast_cifar10).",
    )
    flags.DEFINE_string("arch", None, "Override the teacher architecture (normal and nasty).")
    flags.DEFINE_list(
        "student_archs",
        None,
        "Override the student architectures (comma-separated; 'self' = the teacher's). A listed "
        "arch keeps its protocol schedule; others take the last student's.",
    )
    flags.DEFINE_list("student_seeds", None, "Seeds of the student runs, averaged in the report.")
    flags.DEFINE_integer(
        "epochs", None, "Override the teachers' epochs (not scaled by --epochs_scale)."
    )
    flags.DEFINE_integer(
        "student_epochs", None, "Override the students' epochs (not scaled by --epochs_scale)."
    )
    flags.DEFINE_float(
        "epochs_scale",
        None,
        "Multiply every stage's default epochs (rounded, at least 1), keeping the lr schedule's "
        "shape: e.g. 0.01 for a smoke run. Only the full length reproduces the paper.",
    )
    flags.DEFINE_string(
        "normal_teacher", None, "A trained normal teacher (.keras) to use instead of training one."
    )
    flags.DEFINE_string(
        "nasty_teacher", None, "A trained nasty teacher (.keras) to use instead of training one."
    )
    flags.DEFINE_integer("batch_size", None, "Override every stage's batch size.")
    flags.DEFINE_float("learning_rate", None, "Override every stage's initial learning rate.")
    flags.DEFINE_float("omega", None, "Override omega of the nasty teacher (eq. 2).")
    flags.DEFINE_float("temperature", None, "Override tau_A of the nasty teacher (eq. 2).")
    flags.DEFINE_bool(
        "nasty_init_from_normal",
        None,
        "Start every nasty teacher from the normal teacher's weights (tools.train_nasty "
        "--init_from) instead of a fresh initialisation. Default: the protocol's (on for "
        "cifar10_cpu, off elsewhere; --nonasty_init_from_normal turns it off).",
    )
    flags.DEFINE_integer(
        "omega_warmup_epochs",
        None,
        "Ramp omega of every nasty teacher linearly from 0 over this many epochs "
        "(tools.train_nasty --omega_warmup_epochs). Default: the protocol's (4 for cifar10_cpu, "
        "0 elsewhere: none).",
    )
    flags.DEFINE_float("alpha", None, "Override alpha of the KD students (eq. 1).")
    flags.DEFINE_float("kd_temperature", None, "Override tau_s of the KD students (eq. 1).")
    flags.DEFINE_bool(
        "figures",
        None,
        "Write logit-response and t-SNE figures (default: the protocol's; on but for fast_cifar10).",
    )
    for dimension, what in (
        ("kd_temperature", "KD temperatures tau_s (Fig. 4), e.g. 1,4,10,20"),
        ("alpha", "alphas (Fig. 5a), e.g. 0.1,0.5,0.9"),
        (
            "train_fraction",
            "fractions of the training data for the students only (Fig. 5b), e.g. 0.1,0.5",
        ),
    ):
        flags.DEFINE_list(
            f"sweep_{dimension}",
            None,
            f"Stealer sweep over {what}: KD from the normal and the nasty teacher for the first "
            "student arch and every seed, cached per config. Replaces the protocol's sweep of "
            "this dimension; an empty value turns it off.",
        )
    flags.DEFINE_list(
        "sweep_omega",
        None,
        "Owner-side sweep over omega of the nasty teacher (Fig. 3), e.g. 0.02,0.04,0.08: a nasty "
        "teacher per value, then the first student arch by KD from it, every seed; cached per "
        "config. Replaces the protocol's omega sweep; an empty value turns it off.",
    )
    flags.DEFINE_list(
        "adversary_archs",
        None,
        "Adversary-architecture ablation (Table 4), e.g. cnn,resnext29: per arch a normal network "
        "(the teacher's schedule), a nasty teacher against it, and every student arch by KD from "
        "it; the teacher's own arch reuses the protocol's nasty teacher. Empty: none.",
    )
    flags.DEFINE_list(
        "datafree",
        None,
        "Data-free stealers (Table 5): dafl, deepinversion, or both. Each attacks the normal and "
        "the nasty teacher with the protocol's first student arch, at the protocol's scaled-down "
        "settings (see tools.datafree for the full-length ones); cached per config. Empty: none.",
    )
    flags.DEFINE_list(
        "matrix_stealers",
        None,
        "The defences x stealers matrix (tools.audit on plain, nasty, stingy and nasty+stingy "
        "releases of the two teachers, in <output_dir>/matrix/, a table in report.md): the "
        "stealers, comma-separated (kd, hard_label, high_temperature, standardized, topk, "
        "skeptical, dafl, deepinversion), or all, or served (all but the data-free ones). Its "
        "students take the first student arch's schedule and seeds. Empty: none (the default: "
        "it trains 4 x stealers + 3 students).",
    )
    flags.DEFINE_integer(
        "matrix_epochs",
        None,
        "The matrix students' epochs (their augmented, held-out-validation schedule converges "
        "later than the protocol's own students); default the protocol's: the first student "
        "arch's epochs unless the protocol sets its own.",
    )
    flags.DEFINE_enum(
        "matrix_validation_split",
        None,
        ["carved", "unseen"],
        "Where the matrix's validation split comes from (tools.audit --validation_split): "
        "carved from its students' training split (the default), or unseen: from the training "
        "images --train_fraction leaves out, which the teachers never saw.",
    )
    flags.DEFINE_bool(
        "matrix_search_skeptical",
        None,
        "With skeptical in --matrix_stealers: each defence's audit chooses its loc and kd_delay "
        "on its own validation split (tools.audit --search_skeptical; 4 students instead of 1 "
        "per defence).",
    )
    flags.DEFINE_string(
        "weight_decay_mode",
        None,
        "Weight decay of the SGD stages: coupled (PyTorch's, the reference; the default) or "
        "decoupled (Keras' SGD(weight_decay)).",
    )
    flags.DEFINE_integer("verbose", 2, "Keras verbosity: 2 = one line per epoch.")
    flags.DEFINE_integer(
        "evaluate_every",
        None,
        "Every stage evaluates the test split after every this many epochs and after the "
        "last (default: the protocol's).",
    )
    flags.DEFINE_integer(
        "backup_every",
        None,
        "Every stage writes its resumable backup after every this many epochs (default: the "
        "protocol's).",
    )
