"""Who does what in a training run: the tf.distribute strategy, and for a multi-worker run
this process's role (the chief writes the run directory; the other workers save their
checkpoints to a temporary directory), the agreement checks between workers and what a lost
worker becomes."""

import contextlib
import tempfile

import tensorflow as tf

from alae_tf.distribute import (
    cluster_from_tf_config,
    gather_from_workers,
    is_chief_task,
    is_multi_worker,
)
from alae_tf.errors import RunDirError, WorkerLost, clean_message


class Role:
    """What this process writes: everything (the chief, or a single process), or, as one
    of a multi-worker run's other workers, checkpoints to a temporary directory only.

    Args:
        chief: this process writes the run directory.
        write_dir: where its checkpoints go (the run directory, or a temporary one).
        label: "worker 1 of 2 workers" in a multi-worker run, else empty.
    """

    def __init__(self, chief=True, write_dir=None, label=""):
        self.chief, self.write_dir, self.label = chief, write_dir, label


def make_strategy(name, run_dir, join_quietly=None):
    """(strategy, role) for the strategy ``name`` (default, mirrored or multi_worker). A
    multi-worker strategy must exist before TensorFlow runs any op, so this comes before the
    data and the model.

    Args:
        name: the strategy's name.
        run_dir: the run directory.
        join_quietly: a context manager factory the cluster join runs inside (an
            application's capture of TensorFlow's connection logs), or None.

    Raises:
        ClusterError: TF_CONFIG does not describe a cluster this process can join.
    """
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(), Role(write_dir=run_dir)
    if name != "multi_worker":
        return tf.distribute.get_strategy(), Role(write_dir=run_dir)
    task_type, index, cluster = cluster_from_tf_config()
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    label = f"{task_type} {index} of {workers} workers"
    print(f"{label}: joining the cluster (this waits until every worker has started)",
          flush=True)
    with join_quietly() if join_quietly else contextlib.nullcontext():
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        tf.constant(0)  # device set-up and the cluster's connection logs happen here
    if is_chief_task(task_type, index, cluster):
        return strategy, Role(write_dir=run_dir, label=label)
    # Keras's convention: the other workers save too (a checkpoint save is a collective
    # step), to a temporary directory removed at the end.
    temp = tempfile.mkdtemp(prefix=f"alae-train-{task_type}{index}-")
    return strategy, Role(chief=False, write_dir=temp, label=label)


def check_workers_agree(strategy, run_dir, newest):
    """Every worker must see the chief's checkpoints: compares each one's ``newest``
    checkpoint number (a collective; nothing happens outside a multi-worker run).

    Raises:
        RunDirError: the workers see different checkpoints.
    """
    if not is_multi_worker(strategy):
        return
    epochs = gather_from_workers(strategy, newest)
    if len(set(epochs)) > 1:
        raise RunDirError(
            f"the workers see different checkpoints in {run_dir!r} (newest epoch by worker: "
            f"{', '.join(map(str, epochs))}; 0 means none): every worker must see the chief's "
            "run directory, on a shared filesystem or GCS, at the same path")


@contextlib.contextmanager
def worker_losses_reported(run_dir, role):
    """Turns a multi-worker run's dead or hung peer into ``WorkerLost``; checkpoints stay."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.DeadlineExceededError, tf.errors.InternalError) as e:
        if isinstance(e, tf.errors.InternalError) and "Collective" not in str(e):
            raise
        detail = clean_message(e) or type(e).__name__
        raise WorkerLost(
            f"{role.label}: lost contact with the other workers ({detail[:160]}); the "
            f"checkpoints in {run_dir} are kept: restart every worker with the same "
            "command to resume from the newest") from None
