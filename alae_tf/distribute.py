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
