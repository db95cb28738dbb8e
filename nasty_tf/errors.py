"""The one exception type that means "the user gave us bad input".

Binaries turn an `InputError` into a single `error: ...` line and a non-zero exit; any other
exception is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A bad flag value, file, checkpoint or dataset: the message says what and what was received."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and what to lower."""


def check_count(name, value, minimum=1):
    """Refuses `value` unless it is an int (not a bool) >= `minimum`, naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
