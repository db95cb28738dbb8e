"""pyproject.toml agrees with the requirement files and the binaries, and its wheel holds them.

The requirement files stay the README's pinned set; pyproject's ranges must be the same. The
wheel is built offline (`--no-build-isolation`, the installed setuptools) from a copy of the
sources, so that nothing is written into the checkout.
"""

import ast
import pathlib
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.single_pass
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _normalized(requirement):
    """`name[extras]>=a,<b` with its specifiers sorted and spaces dropped, for comparing."""
    requirement = requirement.split("#")[0].replace(" ", "")
    for i, char in enumerate(requirement):
        if char in "<>=!~;":
            name, specifiers = requirement[:i], requirement[i:]
            return name.lower().replace("_", "-"), ",".join(sorted(specifiers.split(",")))
    return requirement.lower().replace("_", "-"), ""


def _requirement_file(name):
    lines = (ROOT / name).read_text().splitlines()
    return {
        _normalized(line)
        for line in (line.split("#")[0].strip() for line in lines)
        if line and not line.startswith("-r")
    }


def _tool_modules():
    return sorted(
        path.stem
        for path in (ROOT / "tools").glob("*.py")
        if path.stem not in ("__init__", "common")
    )


def test_dependencies_are_the_requirement_files_ranges():
    assert {_normalized(r) for r in PROJECT["dependencies"]} == _requirement_file(
        "requirements.txt"
    )


def test_the_test_extra_covers_requirements_test():
    assert "-r requirements.txt" in (ROOT / "requirements-test.txt").read_text()
    test_extra = {_normalized(r) for r in PROJECT["optional-dependencies"]["test"]}
    assert _requirement_file("requirements-test.txt") <= test_extra
    jax_extra = {_normalized(r)[0] for r in PROJECT["optional-dependencies"]["jax"]}
    assert jax_extra == {"jax"}


def test_every_binary_has_a_console_script():
    expected = {
        "nasty-tf-" + name.replace("_", "-"): f"tools.{name}:console_main"
        for name in _tool_modules()
    }
    assert PROJECT["scripts"] == expected
    for name in _tool_modules():
        tree = ast.parse((ROOT / "tools" / f"{name}.py").read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "console_main" in functions, name


def _version():
    tree = ast.parse((ROOT / "nasty_tf" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"]:
            return ast.literal_eval(node.value)
    raise AssertionError("nasty_tf/__init__.py sets no __version__")


def test_the_wheel_holds_the_library_the_binaries_and_their_entry_points(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "LICENSE", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("nasty_tf", "tools", "flags"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"nasty_tf-{_version()}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    expected_sources = {
        str(path.relative_to(ROOT))
        for package in ("nasty_tf", "tools", "flags")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected_sources <= names
    assert not any(name.startswith(("tests/", "benchmarks/", "docs/")) for name in names)
    dist_info = f"nasty_tf-{_version()}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    for script, target in PROJECT["scripts"].items():
        assert f"{script} = {target}" in entry_points
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
