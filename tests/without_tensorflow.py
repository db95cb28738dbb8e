"""Runs a module as `__main__` with TensorFlow, TFDS and keras-tuner unimportable, as on the
JAX-only GPU host (the device machine has none of the three).

    KERAS_BACKEND=jax python tests/without_tensorflow.py tools.reproduce --epochs=1

An import hook refuses the modules (a `None` entry in `sys.modules` is not enough: Keras
takes any entry there to mean that TensorFlow is loaded), and `importlib.util.find_spec` answers
None for them, as for an absent package (etils, under JAX's compilation cache, asks it whether
TensorFlow is installed).
"""

import importlib.util
import os
import runpy
import sys

BLOCKED = ("tensorflow", "tensorflow_datasets", "keras_tuner")


class _RefuseTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: JAX-only host)")
        return None


def _find_spec_of_unblocked(name, package=None, _find_spec=importlib.util.find_spec):
    return None if name.split(".")[0] in BLOCKED else _find_spec(name, package)


if __name__ == "__main__":
    sys.meta_path.insert(0, _RefuseTensorFlow())
    importlib.util.find_spec = _find_spec_of_unblocked
    sys.path[0] = os.getcwd()  # as `python -m` would: modules resolve from the working directory
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
