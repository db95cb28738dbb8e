"""Runs one binary on many argument lists in one process: `python tests/binary_cases.py <tool>`.

Reads a JSON list of cases on stdin, each `{"args": [...], "env": {...}}`, and prints a JSON
list of `{"returncode", "stdout", "stderr"}`, one per case, as `python -m tools.<tool> <args>`
with `env` added to its environment would have ended (`env` is set for the case's run only;
variables read at import, such as KERAS_BACKEND, cannot be given here). Each list goes through the binary's own flag definitions and required flags (its
`console_main`) and the same guarded main as `tools.common.run`; only absl's `app.run`, which
parses flags once per process, is replaced by parsing them afresh for each list. Starting
TensorFlow once per binary instead of once per list saves ~5 s per bad-input case.
"""

import contextlib
import importlib
import io
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402
from absl import flags as absl_flags  # noqa: E402

from tools import common  # noqa: E402


def binary_main(tool):
    """The binary's `main`, with its required flags marked as its `console_main` marks them."""
    module = importlib.import_module(f"tools.{tool}")
    mains = []
    run = common.run
    common.run = mains.append  # console_main ends by handing its main to common.run
    try:
        module.console_main()
    finally:
        common.run = run
    return mains[0]


@contextlib.contextmanager
def environment(env):
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


def run_case(main, tool, args, env):
    """What `python -m tools.<tool> <args>` would return, run in this process."""
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with (
        environment(env),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        absl_flags.FLAGS.unparse_flags()
        try:
            argv = absl_flags.FLAGS([f"tools.{tool}", *args])
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
    return {"returncode": returncode, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def main():
    tool = sys.argv[1]
    cases = json.load(sys.stdin)
    binary = binary_main(tool)
    print(json.dumps([run_case(binary, tool, case["args"], case.get("env", {})) for case in cases]))


if __name__ == "__main__":
    main()
