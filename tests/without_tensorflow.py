"""Runs a module as `__main__` with TensorFlow and TFDS unimportable, as on a JAX-only GPU host.

    KERAS_BACKEND=jax python tests/without_tensorflow.py tools.reproduce --epochs=1

An import hook refuses the modules (a `None` entry in `sys.modules` is not enough: Keras
takes any entry there to mean that TensorFlow is loaded).
"""

import os
import runpy
import sys

BLOCKED = ("tensorflow", "tensorflow_datasets")


class _RefuseTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: JAX-only host)")
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _RefuseTensorFlow())
    sys.path[0] = os.getcwd()  # as `python -m` would: modules resolve from the working directory
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
