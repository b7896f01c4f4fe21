"""Run directories: checkpoints restore every variable, configs guard resumption."""

import numpy as np
import pytest
import tensorflow as tf

from alae_tf.errors import CheckpointError, ConfigError
from alae_tf.runs import (
    RunCheckpoint,
    RunSettings,
    SettingChanged,
    named_variables,
    read_config,
    record_config,
    recorded_run,
)


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


def test_record_config_round_trip_and_resume_check(tmp_path):
    import dataclasses
    import json

    from alae_tf.models.presets import get_preset

    preset = get_preset("mnist_mlp", batch_size=32)
    settings = RunSettings(preset, run_dir=str(tmp_path), seed=1, steps_per_epoch=5)
    record_config(settings)
    assert read_config(str(tmp_path)) == settings
    assert json.loads((tmp_path / "config.json").read_text())["settings"] == {
        "seed": 1, "steps_per_epoch": 5, "keep_checkpoints": 3, "precision": "float32"}
    # Raising the epoch budget, the checkpoints kept or the image-size limit is a resume;
    # anything else is another run.
    dataclasses.replace(settings, keep_checkpoints=0, preset=get_preset(
        "mnist_mlp", batch_size=32, epochs=500, max_image_pixels=10)).check_resumes(settings)
    with pytest.raises(SettingChanged, match=r"holds a run with seed=1, not 2; re-run with "
                                             r"the same settings to resume"):
        dataclasses.replace(settings, seed=2).check_resumes(settings)
    with pytest.raises(SettingChanged, match=r"batch_size=32, not 64"):
        dataclasses.replace(settings, preset=get_preset("mnist_mlp", batch_size=64)
                            ).check_resumes(settings)
    # Before the first checkpoint nothing is bound: a failed first attempt can be redone.
    assert recorded_run(str(tmp_path)) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-1.index").write_bytes(b"")
    assert recorded_run(str(tmp_path)) == settings


def test_an_older_config_reads_with_the_settings_it_ran_with(tmp_path):
    import json

    from alae_tf.models.presets import get_preset

    preset = get_preset("mnist_mlp")
    (tmp_path / "config.json").write_text(json.dumps(
        {"preset": preset.to_dict(), "settings": {"seed": 4, "steps_per_epoch": None}}))
    settings = read_config(str(tmp_path))
    assert (settings.preset, settings.seed, settings.keep_checkpoints, settings.precision) == (
        preset, 4, 3, "float32")
    (tmp_path / "config.json").write_text('{"preset": {"nope": 1}}')
    with pytest.raises(ConfigError, match="it was not written by this project's training run"):
        read_config(str(tmp_path))


def _checkpoints_at(model, run_dir, epochs):
    """Saves one checkpoint per epoch, each with other weights; returns {epoch: weights}."""
    checkpoint = RunCheckpoint(model, str(run_dir))
    saved = {}
    for epoch in epochs:
        for v in model.weights:
            v.assign(v + 0.01 * epoch)
        checkpoint.save(epoch)
        saved[epoch] = [v.numpy().copy() for v in model.weights]
    return saved


@pytest.mark.parametrize("damage", ["truncate", "delete", "garble_index"])
def test_restore_walks_back_past_a_damaged_checkpoint(make_tiny_model, tmp_path, damage):
    model = make_tiny_model(seed=1)
    model.compile()
    _train_one_step(model)
    saved = _checkpoints_at(model, tmp_path, [4, 5, 6])
    data = tmp_path / "checkpoints" / "ckpt-6.data-00000-of-00001"
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "delete":
        data.unlink()
    else:
        (tmp_path / "checkpoints" / "ckpt-6.index").write_bytes(b"not an index")
    fresh = make_tiny_model(seed=2)
    fresh.compile()
    warnings = []
    epoch = RunCheckpoint(fresh, str(tmp_path)).restore_latest(warn=warnings.append)
    assert epoch == 5
    for want, got in zip(saved[5], fresh.weights, strict=True):
        np.testing.assert_array_equal(want, got.numpy())
    assert len(warnings) == 1 and warnings[0].startswith("skipped damaged checkpoint ckpt-6 (")
    assert warnings[0].endswith("restored ckpt-5") and "\n" not in warnings[0]
    assert (tmp_path / "checkpoints" / "ckpt-6.index").exists()  # never deleted


def test_training_restore_moves_damaged_files_aside(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=1)
    model.compile()
    _train_one_step(model)
    _checkpoints_at(model, tmp_path, [1, 2])
    data = tmp_path / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:50])
    warnings = []
    assert RunCheckpoint(model, str(tmp_path)).restore_latest(
        quarantine=True, warn=warnings.append) == 1
    assert "moved to checkpoints/damaged/" in warnings[0]
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "damaged").iterdir()) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    RunCheckpoint(model, str(tmp_path)).save(2)  # training goes on and saves epoch 2 again
    assert RunCheckpoint(model, str(tmp_path)).restore_latest(warn=warnings.append) == 2
    assert len(warnings) == 1


def test_no_readable_checkpoint_is_one_clear_error(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=1)
    _checkpoints_at(model, tmp_path, [1, 2])
    for data in (tmp_path / "checkpoints").glob("*.data-*"):
        data.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* reads completely "
                                              r"\(ckpt-2: .*ckpt-1: .*the files were left "
                                              r"in place"):
        RunCheckpoint(make_tiny_model(seed=2), str(tmp_path)).restore_latest(model_only=True)
    assert len(list((tmp_path / "checkpoints").glob("*.data-*"))) == 2
