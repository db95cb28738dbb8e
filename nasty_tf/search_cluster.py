"""keras-tuner's distributed mode for the omega search: who this process is, and the chief's
serving of the oracle.

keras-tuner spreads a search over processes with three environment variables, which it reads
itself (`keras_tuner/src/distribute/utils.py`): `KERASTUNER_TUNER_ID` (`chief` for the one
process that runs the oracle, any other name, e.g. `tuner0`, for a worker that runs trials),
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` (where the chief serves the oracle over
gRPC, and where the workers reach it). `cluster_role` checks them, more strictly than
keras-tuner does: all three or none, a port number, and `chief` spelt exactly (keras-tuner takes
any id that contains "chief" for the chief, and one set without the address for a single
machine).

The chief serves with keras-tuner's own `OracleServicer` and protocol (`serve_oracle`), but its
own wait: keras-tuner's polls every 20 s once a worker has been told to stop, and would never
end a search that was already complete or that a trial failed; this one ends as soon as every
trial is over and every worker that asked has been told to stop.

Example (three shells, the same flags everywhere, `--output_dir` on a shared filesystem):

    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \
        python -m tools.tune --output_dir=runs/tune
    KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \
        python -m tools.tune --output_dir=runs/tune
    KERASTUNER_TUNER_ID=tuner1 ...
"""

import dataclasses
import os
import time
from concurrent import futures

from nasty_tf.errors import InputError

TUNER_ID_ENV = "KERASTUNER_TUNER_ID"
ORACLE_IP_ENV = "KERASTUNER_ORACLE_IP"
ORACLE_PORT_ENV = "KERASTUNER_ORACLE_PORT"
CLUSTER_ENV = (TUNER_ID_ENV, ORACLE_IP_ENV, ORACLE_PORT_ENV)
CHIEF = "chief"
# How long a worker waits for the chief's oracle to answer: keras-tuner's own limit for each
# request (the chief trains the shared normal teacher before it serves).
WAIT_FOR_CHIEF_S = 60 * 60
_POLL_S = 0.5  # the chief's check for the end of the search
_GRACE_S = 10  # the chief's last answers (a worker's "stop") finish before its server stops


@dataclasses.dataclass(frozen=True)
class ClusterRole:
    """This process's part in a distributed search (`cluster_role`).

    Attributes:
        tuner_id: `KERASTUNER_TUNER_ID`: "chief", or a worker's name.
        ip, port: where the chief serves the oracle (`KERASTUNER_ORACLE_IP`, `_PORT`).
    """

    tuner_id: str
    ip: str
    port: int

    @property
    def is_chief(self):
        return self.tuner_id == CHIEF

    @property
    def address(self):
        return f"{self.ip}:{self.port}"


def cluster_role(environ=None):
    """This process's `ClusterRole`, or None for a search on one machine (no variable set).

    Args:
        environ: the environment to read; default `os.environ`.

    Raises:
        InputError: some of the three variables set but not all, one empty, a port that is not
            a number in [1, 65535], or a worker id that keras-tuner would take for the chief.
    """
    environ = os.environ if environ is None else environ
    values = {name: environ.get(name) for name in CLUSTER_ENV}
    if all(value is None for value in values.values()):
        return None
    received = ", ".join(
        f"{name}={value}" if value is not None else f"{name} unset"
        for name, value in values.items()
    )
    if any(not value for value in values.values()):
        raise InputError(
            f"a distributed search (keras-tuner) needs {TUNER_ID_ENV}, {ORACLE_IP_ENV} and "
            f"{ORACLE_PORT_ENV} all set and not empty, on the chief and on every worker. "
            f"Received: {received}"
        )
    tuner_id, ip, port = (values[name] for name in CLUSTER_ENV)
    if not (port.isdigit() and 1 <= int(port) <= 65535):
        raise InputError(
            f"{ORACLE_PORT_ENV} must be a port number in [1, 65535]. "
            f"Received: {ORACLE_PORT_ENV}={port}"
        )
    if CHIEF in tuner_id and tuner_id != CHIEF:
        # keras-tuner takes any id containing "chief" for the chief: a second oracle.
        raise InputError(
            f"{TUNER_ID_ENV} must be exactly `{CHIEF}` for the chief, and a worker's name must "
            f"not contain it. Received: {TUNER_ID_ENV}={tuner_id}"
        )
    return ClusterRole(tuner_id, ip, int(port))


def wait_for_chief(role, timeout=WAIT_FOR_CHIEF_S):
    """Blocks until the chief's oracle answers at `role.address` (the chief serves once the
    search's normal teacher exists and its settings are written).

    Raises:
        InputError: nothing answered within `timeout` seconds.
    """
    import grpc

    with grpc.insecure_channel(role.address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise InputError(
                f"worker {role.tuner_id}: no chief oracle answered at {role.address} within "
                f"{timeout:g} s; start the chief ({TUNER_ID_ENV}={CHIEF}) with the same "
                f"{ORACLE_IP_ENV} and {ORACLE_PORT_ENV}"
            ) from None


def serve_oracle(oracle, role, on_serving=None):
    """Serves `oracle` to the workers at `role.address` until the search is over.

    Over means: no trial is running or waiting for a retry, every worker that asked for a trial
    has been told to stop, and the oracle has stopped giving trials (`max_trials` reached, or
    its space exhausted). A search that was already complete ends at once. The first trial
    that fails stops the search (the search's own oracle allows one failure): no new trial is
    given, the running ones finish, then this raises.

    Args:
        oracle: the keras-tuner oracle (the chief's own, not a client).
        role: the chief's `ClusterRole`.
        on_serving: called once the server listens (the chief says so in its log).

    Raises:
        InputError: the address cannot be bound (a port in use, an unknown host).
        InputError: a trial failed on a worker (the search stops, as on one machine after
            one failed trial; that worker's log holds the cause).
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief
    from keras_tuner.src.engine import oracle as oracle_module
    from keras_tuner.src.engine import trial as trial_module

    # keras-tuner's oracle raises inside `end_trial` once too many trials failed, which on the
    # chief fails that worker's request and leaves the oracle's lock held (its `synchronized`
    # releases it on return only): every later request would hang. The servicer below stops
    # the search on the first failed trial instead.
    oracle.max_consecutive_failed_trials = None

    @oracle_module.synchronized
    def stop_if_failed(oracle, trial_id):
        if oracle.trials[trial_id].status != trial_module.TrialStatus.FAILED:
            return False
        # No new trial from now on (not saved: a rerun's `max_trials` is its own); the
        # trials running elsewhere finish, and every worker's next request tells it to stop.
        oracle.max_trials = len(oracle.trials)
        return True

    class Servicer(oracle_chief.OracleServicer):
        def __init__(self, oracle):
            super().__init__(oracle)
            self.failed = []

        def EndTrial(self, request, context):  # noqa: N802  (gRPC's method name)
            response = super().EndTrial(request, context)
            if stop_if_failed(self.oracle, request.trial.trial_id):
                self.failed.append(request.trial.trial_id)
            return response

    @oracle_module.synchronized
    def over(oracle):
        stopped = servicer.stop_triggered or (
            oracle.max_trials is not None
            and len(oracle.trials) >= oracle.max_trials
            and not oracle._retry_queue
        )
        return stopped and not oracle.ongoing_trials and not oracle.tuner_ids

    # gRPC lets a second server share a port by default: two chiefs would split the workers.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=1), options=[("grpc.so_reuseport", 0)]
    )
    servicer = Servicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        server.add_insecure_port(role.address)
    except RuntimeError:
        raise InputError(
            f"the chief cannot serve the oracle at {role.address} (port in use, or an address "
            f"that is not this host's). Received: {ORACLE_IP_ENV}={role.ip}, "
            f"{ORACLE_PORT_ENV}={role.port}"
        ) from None
    server.start()
    try:
        if on_serving is not None:
            on_serving()
        while not over(oracle):
            time.sleep(_POLL_S)
    finally:
        server.stop(grace=_GRACE_S).wait()
    if servicer.failed:
        # keras-tuner's protocol carries no error message: the worker's log has it.
        raise InputError(
            f"trial {servicer.failed[0]} failed on a worker (its log says why); the search stopped"
        )
