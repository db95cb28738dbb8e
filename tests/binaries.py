"""Running the binaries, as real subprocesses or in this process, and checking their one-line
errors.

Shared by the tests of every binary (`from binaries import ...`: pytest puts `tests/` on the path).
"""

import contextlib
import importlib
import io
import os
import subprocess
import sys
import traceback
from types import SimpleNamespace

from absl import app
from absl import flags as absl_flags

from tools import common

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


# The packages whose modules define the binaries' flags.
_BINARY_PACKAGES = ("flags", "tools")


def _forget_binaries():
    """Deletes every flag a binary defined from absl's registry and forgets the binaries'
    modules, so that the next import of one defines its flags afresh."""
    flag_values = absl_flags.FLAGS
    flag_values.unparse_flags()
    for module, defined in list(flag_values.flags_by_module_dict().items()):
        if module.split(".")[0] in _BINARY_PACKAGES:
            for flag in list(defined):  # deleting a flag edits `defined`
                if flag.name in flag_values:
                    delattr(flag_values, flag.name)
    for module in [m for m in sys.modules if m.split(".")[0] in _BINARY_PACKAGES]:
        if module not in _BINARY_PACKAGES and module != "tools.common":
            del sys.modules[module]


@contextlib.contextmanager
def binary_flags(name):
    """`tools.<name>` imported afresh in this process, its flags defined; on exit its flags are
    deleted and the module forgotten. Binaries cannot share absl's one registry (each defines
    `--output_dir`, with its own default), so only one is defined at a time."""
    _forget_binaries()
    try:
        yield importlib.import_module(f"tools.{name}")
    finally:
        _forget_binaries()


def _binary_main(module):
    """The binary's `main`, its required flags marked as its `console_main` marks them."""
    mains = []
    run = common.run
    common.run = mains.append  # console_main ends by handing its main to common.run
    try:
        module.console_main()
    finally:
        common.run = run
    return mains[0]


@contextlib.contextmanager
def _environment(env):
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def _run_case(main, name, args, env):
    """What `python -m tools.<name> <args>` would end with, run in this process."""
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with _environment(env), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        absl_flags.FLAGS.unparse_flags()
        try:
            argv = absl_flags.FLAGS([f"tools.{name}", *args])
            common.guarded(main)(argv)
        except absl_flags.Error as error:  # as app.run reports a flag it cannot parse
            print(f"FATAL Flags parsing error: {error}", file=sys.stderr)
            returncode = 1
        except app.UsageError as error:  # as app.run reports it (after its usage text)
            print(f"FATAL: {error}", file=sys.stderr)
            returncode = 1
        except SystemExit as exit:
            returncode = exit.code if isinstance(exit.code, int) else 1
        except Exception:  # an uncaught error: the binary would print this traceback
            traceback.print_exc(file=sys.stderr)
            returncode = 1
    return SimpleNamespace(
        returncode=returncode, stdout=stdout.getvalue(), stderr=stderr.getvalue()
    )


def run_tool_cases(name, cases):
    """`python -m tools.<name> <args>` for each case, all in this process.

    A case is an argument list, or `(arguments, env)` with variables to add to the environment
    for that case (not those read at import, such as KERAS_BACKEND).
    Returns what each run would have ended with (`returncode`, `stdout`, `stderr`). Each list
    goes through the binary's own flag definitions and required flags (its `console_main`) and
    the same guarded main as `tools.common.run`; only absl's `app.run`, which parses flags once
    per process, is replaced by parsing them afresh for each list. Output that TensorFlow's C++
    code writes straight to the file descriptors is not in `stderr`; TensorFlow's start-up
    lines are not printed again in a process that has started it. Running here instead of
    starting `python` saves the ~5 s of a TensorFlow start per binary.
    """
    with binary_flags(name) as module:
        main = _binary_main(module)
        return [
            _run_case(main, name, *(case if isinstance(case, tuple) else (case, {})))
            for case in cases
        ]


def run_tool_in_process(name, *args, env=None):
    """`run_tool`'s answer, from `run_tool_cases` in this process: no TensorFlow start."""
    return run_tool_cases(name, [(list(args), env or {})])[0]


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
