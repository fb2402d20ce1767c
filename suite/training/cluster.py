"""Training on several machines: which worker is the chief, where the others write, and a
lost worker reported in one line.

TensorFlow's ``MultiWorkerMirroredStrategy`` (MWMS) runs the same ``train.py`` on every
machine, each with a ``TF_CONFIG`` that lists all workers and names its own place
(TensorFlow's guide "Multi-worker training with Keras"). Training is synchronous: every
step all-reduces the gradients, so every worker holds the same weights and sees the same
logs, and every worker must run the same steps and callbacks, checkpoint saves included
(a save may read a variable through a collective). So every worker writes the run's
files, but only the chief writes the run folder under ``output.dir``; each other worker
writes its copy into a private temporary folder, deleted when it exits (the guide's
recipe). The chief is the ``chief`` task if the cluster has one, else worker 0.

On ``--resume`` every worker is given the chief's run folder (shared, or copied to the
same path) and a non-chief worker copies it into its private folder, so that its
callbacks start from the same history and best checkpoint as the chief's and decide as
the chief does.

This module imports TensorFlow only in the functions that need it (the TF backend's).
"""

import atexit
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import UserError

KEEP_ENV = "SUITE_WORKER_DIR"  # a non-chief worker writes its copy of the run files here, and keeps them
JOBS = ("chief", "worker")     # the TF_CONFIG jobs MWMS trains with


@dataclass(frozen=True)
class Cluster:
    addresses: tuple     # every training task, the chief first
    task_type: str       # this task's job: "chief" or "worker"
    index: int           # this task's index in its job
    has_chief_job: bool  # False: worker 0 is the chief

    @property
    def rank(self):
        """This task's place in ``addresses``; 0 is the chief."""
        return self.index + (1 if self.task_type == "worker" and self.has_chief_job else 0)

    @property
    def is_chief(self):
        return self.rank == 0

    def describe(self):
        return (f"MultiWorkerMirroredStrategy ({len(self.addresses)} workers; this is {self.task_type} "
                f"{self.index} at {self.addresses[self.rank]}{', the chief' if self.is_chief else ''})")


def from_tf_config(text):
    """The cluster that a ``TF_CONFIG`` value describes; one clear line if it is malformed."""
    try:
        spec = json.loads(text)
        jobs, task = spec["cluster"], spec["task"]
        task_type, index = task["type"], task["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError('TF_CONFIG: expected JSON like {"cluster": {"worker": ["host:port", ...]}, '
                        f'"task": {{"type": "worker", "index": 0}}}} ({type(e).__name__}: {e})') from None
    if not isinstance(jobs, dict) or not all(isinstance(v, list) and v for v in jobs.values()):
        raise UserError("TF_CONFIG: cluster must map each job to a list of host:port addresses")
    other = sorted(set(jobs) - set(JOBS))
    if other:
        raise UserError(f"TF_CONFIG: jobs {', '.join(other)} are not supported; "
                        f"train.py trains with chief and worker tasks only")
    if len(jobs.get("chief", [])) > 1:
        raise UserError("TF_CONFIG: a cluster has at most one chief")
    if task_type not in jobs or isinstance(index, bool) or not isinstance(index, int) \
            or not 0 <= index < len(jobs[task_type]):
        raise UserError(f"TF_CONFIG: task {task_type} {index} is not in the cluster "
                        f"({', '.join(f'{len(v)} {k}' for k, v in jobs.items())})")
    return Cluster(tuple(jobs.get("chief", []) + jobs.get("worker", [])), task_type, index, "chief" in jobs)


def loopback_tf_configs(n):
    """The ``TF_CONFIG`` of each of ``n`` workers on this machine, on loopback ports that
    were free just now: how the tests and ``bench/multiworker.py`` start a cluster."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}) for i in range(n)]


_active = None         # the cluster this process trains in, once tf_strategy() has joined it
_chief_run_dir = None  # named in the message when a worker is lost


def active():
    """The cluster this process trains in, or None on one machine."""
    return _active


def tf_strategy():
    """``(strategy, description)``: MWMS for the cluster in ``TF_CONFIG``. It configures
    TensorFlow's context, so it must be made before anything lists or uses a device.

    Keras 3.15's TensorFlow trainer calls the strategy's ``reduce`` in two ways MWMS
    refuses once there are several workers (keras-team/keras#20585,
    tensorflow/tensorflow#72388): on a batch, a tuple of tensors, to build the model
    ("Attempt to convert a value (PerReplica ...)"), and on each scalar log with
    ``axis=0`` ("Invalid reduction dimension 0 for input with 0 dimensions"). This
    strategy's ``reduce`` reduces each element of a nest, as MirroredStrategy's does,
    and a scalar across the replicas only."""
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    global _active

    class KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def one(v):
                local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
                return super(KerasMultiWorkerStrategy, self).reduce(
                    reduce_op, v, None if local.shape.rank == 0 else axis)
            return tf.nest.map_structure(one, value)

    text = os.environ.get("TF_CONFIG")
    cluster = from_tf_config(text) if text else None
    strategy = KerasMultiWorkerStrategy()
    _active = cluster if cluster and len(cluster.addresses) > 1 else None
    return strategy, cluster.describe() if cluster else "MultiWorkerMirroredStrategy (1 worker)"


def is_chief_process():
    """Whether this process writes the run folder it is given: on one machine, and the
    chief of the cluster in ``TF_CONFIG`` (read here without TensorFlow, before anything
    starts; a malformed one is reported by ``tf_strategy``)."""
    text = os.environ.get("TF_CONFIG")
    try:
        return not text or from_tf_config(text).is_chief
    except UserError:
        return True


def shard_by_data(dataset):
    """A ``(images, labels)`` tf.data input, split between the workers batch by batch.

    The training input is made from a Python generator, so TF's default sharding (by
    file) fails ("Could not apply FILE based sharding"); this sets
    ``AutoShardPolicy.DATA``: every worker's input makes every global batch, MWMS cuts
    each into one piece per replica, and each worker keeps its own pieces. A step thus
    trains on one global batch of ``training.batch_size`` images, the images one machine
    would train on. The images go as int32, since Keras all-reduces one batch to build
    the model and collectives take no uint8."""
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.map(lambda images, labels: (tf.cast(images, tf.int32), labels)).with_options(options)


def run_folder(resume_dir, make_new):
    """The folder this process writes: on the chief (and on one machine) the run folder,
    ``resume_dir`` or ``make_new()``; on the other workers a private folder, removed when
    the process exits, unless ``$SUITE_WORKER_DIR`` names one to keep. A ``TF_CONFIG``
    under another backend is refused: each process would train alone, into its own folder."""
    global _chief_run_dir
    cluster = active()
    if cluster is None and os.environ.get("TF_CONFIG"):
        import keras  # lazy: keeps TensorFlow unloaded for reading TF_CONFIG
        if keras.backend.backend() != "tensorflow":
            raise UserError(f"TF_CONFIG: training on several machines needs the TensorFlow backend; this is "
                            f"{keras.backend.backend()} (unset TF_CONFIG to train on one machine)")
    if cluster is None or cluster.is_chief:
        _chief_run_dir = Path(resume_dir) if resume_dir else make_new()
        return _chief_run_dir
    _chief_run_dir = Path(resume_dir) if resume_dir else None
    keep = os.environ.get(KEEP_ENV)
    if keep:
        private = Path(keep)
        if private.exists() and any(private.iterdir()):
            raise UserError(f"{KEEP_ENV}={keep}: exists and is not empty; a worker never overwrites files")
        private.mkdir(parents=True, exist_ok=True)
    else:
        private = Path(tempfile.mkdtemp(prefix=f"cifar10-suite-{cluster.task_type}{cluster.index}-"))
        atexit.register(shutil.rmtree, private, ignore_errors=True)
    if resume_dir:
        shutil.copytree(resume_dir, private, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*.tmp*"))
    return private


def exit_now(code):
    """End the process with ``code`` at once, after the clean-ups a normal exit runs (a
    worker's private folder), so that TensorFlow's collective threads cannot abort it first."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def reporting_lost_workers(run, *args, **kwargs):
    """``run(*args, **kwargs)``; in a cluster, a lost worker becomes one ``error:`` line (a
    UserError) instead of a TensorFlow traceback."""
    try:
        return run(*args, **kwargs)
    except Exception as e:
        cluster = active()
        if cluster is None or not isinstance(e, _lost_worker_errors()):
            raise
        global _lost
        _lost = True
        folder, again = (_chief_run_dir,) * 2 if _chief_run_dir else ("the chief's run folder", "<that folder>")
        raise UserError(f"{cluster.task_type} {cluster.index}: lost contact with the cluster "
                        f"({_cause(getattr(e, 'message', str(e)))}); {folder} keeps the last complete "
                        f"epoch: start every worker again with python train.py --resume {again}") from None


_lost = False


def lost_contact():
    """Whether this process lost its cluster: TensorFlow's collective threads then abort a
    normal interpreter exit ("terminate called without an active exception")."""
    return _lost


def _lost_worker_errors():
    """What a collective raises when a peer is gone or stops answering."""
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    return (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
            tf.errors.CancelledError)


def _cause(message):
    """The line of a TF error message that says what happened, without the op's
    traceback, gRPC details and ``{{function_node ...}}`` prefixes."""
    noise = ("Graph execution error", "Detected at node", "Additional GRPC", ":UNKNOWN", "[[", "The error could be")
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line[:1].isspace() and not line.startswith(noise)]
    if not lines:
        return message.strip().splitlines()[0] if message.strip() else "no message"
    cause = lines[0].split("}} ", 1)[-1] if lines[0].startswith("{{") else lines[0]
    if cause.endswith(":") and len(lines) > 1:  # "... tasks are unhealthy (stopped sending heartbeats):" + the task
        cause += " " + lines[1]
    return cause.split(" [type.googleapis.com")[0]
