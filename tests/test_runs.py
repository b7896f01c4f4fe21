"""Run directories: checkpoints restore every variable, configs guard resumption."""

import numpy as np
import pytest
import tensorflow as tf

from alae_tf.training.cli import UsageError
from alae_tf.training.runs import RunCheckpoint, named_variables, read_config, record_config


def _train_one_step(model):
    model.compile()
    model.fit(tf.data.Dataset.from_tensors(tf.random.uniform((4, 8, 8, 1), seed=1)),
              epochs=1, steps_per_epoch=1, verbose=0)


def test_checkpoint_restores_every_weight_and_optimizer_variable(make_tiny_model, tmp_path):
    trained = make_tiny_model(seed=1)
    _train_one_step(trained)
    RunCheckpoint(trained, str(tmp_path)).save(3)

    fresh = make_tiny_model(seed=2)  # other random weights
    fresh.compile()
    assert RunCheckpoint(fresh, str(tmp_path)).restore_latest() == 3
    pairs = [(trained.weights, fresh.weights),
             (trained.ed_optimizer.variables, fresh.ed_optimizer.variables),
             (trained.fg_optimizer.variables, fresh.fg_optimizer.variables)]
    for saved, restored in pairs:
        assert len(saved) == len(restored)
        for a, b in zip(saved, restored, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # Every network's hidden layers are covered, not only the last layer.
    assert any("generator/dense_0" in v.path for v in fresh.weights)


def test_inference_restore_ignores_optimizer_state(make_tiny_model, tmp_path):
    trained = make_tiny_model(seed=1)
    _train_one_step(trained)
    RunCheckpoint(trained, str(tmp_path)).save(1)
    fresh = make_tiny_model(seed=2)  # not compiled: no optimizers
    RunCheckpoint(fresh, str(tmp_path)).restore_latest(model_only=True)
    x = tf.random.uniform((2, 8, 8, 1), seed=4)
    np.testing.assert_array_equal(trained.reconstruct(x), fresh.reconstruct(x))


def test_checkpoint_keys_are_the_networks_names(make_tiny_model):
    model = make_tiny_model()
    keys = named_variables(model)
    for name in ("mapping_f", "generator", "encoder", "mapping_d", "generator_ema"):
        assert f"model/{name}/dense_0/kernel" in keys
    assert len(keys) == len(model.weights)  # nothing left out, nothing twice
    model.compile()
    keys = named_variables(model)
    n_opt = len(model.ed_optimizer.variables) + len(model.fg_optimizer.variables)
    assert len(keys) == len(model.weights) + n_opt


def test_record_config_round_trip_and_guard(tmp_path):
    from alae_tf.presets import get_preset

    preset = get_preset("mnist_mlp", batch_size=32)
    record_config(str(tmp_path), preset, {"seed": 1, "steps_per_epoch": 5})
    assert read_config(str(tmp_path)) == (preset, {"seed": 1, "steps_per_epoch": 5})
    # Raising the epoch budget is a resume; anything else is another run.
    record_config(str(tmp_path), get_preset("mnist_mlp", batch_size=32, epochs=500),
                  {"seed": 1, "steps_per_epoch": 5})
    with pytest.raises(UsageError, match="seed"):
        record_config(str(tmp_path), preset, {"seed": 2, "steps_per_epoch": 5})
