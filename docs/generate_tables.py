"""Renders the result tables of README.md and docs/*.md from committed `report.json` files.

    python docs/generate_tables.py            # rewrite every marked table in place
    python docs/generate_tables.py --check    # exit 1, naming each table that is stale

A table lives between two markers that name the report it comes from and what to show:

    <!-- table: docs/digits_demo/report.json teacher_student -->
    (generated, never edited by hand)
    <!-- /table -->

The report path is relative to the repository root. Kinds:

- `teacher_student`: the teachers and the students, in the shape of the paper's Table 1;
- `sweeps`: the stealer sweeps (Figs. 4 and 5), one table per swept dimension;
- `omega`: the owner's omega sweep (Fig. 3);
- `adversary`: the adversary-architecture ablation (Table 4);
- `datafree`: the data-free attacks (Table 5), with the inverted images;
- `matrix`: the defences x stealers matrix (`tools.reproduce --matrix_stealers`, or a
  `matrix.json` that `nasty_tf.audit.audit_matrix` wrote), with each defence's teacher cost;
- `doubling_check`: an audit's `scorecard.json`'s doubling check (would half its epochs have
  done; `nasty_tf.audit.schedule`).

A single number in prose is marked the same way, on one line, with a path into the report
(keys, list indexes, or `key=value` to pick the list element whose `key` is `value`) and an
optional format spec:

    students trained <!-- value: docs/cifar10_cpu/report.json settings.students.0.epochs -->20<!-- /value --> epochs
    <!-- value: docs/cifar10_cpu/report.json students.teacher=nasty.delta_vs_scratch +.2f -->-2.82<!-- /value -->

The tables are the ones `tools.reproduce` writes into `report.md`: this script calls the
formatting functions of `nasty_tf.report` rather than keeping a second copy of them. Each
block starts with a line naming the report's machine, date, backend and command, and the
teachers' and students' schedules, so a reader can tell what the numbers are.
"""

import argparse
import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The files whose marked tables this script owns. docs/<protocol>/report.md files are written by
# tools.reproduce itself and hold no markers.
TARGET_GLOBS = ("README.md", "docs/**/*.md", "benchmarks/*.md")

BLOCK = re.compile(
    r"(?P<open><!-- table: (?P<report>\S+) (?P<kind>\w+) -->\n)(?P<body>.*?)(?P<close><!-- /table -->)",
    re.DOTALL,
)

VALUE = re.compile(
    r"(?P<open><!-- value: (?P<report>\S+) (?P<path>\S+)(?: (?P<fmt>\S+))? -->)(?P<body>[^\n]*?)(?P<close><!-- /value -->)"
)

KINDS = ("teacher_student", "sweeps", "omega", "adversary", "datafree", "matrix", "doubling_check")


def _report_module():
    """`nasty_tf.report`, imported on first use.

    The package imports Keras (its `__init__` exposes the Keras models). Run as a script with
    no Keras loaded yet and no backend chosen, the numpy backend is enough for formatting and
    spares a TensorFlow start-up.
    """
    if "keras" not in sys.modules and "KERAS_BACKEND" not in os.environ and __name__ == "__main__":
        os.environ["KERAS_BACKEND"] = "numpy"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from nasty_tf import report

    return report


def _doubling_check_lines(scorecard):
    _report_module()  # the same light import
    from nasty_tf.audit.schedule import format_doubling_check

    return format_doubling_check(scorecard.get("doubling_check"))


def target_files(root=ROOT):
    """The markdown files that may hold generated tables, sorted."""
    files = set()
    for pattern in TARGET_GLOBS:
        files.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(files)


def _schedule(stage):
    return f"{stage['arch']}, {stage['epochs']} epochs ({stage['optimizer']}, lr {stage['learning_rate']:g}, {stage['lr_schedule']})"


def provenance(report, report_link, kind=None):
    """The line under each table's marker: where the numbers come from."""
    # `command`: the invocation that wrote the report; `commands`, when a report gathers the
    # stages of several invocations into one output directory, each of them in order.
    commands = report.get("commands") or ([report["command"]] if report.get("command") else [])
    missing = [key for key in ("machine", "date", "backend") if not report.get(key)]
    missing += [] if commands else ["command"]
    # An audit's scorecard says its dataset and students in `config`; its `settings` are not a
    # protocol's.
    what = (
        _scorecard_provenance(report)
        if kind == "doubling_check"
        else _report_provenance(report, kind)
    )
    parts = [
        # A matrix.json written by `tools.audit --matrix` belongs to no protocol.
        *([f"protocol `{report['protocol']}`"] if report.get("protocol") else []),
        *what[:1],
        f"machine: {report.get('machine') or 'not recorded'}",
        f"date: {report.get('date') or 'not recorded'}",
        f"backend: {report.get('backend') or 'not recorded'}",
        "command: "
        + (" then ".join(f"`{c}`" for c in commands) if commands else "not recorded in the report"),
        *what[1:],
    ]
    line = (
        f"_Generated by `python docs/generate_tables.py` from [{report_link}]({report_link}): "
        + "; ".join(parts)
        + "._"
    )
    return line, missing


def _report_provenance(report, kind):
    """A protocol report's (or matrix.json's) dataset first, then its teachers and students."""
    settings = report.get("settings") or {}
    parts = [f"dataset `{settings.get('dataset', '?')}`"]
    if settings.get("teacher"):
        parts.append("teachers: " + _schedule(settings["teacher"]))
    if kind == "matrix":
        parts += _matrix_provenance(_matrix_of(report) or {})
    elif kind == "datafree":
        for method, options in sorted((settings.get("datafree_options") or {}).items()):
            listed = ", ".join(f"{key} {value}" for key, value in sorted(options.items()))
            parts.append(f"{method} students: {listed or 'the method defaults'}")
    else:
        for student in settings.get("students") or []:
            parts.append("students: " + _schedule(student))
    if settings.get("student_seeds") is not None and kind not in ("datafree", "matrix"):
        parts.append("student seeds: " + ", ".join(str(s) for s in settings["student_seeds"]))
    if settings.get("omega") is not None:
        parts.append(f"omega {settings['omega']:g}, tau_A {settings.get('temperature', '?'):g}")
    if settings.get("train_fraction") not in (None, 1.0):
        parts.append(f"train fraction {settings['train_fraction']:g}")
    return parts


def _matrix_of(report):
    """The matrix a cited JSON holds: a report's `matrix` section, or a `matrix.json` itself."""
    return report.get("matrix") or (report if "defences" in report else None)


def _matrix_provenance(matrix):
    """The matrix students' schedule, which is the audit's and not the protocol's."""
    if not matrix.get("settings"):
        return []
    m = matrix["settings"]
    return [
        f"matrix students: {m['arch']}, {m['epochs']} epochs ({m['optimizer']}, lr "
        f"{m['learning_rate']:g}, constant), seeds {', '.join(str(s) for s in m['seeds'])}"
    ]


def _scorecard_provenance(scorecard):
    """An audit's dataset first, then its students, from its `config`."""
    config = scorecard["config"]
    return [
        f"dataset `{config['dataset']}`",
        f"train fraction {config['train_fraction']:g}",
        f"students: {scorecard['settings']['arch']}, {config['epochs']} epochs "
        f"({config['optimizer']}, lr {config['learning_rate']:g}, constant), seeds "
        + ", ".join(str(s) for s in config["seeds"]),
    ]


def _rewrite_images(lines, report_dir, target_dir):
    """Image links in the report's tables are relative to the report: make them relative to the page."""
    out = []
    for line in lines:
        match = re.match(r"^!\[(?P<alt>[^\]]*)\]\((?P<path>[^)]+)\)$", line)
        if match and not re.match(r"^[a-z]+://", match["path"]):
            path = os.path.relpath(report_dir / match["path"], target_dir)
            line = f"![{match['alt']}]({pathlib.PurePath(path).as_posix()})"
        out.append(line)
    return out


def render_table(report_path, kind, target_file, root=ROOT):
    """The text between the markers: a provenance line and the table(s), ending in a newline."""
    if kind not in KINDS:
        raise ValueError(f"Unknown table kind {kind!r} in {target_file}. Expected one of {KINDS}.")
    source = root / report_path
    if not source.is_file():
        raise FileNotFoundError(f"{target_file} cites {report_path}, which does not exist.")
    report = json.loads(source.read_text())
    module = _report_module()
    target_dir = pathlib.Path(target_file).resolve().parent
    link = pathlib.PurePath(os.path.relpath(source, target_dir)).as_posix()
    if kind == "teacher_student":
        lines = module.format_table(report).split("\n")
    elif kind == "sweeps":
        lines = module.format_sweep_tables(report)
    elif kind in ("omega", "adversary"):
        key = "omega" if kind == "omega" else "adversary_arch"
        owner = (report.get("owner") or {}).get(key)
        lines = module.format_owner_tables({**report, "owner": {key: owner}}) if owner else []
    elif kind == "matrix":
        lines = module.format_matrix_table(_matrix_of(report))
    elif kind == "doubling_check":
        lines = _doubling_check_lines(report)
    else:
        lines = _rewrite_images(module.format_datafree_table(report), source.parent, target_dir)
    if not lines:
        raise ValueError(f"{target_file}: {report_path} has no {kind} results.")
    while lines and lines[0] == "":
        lines = lines[1:]
    while lines and lines[-1] == "":
        lines = lines[:-1]
    first, _ = provenance(report, link, kind)
    return "\n".join([first, "", *lines]) + "\n"


def lookup(report, path):
    """The value at a dotted `path` of the report (module docstring)."""
    value = report
    for part in path.split("."):
        if isinstance(value, list) and "=" in part:
            key, wanted = part.split("=", 1)
            found = [item for item in value if str(item.get(key)) == wanted]
            if not found:
                raise KeyError(f"no element with {key}={wanted} at {part!r} of {path!r}")
            value = found[0]
        elif isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def render_value(report_path, path, fmt, target_file, root=ROOT):
    """The text of one inline number."""
    source = root / report_path
    if not source.is_file():
        raise FileNotFoundError(f"{target_file} cites {report_path}, which does not exist.")
    try:
        value = lookup(json.loads(source.read_text()), path)
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise ValueError(f"{target_file}: {report_path} has no {path}: {e}") from None
    return format(value, fmt) if fmt else str(value)


def render_file(path, root=ROOT):
    """The file's text with every marked block and inline value regenerated."""
    text = pathlib.Path(path).read_text()

    def replace(match):
        body = render_table(match["report"], match["kind"], path, root)
        return match["open"] + body + match["close"]

    def replace_value(match):
        body = render_value(match["report"], match["path"], match["fmt"], path, root)
        return match["open"] + body + match["close"]

    return VALUE.sub(replace_value, BLOCK.sub(replace, text))


def blocks(path):
    """(report, kind) of every marked table in a file."""
    return [(m["report"], m["kind"]) for m in BLOCK.finditer(pathlib.Path(path).read_text())]


def values(path):
    """(report, path) of every marked inline value in a file."""
    return [(m["report"], m["path"]) for m in VALUE.finditer(pathlib.Path(path).read_text())]


def stale_files(root=ROOT):
    """Files whose marked tables differ from what their reports render, relative to root."""
    return [
        str(p.relative_to(root))
        for p in target_files(root)
        if render_file(p, root) != p.read_text()
    ]


def missing_fields(root=ROOT):
    """{report path: [fields the provenance line wants but the report lacks]} over every cited report."""
    out = {}
    for path in target_files(root):
        for report_path, kind in blocks(path):
            report = json.loads((root / report_path).read_text())
            _, missing = provenance(report, report_path, kind)
            if missing:
                out[report_path] = missing
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if any generated table is stale; write nothing"
    )
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for name in stale:
            print(f"stale: {name} (run python docs/generate_tables.py)")
        return 1 if stale else 0
    for name in stale:
        path = ROOT / name
        path.write_text(render_file(path))
        print(f"rewrote {name}")
    for report_path, fields in sorted(missing_fields().items()):
        print(f"note: {report_path} lacks {', '.join(fields)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
