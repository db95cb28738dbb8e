"""BUILD declares every module, binary and test of the tree, and nothing that is not there.

Bazel cannot fetch its Python rules offline here, so this test is what keeps BUILD honest:
BUILD is generated from the tree and its imports (`python -m tests.build_file`), and it must
equal what the generator writes now, so a first-party import missing from a target's deps fails.
The workers' longest-first list of test files (tests/conftest.py) is checked here too.
"""

import ast
import pathlib

import pytest

import build_file
from conftest import SLOWEST_FILES

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.single_pass


def _targets():
    """(rule, name, srcs) for every rule call in BUILD, parsed as Python syntax."""
    tree = ast.parse((ROOT / "BUILD").read_text())
    targets = []
    for node in ast.walk(tree):
        is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if is_call and node.func.id in ("py_library", "py_binary", "py_test"):
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            targets.append((node.func.id, kwargs["name"], kwargs.get("srcs", [])))
    return targets


def _sources(folder, pattern="*.py"):
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / folder).rglob(pattern)
        if "__pycache__" not in p.parts
    }


def test_build_is_what_the_generator_writes():
    assert (ROOT / "BUILD").read_text() == build_file.generate(), (
        "BUILD is out of date: run `python -m tests.build_file` and review the diff"
    )


def test_deps_are_the_first_party_imports():
    source = (
        "import numpy\n"
        "from nasty_tf import losses, NastyTeacher\n"
        "from flags import data\n"
        "def main():\n"
        "    from nasty_tf.training import jobs\n"
    )
    assert build_file.imported_files(ast.parse(source)) == {
        "nasty_tf/losses.py",
        "nasty_tf/__init__.py",
        "flags/data.py",
        "nasty_tf/training/jobs.py",
    }


def test_every_library_module_has_a_py_library():
    declared = {src for rule, _, srcs in _targets() if rule == "py_library" for src in srcs}
    helpers = {
        "tools/__init__.py",
        "tools/common.py",
        "tests/binaries.py",
        "tests/build_file.py",
        "tests/conftest.py",
        "tests/mirrored_job.py",
        "tests/tiny_audit.py",
    }
    expected = _sources("nasty_tf") | _sources("flags") | helpers
    assert declared == expected


def test_every_tool_has_a_py_binary():
    binaries = {src for rule, _, srcs in _targets() if rule == "py_binary" for src in srcs}
    tools = _sources("tools") - {"tools/__init__.py", "tools/common.py"}
    # benchmarks/ holds stand-alone scripts (the PyTorch baseline of issue 7): binaries too.
    assert binaries == tools | _sources("benchmarks")


def test_every_test_file_has_a_py_test():
    tests = {src for rule, _, srcs in _targets() if rule == "py_test" for src in srcs}
    assert tests == _sources("tests", "test_*.py")


def test_target_names_are_unique_and_sources_exist():
    names = [name for _, name, _ in _targets()]
    assert len(names) == len(set(names))
    for _, _, srcs in _targets():
        for src in srcs:
            assert (ROOT / src).is_file(), src


def test_the_longest_first_list_names_test_files_that_exist():
    # A renamed file would silently lose its place at the head of the queue.
    for backend, seconds in SLOWEST_FILES.items():
        for name in seconds:
            assert (ROOT / "tests" / name).is_file(), (backend, name)
