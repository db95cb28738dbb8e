"""Reports shaped like the paper's Table 1: `report.json`, `report.md`, and a printed table."""

import datetime
import os
import platform
import shlex
import statistics
import sys

import keras

from nasty_tf.atomic_io import atomic_write_json, atomic_write_text

ROUTES = ("none", "normal", "nasty")
ROUTE_TITLES = {"none": "Scratch", "normal": "KD from normal", "nasty": "KD from nasty"}


def student_row(arch, teacher, seed, metrics):
    """One student run as it appears in `report.json["student_runs"]`."""
    return {
        "arch": arch,
        "teacher": teacher,
        "seed": seed,
        "accuracy": metrics["accuracy"],
        "train_seconds": metrics.get("train_seconds"),
    }


def _summarise_students(student_runs):
    """Averages runs over seeds: one row per (arch, teacher), with the delta to scratch."""
    groups = {}
    for run in student_runs:
        groups.setdefault((run["arch"], run["teacher"]), []).append(run["accuracy"])
    rows = []
    for (arch, teacher), accuracies in groups.items():
        rows.append(
            {
                "arch": arch,
                "teacher": teacher,
                "accuracy": statistics.fmean(accuracies),
                "std": statistics.pstdev(accuracies),
                "accuracies": accuracies,
            }
        )
    scratch = {row["arch"]: row["accuracy"] for row in rows if row["teacher"] == "none"}
    for row in rows:
        if row["arch"] in scratch:
            row["delta_vs_scratch"] = row["accuracy"] - scratch[row["arch"]]
    return rows


def _machine():
    """CPU model and count, e.g. "Intel(R) Xeon(R) Processor, 2 CPUs"."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs"


def invoking_command(argv=None):
    """The command line that made this report, as a user would retype it.

    A binary started as `python -m tools.<name>` sees its file path in `argv[0]`; it is written
    back as the module form, and anything else (a console script, a test) as given.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    head = argv[0]
    parts = os.path.normpath(head).split(os.sep)
    if len(parts) >= 2 and parts[-2] == "tools" and parts[-1].endswith(".py"):
        head = f"python -m tools.{parts[-1][:-3]}"
    else:
        head = os.path.basename(head)
    return " ".join([head, *(shlex.quote(arg) for arg in argv[1:])])


def provenance():
    """Where and how a report was made: `date` (UTC, ISO), `machine`, Keras `backend`, and the
    `command` that made it (`invoking_command`). Every written report carries these."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "backend": keras.backend.backend(),
        "command": invoking_command(),
    }


def build_report(
    protocol,
    settings,
    normal,
    nasty,
    student_runs,
    seconds,
    figures=None,
    sweeps=None,
    owner=None,
    datafree=None,
    matrix=None,
):
    """The report dict: teachers, students averaged over seeds, every run and config.

    Accuracies are test-split percentages of the last epoch (no checkpoint selection on the
    test set, unlike the reference code). `sweeps`: `{dimension: [{value, route, accuracy,
    accuracies, run_dirs}]}` from `nasty_tf.protocols.battery.run_sweeps`. `owner`:
    `{"omega": [...], "adversary_arch": [...]}` from `nasty_tf.protocols.owner_ablations`.
    `datafree`: `[{method, teacher, arch, teacher_accuracy, accuracy, run_dir, grid, settings}]`
    from `nasty_tf.protocols.datafree_attacks`. `matrix`: the defences x stealers matrix
    (`nasty_tf.audit.audit_matrix`'s dict; its paths are relative to the protocol's
    `matrix/`), or None when the protocol ran none.
    """
    return {
        "protocol": protocol,
        **provenance(),
        "seconds": round(seconds, 1),
        "settings": settings,
        "teachers": {
            "normal": {
                "arch": normal["arch"],
                "accuracy": normal["accuracy"],
                "train_seconds": normal.get("train_seconds"),
                "file": normal.get("file"),  # set when given rather than trained
            },
            "nasty": {
                "arch": nasty["arch"],
                "accuracy": nasty["accuracy"],
                "delta": nasty["accuracy"] - normal["accuracy"],
                "adversarial_kl": nasty.get("adversarial_kl"),
                "train_seconds": nasty.get("train_seconds"),
                "file": nasty.get("file"),
            },
        },
        "students": _summarise_students(student_runs),
        "student_runs": student_runs,
        "figures": figures or {},
        "sweeps": sweeps or {},
        "owner": owner or {},
        "datafree": datafree or [],
        "matrix": matrix,
    }


def _cell(row):
    text = f"{row['accuracy']:.2f}"
    if len(row["accuracies"]) > 1:
        text += f" ± {row['std']:.2f}"
    if row["teacher"] != "none" and "delta_vs_scratch" in row:
        text += f" ({row['delta_vs_scratch']:+.2f})"
    return text


def format_table(report):
    """Markdown table in the shape of the paper's Table 1."""
    normal, nasty = report["teachers"]["normal"], report["teachers"]["nasty"]
    lines = [
        "| Teacher | Normal | Nasty (delta) | Adversarial KL |",
        "|---|---|---|---|",
        f"| {normal['arch']} | {normal['accuracy']:.2f} | {nasty['accuracy']:.2f} "
        f"({nasty['delta']:+.2f}) | {nasty['adversarial_kl']:.3f} |",
        "",
        "| Student | " + " | ".join(ROUTE_TITLES[route] for route in ROUTES) + " |",
        "|---|---|---|---|",
    ]
    by_arch = {}
    for row in report["students"]:
        by_arch.setdefault(row["arch"], {})[row["teacher"]] = row
    for arch, routes in by_arch.items():
        cells = [_cell(routes[route]) if route in routes else "-" for route in ROUTES]
        lines.append(f"| {arch} | " + " | ".join(cells) + " |")
    lines.append("")
    for arch, routes in by_arch.items():
        if "normal" in routes and "nasty" in routes:
            loss = routes["nasty"]["accuracy"] - routes["normal"]["accuracy"]
            lines.append(
                f"Stealer's change, KD from nasty vs KD from normal ({arch}): {loss:+.2f} points"
            )
    return "\n".join(lines)


def _given_teachers(report):
    """Lines naming the teachers that were loaded from files rather than trained."""
    return [
        f"The {route} teacher was given, not trained: `{teacher['file']}`."
        for route, teacher in report["teachers"].items()
        if teacher.get("file")
    ]


SWEEP_TITLES = {
    "kd_temperature": "KD temperature tau_s (Fig. 4)",
    "alpha": "alpha (Fig. 5a)",
    "train_fraction": "fraction of the students' training data (Fig. 5b)",
}


def format_sweep_tables(report):
    """One markdown table per swept dimension: a row per value, a column per route."""
    lines = []
    for dimension, entries in (report.get("sweeps") or {}).items():
        routes = [route for route in ROUTES if any(e["route"] == route for e in entries)]
        by_value = {}
        for entry in entries:
            by_value.setdefault(entry["value"], {})[entry["route"]] = entry
        lines += [
            f"Sweep of {SWEEP_TITLES.get(dimension, dimension)}, other settings at the protocol's:",
            "",
            f"| {dimension} | "
            + " | ".join(ROUTE_TITLES[route] for route in routes)
            + " | Nasty - normal |",
            "|---|" + "---|" * (len(routes) + 1),
        ]
        for value, row in by_value.items():
            cells = [f"{row[route]['accuracy']:.2f}" if route in row else "-" for route in routes]
            gap = (
                f"{row['nasty']['accuracy'] - row['normal']['accuracy']:+.2f}"
                if "nasty" in row and "normal" in row
                else "-"
            )
            lines.append(f"| {value:g} | " + " | ".join(cells) + f" | {gap} |")
        lines.append("")
    return lines


def _signed(value, reference):
    return f"{value:.2f} ({value - reference:+.2f})"


def format_owner_tables(report):
    """The omega sweep (Fig. 3's numbers) and the adversary ablation (Table 4's shape)."""
    owner = report.get("owner") or {}
    normal = report["teachers"]["normal"]
    scratch = {
        row["arch"]: row["accuracy"] for row in report["students"] if row["teacher"] == "none"
    }
    kd_normal = {
        row["arch"]: row["accuracy"] for row in report["students"] if row["teacher"] == "normal"
    }
    lines = []
    if owner.get("omega"):
        arch = owner["omega"][0]["student"]["arch"]
        lines += [
            f"Sweep of omega (Fig. 3): nasty {normal['arch']} teachers, student {arch} by KD from each "
            f"(scratch {scratch[arch]:.2f}, KD from the normal teacher {kd_normal[arch]:.2f}); "
            "in brackets the change against the normal teacher and the student from scratch.",
            "",
            f"| omega | Nasty teacher | Adversarial KL | Student {arch} | Nasty - normal KD |",
            "|---|---|---|---|---|",
        ]
        for entry in owner["omega"]:
            teacher, student = entry["teacher"], entry["student"]
            lines.append(
                f"| {entry['value']:g} | {_signed(teacher['accuracy'], normal['accuracy'])} | "
                f"{teacher['adversarial_kl']:.3f} | {_signed(student['accuracy'], scratch[arch])} | "
                f"{student['accuracy'] - kd_normal[arch]:+.2f} |"
            )
        lines.append("")
    if owner.get("adversary_arch"):
        archs = list(scratch)
        teacher_arch = normal["arch"]
        lines += [
            f"Adversary architecture (Table 4): nasty {teacher_arch} teachers trained against a normal "
            "network of the named architecture, students by KD from each; in brackets the change "
            "against the normal teacher and each student's scratch baseline.",
            "",
            "| Teacher network | Adversary accuracy | Teacher | " + " | ".join(archs) + " |",
            "|---|---|---|" + "---|" * len(archs),
            "| student baseline | - | - | " + " | ".join(f"{scratch[a]:.2f}" for a in archs) + " |",
            f"| {teacher_arch}(normal) | - | {normal['accuracy']:.2f} | "
            + " | ".join(
                _signed(kd_normal[a], scratch[a]) if a in kd_normal else "-" for a in archs
            )
            + " |",
        ]
        for entry in owner["adversary_arch"]:
            teacher = entry["teacher"]
            students = {row["arch"]: row["accuracy"] for row in entry["students"]}
            adversary = teacher.get("adversary_accuracy")
            lines.append(
                f"| {teacher_arch}({entry['adversary_arch']}) | "
                + (f"{adversary:.2f}" if adversary is not None else "-")
                + f" | {_signed(teacher['accuracy'], normal['accuracy'])} | "
                + " | ".join(
                    _signed(students[a], scratch[a]) if a in students else "-" for a in archs
                )
                + " |"
            )
        lines.append("")
    return lines


DATAFREE_TITLES = {"dafl": "DAFL", "deepinversion": "DeepInversion"}


def format_datafree_table(report):
    """Table 5's shape: per method, the teachers' accuracy and their data-free students'."""
    entries = report.get("datafree") or []
    if not entries:
        return []
    lines = [
        "Data-free KD (Table 5): the stealer has only the teacher file; accuracy of its student "
        f"({entries[0]['arch']}) on the test split; the images each attack inverted are below (Fig. 6).",
        "",
        "| Method | Teacher | Teacher accuracy | Student | Nasty - normal |",
        "|---|---|---|---|---|",
    ]
    by_method = {}
    for entry in entries:
        by_method.setdefault(entry["method"], {})[entry["teacher"]] = entry
    for method, routes in by_method.items():
        for route, entry in routes.items():
            gap = "-"
            if route == "nasty" and "normal" in routes:
                gap = f"{entry['accuracy'] - routes['normal']['accuracy']:+.2f}"
            lines.append(
                f"| {DATAFREE_TITLES.get(method, method)} | {route} | {entry['teacher_accuracy']:.2f} | "
                f"{entry['accuracy']:.2f} | {gap} |"
            )
    lines.append("")
    for entry in entries:
        title = (
            f"{DATAFREE_TITLES.get(entry['method'], entry['method'])}, {entry['teacher']} teacher"
        )
        lines += [f"![Images inverted by {title} (Fig. 6)]({entry['grid']})", ""]
    return lines


MATRIX_DEFENCES = {
    "plain": "the normal network, served plain",
    "nasty": "the nasty network, served plain",
    "stingy": "the normal network, served stingy (top-k logits)",
    "nasty+stingy": "the nasty network, served stingy",
}


def _matrix_cell(row, smoothing):
    text = f"{row['accuracy']:.2f} ({row['accuracy'] - smoothing:+.2f})"
    if "protected" in row:
        text += " ✓" if row["protected"] else " **✗**"
    return text


def format_matrix_table(matrix):
    """The defences x stealers matrix (`nasty_tf.audit.audit_matrix`) as Markdown lines.

    Rows: the teacher (served test accuracy and, in brackets, its cost against the plain
    release), the baselines, the reference's KD student and each stealer; columns: the
    defences. A student's cell: its test accuracy, in brackets the change against the
    label-smoothing student of the same column, and ✓ where the defence is protected against
    it (at or below that student), ✗ where not. Empty for a report without a matrix.
    """
    if not matrix:
        return []
    order = matrix["order"]
    defences = [matrix["defences"][name] for name in order]
    settings = matrix["settings"]
    seeds = ", ".join(str(seed) for seed in settings["seeds"])
    ratio = settings.get("top_k_ratio")
    lines = [
        "Defences x stealers: each stealer's student test accuracy (%) against each defence "
        f"({'; '.join(f'{name}: {MATRIX_DEFENCES.get(name, name)}' for name in order)}"
        f"{'' if ratio is None else f', top_k_ratio {ratio:g}'}); in brackets the change "
        "against the label-smoothing student (the bar); ✓ protected (at or below the bar), "
        "✗ not. The teacher row: the served argmax's test accuracy, in brackets its cost "
        f"against the plain release. Students: {settings['arch']}, {settings['epochs']} epochs "
        f"of {settings['optimizer']} at {settings['learning_rate']:g}, batch "
        f"{settings['batch_size']}{', augmented' if settings.get('augment') else ''}, means "
        f"over seeds {seeds}"
        + (
            "; validated on training images outside the teachers' subset"
            if settings.get("validation_split") == "unseen"
            else ""
        )
        + ".",
        "",
        "| | " + " | ".join(order) + " |",
        "|---|" + "---|" * len(order),
        "| teacher (cost) | "
        + " | ".join(
            f"{d['teacher']['accuracy']:.2f} ({d['teacher']['cost']:+.2f})" for d in defences
        )
        + " |",
    ]

    def row(title, entries):
        cells = [
            _matrix_cell(entry, d["baselines"]["label_smoothing"]) if entry else "-"
            for entry, d in zip(entries, defences)
        ]
        return f"| {title} | " + " | ".join(cells) + " |"

    lines += [
        row("scratch", [{"accuracy": d["baselines"]["scratch"]} for d in defences]),
        row(
            "label smoothing (the bar)",
            [{"accuracy": d["baselines"]["label_smoothing"]} for d in defences],
        ),
    ]
    if any(d.get("reference") for d in defences):
        lines.append(
            row(
                "KD from the normal network",
                [
                    {"accuracy": d["reference"]["kd_accuracy"]} if d.get("reference") else None
                    for d in defences
                ],
            )
        )
    for name in matrix["stealers"]:
        entries = [next((r for r in d["stealers"] if r["name"] == name), None) for d in defences]
        datafree = any(entry and entry.get("kind") == "datafree" for entry in entries)
        lines.append(row(f"{name} (data-free)" if datafree else name, entries))
    lines += [
        "| protected against | "
        + " | ".join(
            f"{sum(r['protected'] for r in d['stealers'])} of {len(d['stealers'])}"
            for d in defences
        )
        + " |",
        "",
    ]
    return lines + _matrix_search_lines(matrix, defences) + _matrix_doubling_lines(matrix, defences)


def _matrix_doubling_lines(matrix, defences):
    """The audits' doubling check (`nasty_tf.audit.schedule`) in one line: the baselines are
    shared, so the first defence's verdict is every defence's; then the cells whose validation
    verdict changes between half and full epochs. None without a check."""
    checks = [d.get("doubling_check") for d in defences]
    if not checks[0]:
        return []
    check = checks[0]
    shifts = ", ".join(
        f"{shown} {check['baselines'][name]['shift']:+.2f}"
        for name, shown in (("scratch", "scratch"), ("label_smoothing", "label smoothing"))
    )
    changes = [
        f"{defence} {name}"
        for defence, d in zip(matrix["order"], checks)
        if d
        for name, row in d["stealers"].items()
        if row["verdict_changes"]
    ]
    return [
        f"**Doubling check** (validation, the mean over each schedule's last tenth): half the "
        f"schedule, {check['half_epochs']} epochs, is "
        f"{'enough' if check['half_is_enough'] else '**not** enough'} (the baselines moved "
        f"{shifts} from {check['half_epochs']} to {check['epochs']}; at most "
        f"{check['tolerance']}); validation verdicts that change between them: "
        f"{', '.join(changes) or 'none'}.",
        "",
    ]


def _matrix_search_lines(matrix, defences):
    """One line per searched stealer: the parameters each defence's audit chose on its own
    validation split."""
    lines = []
    for name in matrix["stealers"]:
        chosen = [
            (defence, row["search"]["chosen"])
            for defence, d in zip(matrix["order"], defences)
            for row in d["stealers"]
            if row["name"] == name and row.get("search")
        ]
        if chosen:
            picks = "; ".join(
                f"{defence}: "
                + ", ".join(f"{key} {value}" for key, value in sorted(params.items()))
                for defence, params in chosen
            )
            lines += [f"**{name}**, chosen on each defence's validation split: {picks}.", ""]
    return lines


FIGURE_CAPTIONS = {
    "sweep_omega": "Nasty teacher and KD student accuracy vs omega (Fig. 3)",
    "sweep_kd_temperature": "Student accuracy vs KD temperature tau_s (Fig. 4)",
    "sweep_alpha": "Student accuracy vs alpha (Fig. 5a)",
    "sweep_train_fraction": "Student accuracy vs fraction of the training data (Fig. 5b)",
    "logit_responses": "Logit responses after temperature softmax, normal vs nasty teacher (Fig. 1)",
    "tsne_features": "t-SNE of the teachers' pre-logit features (Fig. 2)",
    "tsne_logits": "t-SNE of the teachers' logits (Fig. 2)",
}


def _figure_lines(figures):
    lines = []
    for key, file_name in figures.items():
        lines += [f"![{FIGURE_CAPTIONS.get(key, key)}]({file_name})", ""]
    return lines


def format_markdown(report):
    seeds = report["settings"].get("student_seeds")
    given = _given_teachers(report)
    return "\n".join(
        [
            f"# nasty-tf report: {report['protocol']}",
            "",
            f"{report['date']}, {report['machine']}, Keras backend {report['backend']}, "
            f"command `{report.get('command') or 'not recorded'}`, "
            f"{report['seconds']:.0f} s wall-clock for this invocation (stages finished by an earlier "
            "one are reused, not retrained; each run's `train_seconds` is in report.json and its "
            "metrics.json).",
            "",
            *([*given, ""] if given else []),
            "Test accuracy (%) at the last epoch. Students: mean ± std over seeds "
            f"{seeds}; in brackets the change against the same student trained from scratch.",
            "Adversarial KL: tau_A^2 KL(p_nasty || p_normal) at tau_A, mean over the test split.",
            "",
            format_table(report),
            "",
            *format_sweep_tables(report),
            *format_owner_tables(report),
            *format_datafree_table(report),
            *format_matrix_table(report.get("matrix")),
            *_figure_lines(report.get("figures") or {}),
            "Settings:",
            "",
            "```",
            *(f"{key}: {value}" for key, value in sorted(report["settings"].items())),
            "```",
            "",
        ]
    )


def write_report(report, output_dir):
    """Writes `report.json` and `report.md` atomically and prints the table."""
    atomic_write_json(os.path.join(output_dir, "report.json"), report)
    atomic_write_text(os.path.join(output_dir, "report.md"), format_markdown(report))
    tables = [
        format_table(report),
        "",
        *format_owner_tables(report),
        *format_datafree_table(report),
        *format_matrix_table(report.get("matrix")),
    ]
    print("\n".join(tables), flush=True)
