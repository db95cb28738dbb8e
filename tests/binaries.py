"""Running the binaries as real subprocesses, and checking their one-line errors.

Shared by the tests of every binary (`from binaries import ...`: pytest puts `tests/` on the path).
"""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(args, env=None, timeout=600):
    """`python <args>` from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
        timeout=timeout,
    )


def run_tool(name, *args, env=None):
    """`python -m tools.<name> <args>`, as a user runs it."""
    return run_python(["-m", f"tools.{name}", *args], env)


def run_tool_cases(name, cases):
    """`python -m tools.<name> <args>` for each case, all in one process.

    A case is an argument list, or `(arguments, env)` with variables to add to the environment
    for that case (not those read at import, such as KERAS_BACKEND).
    Returns what each run would have ended with (`returncode`, `stdout`, `stderr`), through
    `tests/binary_cases.py`: one TensorFlow start for all the lists.
    """
    driver = os.path.join(ROOT, "tests", "binary_cases.py")
    result = subprocess.run(
        [sys.executable, driver, name],
        cwd=ROOT,
        input=json.dumps(
            [
                {"args": case[0], "env": case[1]}
                if isinstance(case, tuple)
                else {"args": case, "env": {}}
                for case in cases
            ]
        ),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [SimpleNamespace(**case) for case in json.loads(result.stdout.splitlines()[-1])]


# TensorFlow's start-up lines on a CPU host (2.20, 2.21): printed by its C++ libraries before
# its logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot hide them; tools/__init__.py filters them.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
)


def assert_quiet_start(result):
    """A binary's stderr holds none of TensorFlow's start-up noise."""
    for noise in STARTUP_NOISE:
        assert noise not in result.stderr, result.stderr[:2000]


def assert_one_line_error(result, *fragments):
    """A bad input ended in exactly one `error: ...` line naming `fragments`, no traceback."""
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
