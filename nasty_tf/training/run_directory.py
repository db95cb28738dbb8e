"""A run's output directory: one writer, finished or not, resumable, crash-safe.

Layout (DESIGN.md section 6): `model.keras` (the bare network), `metrics.json` (its presence
means the run finished; it records `format_version`), `config.json` (what an unfinished run was
started with), `history.csv` (one row per completed epoch), `tensorboard/` and `backup/` (the
per-epoch training state, `callbacks.TrainingBackup`, removed when the run finishes).

One writer: a run holds an exclusive `fcntl.flock` on `<output_dir>/.lock` for its whole life
(`RunLock`); a second process fails at once, naming the holder's process id. The operating
system drops the lock when its holder dies, so a killed run never blocks its rerun.

Crash-safe finish: `model.keras` and `metrics.json` are first written beside their final names
(`.staged-*`), then a commit record (`.commit.json`) is written atomically, then both are
renamed into place. Whoever opens the directory next (under the lock) rolls a committed finish
forward and discards an uncommitted one, so the two files are always both old or both new.
"""

import csv
import errno
import fcntl
import json
import os
import shutil
import signal
import tempfile

from nasty_tf.atomic_io import atomic_save_model, atomic_write_json, atomic_write_text
from nasty_tf.errors import InputError

# Written into every metrics.json; a finished run of another version is not reused.
FORMAT_VERSION = 1
LOCK_FILE = ".lock"
_COMMIT_FILE = ".commit.json"
_STAGED = {"model.keras": ".staged-model.keras", "metrics.json": ".staged-metrics.json"}
_DIGEST = "_sha256"
# Test hook: `NASTY_TF_KILL_AT=<point>` makes the process SIGKILL itself when it reaches that
# point (`kill_point`), so tests can interrupt a real run at a deterministic place.
KILL_AT_ENV = "NASTY_TF_KILL_AT"


def kill_point(point):
    """SIGKILLs this process if `NASTY_TF_KILL_AT` names `point` (tests only; a no-op otherwise).

    Points: `epoch:<e>:batch:<b>` (before batch b of epoch e, 0-based: mid-epoch),
    `backup:<e>` (after epoch e's weights were written, before its backup is committed),
    `finish:between_writes` (model staged, metrics not), `finish:renaming` (finish committed,
    model renamed into place, metrics not yet).
    """
    if os.environ.get(KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class RunLock:
    """An exclusive, process-lifetime lock on a run directory (`fcntl.flock` on `<path>/.lock`).

    A context manager: it creates the directory if needed, takes the lock without waiting and
    writes this process id into the lock file; on exit it removes the lock file (and the
    directory, if it created it and nothing else was written there). The operating system
    releases the lock of a process that dies, so a stale lock file never blocks anyone.

    Args:
        path: the run directory.

    Raises:
        InputError: another process holds the lock (on `__enter__`/`acquire`).

    Example:
        >>> with RunLock("runs/teacher"):
        ...     train_somehow("runs/teacher")
    """

    def __init__(self, path):
        self.path = path
        self.lock_path = os.path.join(path, LOCK_FILE)
        self._fd = None
        self._created = False

    def acquire(self):
        if self._fd is not None:
            return self
        self._created = not os.path.isdir(self.path)
        os.makedirs(self.path, exist_ok=True)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise InputError(
                    f"output_dir {self.path} is locked by process {self._holder()}: another "
                    "run is writing it"
                ) from None
            # The holder before us may have removed the file after we opened it: then we hold
            # a lock on a file nobody else sees, and must lock the one that is there now.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def _holder(self):
        try:
            with open(self.lock_path) as f:
                return f.read().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self):
        if self._fd is None:
            return
        try:
            os.remove(self.lock_path)  # while still held: nobody can lock the removed file
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                os.rmdir(self.path)  # only if nothing was written: a refused bad input
            except OSError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def same_run(stored, config):
    """Whether a run config read back from a run directory describes the run `config` does.

    A partner file (`adversary`, `teacher`) is matched on its contents, `<name>_sha256`, and
    not on its path, which is kept for readers only: a moved output directory still matches
    its runs, and a file replaced in place does not.
    """
    paths = {key[: -len(_DIGEST)] for key in config if key.endswith(_DIGEST)}
    return _without(stored, paths) == _without(config, paths)


def _without(config, keys):
    return {key: value for key, value in config.items() if key not in keys}


class RunDirectory:
    """One training run's `output_dir`, held for one writer while it is open.

    Use it as a context manager: entering takes the directory's `RunLock` (on the writing
    process only: `writes=False` on a multi-worker run's other workers) and settles a finish
    that a killed process left half done; leaving releases the lock.

    Args:
        path: the directory.
        config: a JSON-serialisable dict of the run's full config.
        on_finished: what to do if the run already finished: "error" (refuse, the binaries'
            default), "reuse" (return the finished metrics; protocols use it to resume), or
            "overwrite" (start again; the old model and metrics stay until the new ones replace
            both).
        writes: False on the workers of a multi-worker run but the chief.
    """

    def __init__(self, path, config, on_finished="error", writes=True):
        self.path = path
        # As it will read back from JSON (tuples become lists), so that a finished run's stored
        # config compares equal to the same config given again.
        self.config = json.loads(json.dumps(config))
        self.on_finished = on_finished
        self.model_path = os.path.join(path, "model.keras")
        self.metrics_path = os.path.join(path, "metrics.json")
        self.config_path = os.path.join(path, "config.json")
        self.history_path = os.path.join(path, "history.csv")
        self.backup_dir = os.path.join(path, "backup")
        self.tensorboard_dir = os.path.join(path, "tensorboard")
        # False on the workers of a multi-worker run but the chief: they check the directory
        # and read its backup, and leave all writing to the chief.
        self.writes = writes
        self._lock = None

    def __enter__(self):
        if self.writes:
            self._lock = RunLock(self.path).acquire()
            try:
                self.recover()
            except BaseException:
                self._release()
                raise
        return self

    def __exit__(self, *exc_info):
        self._release()

    def _release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def recover(self):
        """Settles what a killed process left: a committed finish is completed, an uncommitted
        one discarded, with the temporary files of interrupted atomic writes."""
        commit_path = os.path.join(self.path, _COMMIT_FILE)
        if os.path.exists(commit_path):
            self._roll_forward()
            shutil.rmtree(self.backup_dir, ignore_errors=True)  # as `finish` would have
        else:
            for staged in _STAGED.values():
                _remove(os.path.join(self.path, staged))
        for name in os.listdir(self.path):
            if name.startswith(".tmp-"):
                _remove(os.path.join(self.path, name))

    def finished_metrics(self):
        """The metrics of a finished run to reuse, or None if training must (re)start."""
        if not os.path.exists(self.metrics_path):
            return None
        if self.on_finished == "reuse":
            with open(self.metrics_path) as f:
                metrics = json.load(f)
            version = metrics.get("format_version")
            if version != FORMAT_VERSION:
                raise InputError(
                    f"output_dir {self.path} holds a finished run of format version {version}, "
                    f"which this version (format {FORMAT_VERSION}) does not reuse; choose "
                    "another `output_dir` or set `overwrite` to replace it"
                )
            if not same_run(metrics.get("config") or {}, self.config):
                raise InputError(
                    f"{self.path} holds a finished run with a different config; "
                    "choose another `output_dir` or set `overwrite` to replace it"
                )
            return metrics
        if self.on_finished == "overwrite":
            return None
        raise InputError(
            f"output_dir {self.path} already holds a finished run; set `overwrite` to replace it"
        )

    def prepare(self):
        """Creates the directory; resumes an unfinished run only if its config is the same."""
        unfinished_differs = self._unfinished_config_differs()
        if unfinished_differs and self.on_finished != "overwrite":
            raise InputError(
                f"output_dir {self.path} holds an unfinished run with a different "
                "config; set `overwrite` to discard it"
            )
        if not self.writes:
            return
        os.makedirs(self.path, exist_ok=True)
        if unfinished_differs or (
            self.on_finished == "overwrite" and os.path.exists(self.metrics_path)
        ):
            # Start again; a finished run's model and metrics stay until `finish` replaces both.
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        atomic_write_json(self.config_path, self.config)

    def _unfinished_config_differs(self):
        if not (os.path.exists(self.config_path) and os.path.isdir(self.backup_dir)):
            return False
        with open(self.config_path) as f:
            return not same_run(json.load(f), self.config)

    def restart_history(self, completed_epochs):
        """Keeps the `history.csv` rows of the epochs the backup holds (`completed_epochs`), so
        that a resumed run's file equals an uninterrupted run's: rows of an epoch that a killed
        process logged but did not back up, or half wrote, are dropped."""
        if not self.writes or not os.path.exists(self.history_path):
            return
        if completed_epochs == 0:
            os.remove(self.history_path)
            return
        with open(self.history_path, newline="") as f:
            lines = f.readlines()
        kept = lines[:1]
        for line in lines[1:]:
            if not line.endswith("\n"):
                break  # half written when the process died
            try:
                epoch = int(line.split(",", 1)[0])
            except ValueError:
                break
            if epoch < completed_epochs:
                kept.append(line)
        if kept != lines:
            atomic_write_text(self.history_path, "".join(kept))

    def history(self):
        """`history.csv` as `{log name: [one value per epoch]}` (empty before any epoch)."""
        return read_history(self.history_path)

    def finish(self, model, metrics):
        """Saves the network and the metrics that mark the run finished, both or neither.

        Adds `format_version` to `metrics`.
        """
        metrics["format_version"] = FORMAT_VERSION
        if not self.writes:
            # Saving reads synchronised variables, a collective op that every worker must join:
            # the others save to a scratch directory (TensorFlow's multi-worker rule).
            with tempfile.TemporaryDirectory() as scratch:
                atomic_save_model(model, os.path.join(scratch, "model.keras"))  # as the chief
            return
        staged_model = os.path.join(self.path, _STAGED["model.keras"])
        atomic_save_model(model, staged_model)
        kill_point("finish:between_writes")
        atomic_write_json(os.path.join(self.path, _STAGED["metrics.json"]), metrics)
        # The commit point: from here a rerun completes this finish instead of discarding it.
        atomic_write_json(os.path.join(self.path, _COMMIT_FILE), _STAGED)
        self._roll_forward()
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _roll_forward(self):
        # The model first: metrics.json names a finished run only once its model is in place.
        for final, staged in _STAGED.items():
            staged_path = os.path.join(self.path, staged)
            if os.path.exists(staged_path):
                os.replace(staged_path, os.path.join(self.path, final))
                kill_point("finish:renaming")
        os.remove(os.path.join(self.path, _COMMIT_FILE))


def read_history(path):
    """Per-epoch logs from Keras' CSVLogger (`{name: [value per epoch]}`), None in the epochs
    a column skipped (the `val_*` columns of a run that evaluates every few epochs, which
    CSVLogger fills with "NA"), and without the columns it never filled (a run without
    validation data)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: int(row["epoch"]))
    columns = {
        key: [None if row[key] == "NA" else float(row[key]) for row in rows]
        for key in (rows[0] if rows else {})
        if key != "epoch"
    }
    return {key: values for key, values in columns.items() if any(v is not None for v in values)}


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
