"""absl binaries: `python -m tools.<name>`, or the `nasty-tf-<name>` console scripts.

Importing this package (which every binary does before its own imports, whatever their order)
starts TensorFlow quietly. TensorFlow's C++ libraries print a few start-up lines straight to
stderr through absl logging before `absl::InitializeLog()` runs, so `TF_CPP_MIN_LOG_LEVEL`
cannot hide them (`oneDNN custom operations are on`, `Could not find cuda drivers`), and on a
CPU host probing CUDA logs `failed call to cuInit: UNKNOWN ERROR (303)` at error level. A
newcomer would read an "error" before anything of ours. So the import of Keras (and with it
TensorFlow) and the device probe run with stderr captured, and every captured line except that
known noise is written back: real warnings still show. `NASTY_TF_VERBOSE_STARTUP=1` turns the
filter off.
"""

import os
import re
import sys
import tempfile

VERBOSE_STARTUP_ENV = "NASTY_TF_VERBOSE_STARTUP"

# Start-up lines that say nothing actionable; matched anywhere in a captured line.
STARTUP_NOISE = re.compile(
    "|".join(
        (
            r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers on your machine",
            r"failed call to cuInit",
            # GPU hosts: TensorFlow and its XLA plugin both register the CUDA libraries.
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"computation placer already registered",
        )
    )
)


def _start_quietly():
    # Hides TensorFlow's C++ INFO and WARNING lines once its logging is set up (the per-epoch
    # `Local rendezvous ... End of sequence` notices of tf.data among them).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get(VERBOSE_STARTUP_ENV, "0") not in ("", "0") or "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (loads TensorFlow on Keras' default backend)

            if "tensorflow" in sys.modules:
                import tensorflow as tf

                tf.config.list_physical_devices()  # the CUDA probe; creates no device context
        finally:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not STARTUP_NOISE.search(line)))
            sys.stderr.flush()


_start_quietly()
