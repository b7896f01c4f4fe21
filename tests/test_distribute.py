"""tf.distribute helpers: global-batch draws sliced per replica, synced writes, global means."""

import numpy as np
import pytest
import tensorflow as tf

from alae_tf import distribute

SEED = tf.constant([3, 7], tf.int64)


def test_outside_a_strategy_a_replica_gets_the_whole_draw():
    rows = distribute.replica_normal(6, (2,), SEED)
    np.testing.assert_array_equal(rows, tf.random.stateless_normal((6, 2), seed=SEED))
    assert distribute.num_replicas() == 1 and distribute.replica_id() == 0


def test_replicas_draw_disjoint_rows_of_the_same_global_draw(two_replica_strategy):
    @tf.function
    def draw():
        return two_replica_strategy.run(lambda: distribute.replica_normal(6, (2,), SEED))

    per_replica = two_replica_strategy.experimental_local_results(draw())
    np.testing.assert_array_equal(np.concatenate([np.asarray(r) for r in per_replica]),
                                  tf.random.stateless_normal((6, 2), seed=SEED))


@pytest.mark.parametrize("global_batch, shape", [(6, (3,)), (10, (5, 5, 1)), (4, (1,))])
def test_rows_not_a_multiple_of_the_philox_block_match_the_global_draw(
        two_replica_strategy, global_batch, shape):
    # A row of 3 or 25 numbers puts the second replica's first number mid-way through a
    # Philox block of 4: it must still get exactly the global draw's rows.
    @tf.function
    def draw():
        return two_replica_strategy.run(
            lambda: distribute.replica_normal(global_batch, shape, SEED))

    per_replica = two_replica_strategy.experimental_local_results(draw())
    assert [r.shape[0] for r in per_replica] == [global_batch // 2] * 2
    np.testing.assert_array_equal(np.concatenate([np.asarray(r) for r in per_replica]),
                                  tf.random.stateless_normal((global_batch, *shape), seed=SEED))


def test_under_xla_each_replica_slice_matches_the_xla_global_draw(monkeypatch):
    # XLA's normal draw differs from the TF kernel's, but slices must still tile it.
    whole = tf.function(lambda: distribute.replica_normal(10, (3,), SEED), jit_compile=True)()
    rows = []
    for replica in range(2):
        monkeypatch.setattr(distribute, "num_replicas", lambda: 2)
        monkeypatch.setattr(distribute, "replica_id", lambda replica=replica: replica)
        rows.append(tf.function(lambda: distribute.replica_normal(10, (3,), SEED),
                                jit_compile=True)())
    np.testing.assert_array_equal(np.concatenate(rows), whole)


def test_a_replica_generates_only_its_own_rows_and_a_few_numbers_before_them(monkeypatch):
    requested = []
    real_op = tf.raw_ops.StatelessRandomNormalV2

    def spy(**kwargs):
        requested.append(int(kwargs["shape"][0]))
        return real_op(**kwargs)

    monkeypatch.setattr(tf.raw_ops, "StatelessRandomNormalV2", spy)
    monkeypatch.setattr(distribute, "num_replicas", lambda: 8)
    monkeypatch.setattr(distribute, "replica_id", lambda: 5)
    rows = distribute.replica_normal(64, (7, 7, 1), SEED)  # 49 numbers per image
    assert rows.shape == (8, 7, 7, 1)
    # 8 rows of 49 numbers, plus the 0..3 numbers between a Philox block start and row 40.
    assert requested == [8 * 49 + (40 * 49) % 4]
    np.testing.assert_array_equal(
        rows, tf.random.stateless_normal((64, 7, 7, 1), seed=SEED)[40:48])


def test_global_mean_summed_over_replicas_is_the_global_mean(two_replica_strategy):
    values = tf.constant([1.0, 2.0, 3.0, 10.0])

    @tf.function
    def mean():
        def replica_fn():
            start = distribute.replica_id() * 2
            return distribute.global_mean(values[start:start + 2], 4)
        return two_replica_strategy.reduce(tf.distribute.ReduceOp.SUM,
                                           two_replica_strategy.run(replica_fn), axis=None)

    assert float(mean()) == np.mean(values.numpy())


def test_assign_synced_writes_every_copy_from_the_replica_context(two_replica_strategy):
    with two_replica_strategy.scope():
        variable = tf.Variable(tf.zeros((3,)),
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    @tf.function
    def write():
        def replica_fn():
            # Each replica contributes its rows; the all-reduced mean is the same everywhere.
            local = tf.fill((3,), tf.cast(distribute.replica_id() + 1, tf.float32))
            distribute.assign_synced([variable], [distribute.all_reduce_mean(local)])
        two_replica_strategy.run(replica_fn)

    write()
    assert len(variable.values) == 2
    for copy in variable.values:
        np.testing.assert_array_equal(copy.numpy(), [1.5, 1.5, 1.5])
    with two_replica_strategy.scope():  # cross-replica context: a plain assignment
        distribute.assign_synced([variable], [tf.ones((3,))])
    for copy in variable.values:
        np.testing.assert_array_equal(copy.numpy(), [1.0, 1.0, 1.0])
