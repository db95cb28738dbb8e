"""A run's output directory: finished or not, resumable, written atomically.

Layout (DESIGN.md section 6): `model.keras` (the bare network), `metrics.json` (written last:
its presence means the run finished), `config.json` (what an unfinished run was started
with) and `backup/` (Keras `BackupAndRestore` checkpoints, one per epoch, removed when the
run finishes).
"""

import json
import os
import shutil
import tempfile

from nasty_tf.atomic_io import atomic_save_model, atomic_write_json
from nasty_tf.errors import InputError


_DIGEST = "_sha256"


def same_run(stored, config):
    """Whether a run config read back from a run directory describes the run `config` does.

    A partner file (`adversary`, `teacher`) is matched on its contents, `<name>_sha256`, and
    not on its path, which is kept for readers only: a moved output directory still matches
    its runs, and a file replaced in place does not. A run recorded before the digests existed
    holds the path alone and is matched on it, as it was then.
    """
    partners = [key[: -len(_DIGEST)] for key in config if key.endswith(_DIGEST)]
    if all(partner + _DIGEST in stored for partner in partners):
        ignored = set(partners)
    else:
        ignored = {partner + _DIGEST for partner in partners}
    return _without(stored, ignored) == _without(config, ignored)


def _without(config, keys):
    return {key: value for key, value in config.items() if key not in keys}


class RunDirectory:
    """One training run's `--output_dir`.

    Args:
        path: the directory.
        config: a JSON-serialisable dict of the run's full config.
        on_finished: what to do if the run already finished: "error" (refuse, the binaries'
            default), "reuse" (return the finished metrics; protocols use it to resume), or
            "overwrite" (start again; the old model stays until the new one replaces it).
    """

    def __init__(self, path, config, on_finished="error"):
        self.path = path
        # As it will read back from JSON (tuples become lists), so that a finished run's stored
        # config compares equal to the same config given again.
        self.config = json.loads(json.dumps(config))
        self.on_finished = on_finished
        self.model_path = os.path.join(path, "model.keras")
        self.metrics_path = os.path.join(path, "metrics.json")
        self.config_path = os.path.join(path, "config.json")
        self.backup_dir = os.path.join(path, "backup")
        # False on the workers of a multi-worker run but the chief: they check the directory
        # and read its backup, and leave all writing to the chief.
        self.writes = True

    def finished_metrics(self):
        """The metrics of a finished run to reuse, or None if training must (re)start."""
        if not os.path.exists(self.metrics_path):
            return None
        if self.on_finished == "reuse":
            with open(self.metrics_path) as f:
                metrics = json.load(f)
            if not same_run(metrics.get("config") or {}, self.config):
                raise InputError(
                    f"{self.path} holds a finished run with a different config; "
                    "choose another --output_dir or pass --overwrite"
                )
            return metrics
        if self.on_finished == "overwrite":
            return None
        raise InputError(
            f"--output_dir {self.path} already holds a finished run; pass --overwrite to replace it"
        )

    def prepare(self):
        """Creates the directory; resumes an unfinished run only if its config is the same."""
        unfinished_differs = self._unfinished_config_differs()
        if unfinished_differs and self.on_finished != "overwrite":
            raise InputError(
                f"--output_dir {self.path} holds an unfinished run with a different "
                "config; pass --overwrite to discard it"
            )
        if not self.writes:
            return
        os.makedirs(self.path, exist_ok=True)
        if self.on_finished == "overwrite" and os.path.exists(self.metrics_path):
            os.remove(self.metrics_path)
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        if unfinished_differs:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        atomic_write_json(self.config_path, self.config)

    def _unfinished_config_differs(self):
        if not (os.path.exists(self.config_path) and os.path.isdir(self.backup_dir)):
            return False
        with open(self.config_path) as f:
            return not same_run(json.load(f), self.config)

    def finish(self, model, metrics):
        """Saves the network, then the metrics that mark the run finished."""
        if not self.writes:
            # Saving reads synchronised variables, a collective op that every worker must join:
            # the others save to a scratch directory (TensorFlow's multi-worker rule).
            with tempfile.TemporaryDirectory() as scratch:
                model.save(os.path.join(scratch, "model.keras"))
            return
        atomic_save_model(model, self.model_path)
        atomic_write_json(self.metrics_path, metrics)
        shutil.rmtree(self.backup_dir, ignore_errors=True)
