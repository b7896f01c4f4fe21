"""tf.distribute helpers of the training step: replica-synced writes and global-batch draws.

Under a ``MirroredStrategy`` each replica runs the step on its own slice of the global batch.
For N replicas to compute exactly what one replica would on the whole batch, three things
must hold, and each has its helper here:

- losses are sums over the replica's examples divided by the GLOBAL batch size
  (``global_mean``), so that the optimizer's all-reduce SUM of gradients is the gradient of the
  global mean;
- random draws are rows of one global-batch draw from a stateless seed, and each replica
  computes only its own rows (``replica_normal``);
- variables that are not updated by an optimizer (EMA weights, the running average w) are
  written from the replica context with values every replica agrees on (``assign_synced``).
"""

import math

import keras
import tensorflow as tf

from alae_tf.errors import ConfigError

# Numbers a Philox counter value yields (TensorFlow's PhiloxRandom::kResultElementCount).
_PHILOX_NUMBERS_PER_COUNTER = 4


def num_replicas():
    """Replicas of the current strategy (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_id():
    """Index of the calling replica in its sync group (0 outside a replica context)."""
    context = tf.distribute.get_replica_context()
    return 0 if context is None else context.replica_id_in_sync_group


def global_mean(per_example, global_batch):
    """Sum of this replica's per-example values divided by the global batch size.

    Summed over replicas (as the optimizer's all-reduce does with gradients) this is the mean
    over the global batch.
    """
    return tf.reduce_sum(per_example) / tf.cast(global_batch, per_example.dtype)


def all_reduce_mean(value):
    """Mean of ``value`` over the replicas (the value itself outside a replica context)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def replica_normal(global_batch, shape, seed):
    """This replica's rows of a global ``[global_batch, *shape]`` draw of N(0, 1).

    The rows are exactly those a single device drawing the whole global batch from the same
    stateless seed would get, so N replicas see the numbers one replica would; but each
    replica generates only its own rows. A Philox draw is a counter-based stream (one
    counter value gives 4 numbers), so a replica starts the stream at its first row's
    counter, rounded down to a multiple of 4 numbers, and drops the few extra numbers in
    front. At 1024 px StyleALAE's noise inputs are about 0.75 GB per global batch of 64:
    each replica now draws its share alone.

    Args:
        global_batch: the global batch size (a scalar tensor or int).
        shape: the shape of one example's draw (static).
        seed: a stateless seed, int64 tensor of shape [2].
    """
    local_batch = global_batch // num_replicas()
    per_example = math.prod(shape)
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    offset = tf.cast(replica_id() * local_batch * per_example, tf.int64)  # numbers before ours
    skip = offset // _PHILOX_NUMBERS_PER_COUNTER
    dropped = offset - skip * _PHILOX_NUMBERS_PER_COUNTER
    # The low 64 bits of the 128-bit counter start at 0 for a seeded key, so adding the skip
    # there cannot carry.
    counter = counter + tf.stack([tf.cast(skip, tf.uint64), tf.constant(0, tf.uint64)])
    count = tf.cast(local_batch * per_example, tf.int64) + dropped
    values = tf.raw_ops.StatelessRandomNormalV2(
        shape=tf.reshape(count, [1]), key=key, counter=counter,
        alg=tf.random.Algorithm.PHILOX.value,
    )
    return tf.reshape(values[dropped:], (local_batch, *shape))


def assign_synced(variables, values):
    """Assigns ``values`` to (possibly mirrored) ``variables`` from any context.

    In a replica context every replica must compute the same values (they derive from synced
    weights and all-reduced statistics); each device copy takes its own replica's value, as a
    Keras optimizer's update does. In a cross-replica context, or with no strategy, this is a
    plain assignment.
    """
    raw = [v.value if isinstance(v, keras.Variable) else v for v in variables]
    values = list(values)
    if len(raw) != len(values):
        raise ValueError(f"{len(raw)} variables but {len(values)} values")

    def update(strategy, targets, new_values):
        for target, value in zip(targets, new_values, strict=True):
            strategy.extended.update(
                target, lambda var, val: var.assign(val), args=(value,), group=False
            )

    context = tf.distribute.get_replica_context()
    if context is None:
        for target, value in zip(raw, values, strict=True):
            target.assign(value)
    else:
        context.merge_call(update, args=(raw, values))


class ClusterError(ConfigError):
    """TF_CONFIG does not describe a cluster this process can join."""


def cluster_from_tf_config(environ=None):
    """``(task_type, task_index, cluster)`` of this process, read from ``$TF_CONFIG``.

    TF_CONFIG is the JSON TensorFlow's multi-worker strategies read, e.g.
    ``{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker",
    "index": 0}}``. It is checked here so that a mistake is one clear line rather than a
    hang or a gRPC error.

    Raises:
        ClusterError: TF_CONFIG is missing, not JSON, or names a task outside its cluster.
    """
    import json
    import os

    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        raise ClusterError("TF_CONFIG is not set; every worker needs it, e.g. TF_CONFIG="
                           "'{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                           "\"task\": {\"type\": \"worker\", \"index\": 0}}' (see "
                           "docs/distributed.md)")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({e})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ClusterError("TF_CONFIG needs a \"cluster\" object (job name -> list of "
                           "host:port) and a \"task\" object ({\"type\": ..., \"index\": ...})")
    if not cluster.get("worker") and not cluster.get("chief"):
        raise ClusterError("TF_CONFIG's cluster has no \"worker\" or \"chief\" job")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a
                                                      for a in addresses):
            raise ClusterError(f"TF_CONFIG's cluster job {job!r} must be a list of "
                               f"\"host:port\" strings, got {addresses!r}")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in ("chief", "worker") or task_type not in cluster:
        raise ClusterError(f"TF_CONFIG's task type {task_type!r} must be 'chief' or 'worker' "
                           f"and a job of its cluster ({', '.join(sorted(cluster))})")
    if not isinstance(index, int) or isinstance(index, bool) or not (
            0 <= index < len(cluster[task_type])):
        raise ClusterError(f"TF_CONFIG's task index {index!r} is not a position in its "
                           f"{task_type!r} list of {len(cluster[task_type])}")
    return task_type, index, cluster


def is_chief_task(task_type, task_index, cluster):
    """The chief writes a multi-worker run's files: the "chief" task, else worker 0."""
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and not cluster.get("chief")


def num_workers(strategy=None):
    """Worker processes taking part in ``strategy`` (1 unless it is multi-worker)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return len(spec.get("chief", [])) + len(spec.get("worker", []))


def is_multi_worker(strategy=None):
    """True under a MultiWorkerMirroredStrategy of more than one worker."""
    return num_workers(strategy) > 1


def gather_from_workers(strategy, value):
    """Every replica's copy of the int ``value``, in replica order (a list of ints).

    A collective: every worker must call it, in the same order. Used to check that the
    workers agree (say, on the checkpoint each restored).
    """
    return [int(v) for v in _gather(strategy, tf.constant([value], tf.int64)).numpy()]


@tf.function
def _gather(strategy, value):
    # In a tf.function: eager collectives are slow and TensorFlow warns about each one.
    return strategy.gather(strategy.run(lambda: tf.identity(value)), axis=0)


def weights_fingerprint(variables):
    """A short hash of the variables' values (this worker's copies): the workers of one
    multi-worker run must all print the same one."""
    import hashlib

    digest = hashlib.sha256()
    for variable in variables:
        digest.update(keras.ops.convert_to_numpy(variable.value).tobytes())
    return digest.hexdigest()[:16]
