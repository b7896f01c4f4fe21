"""Recipe knobs for ablations: alae-train --set FIELD=VALUE, --time-budget, and the preset
fields they reach (G's output activation, Adam betas, EMA half-life)."""

import argparse
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.cli import UsageError
from alae_tf.models.mlp.networks import MLPGenerator
from alae_tf.models.presets import build_model, get_preset
from alae_tf.trainer import FieldError, checked_fields, resolve_settings
from alae_tf.training.train import build_parser, preset_fields


def test_set_parses_json_values_by_the_fields_type():
    preset = get_preset("mnist_mlp")
    items = ["r1_gamma=5", "adam_betas=[0.5, 0.9]", "g_output=sigmoid", "d_activations=true",
             "latent-dim=32"]
    got = checked_fields(preset, preset_fields(build_parser().parse_args(
        [arg for item in items for arg in ("--set", item)])))
    assert got == {"r1_gamma": 5.0, "adam_betas": (0.5, 0.9), "g_output": "sigmoid",
                   "d_activations": True, "latent_dim": 32}
    assert isinstance(got["r1_gamma"], float)


def test_field_checks_take_plain_values():
    preset = get_preset("mnist_mlp")
    assert checked_fields(preset, {"adam_betas": [0.5, 0.9], "epochs": 3}) == {
        "adam_betas": (0.5, 0.9), "epochs": 3}
    with pytest.raises(FieldError, match="r1_gamma takes a number \\(now 10.0\\), not 'abc'"):
        checked_fields(preset, {"r1_gamma": "abc"})
    with pytest.raises(FieldError, match="'nope' is not a preset field"):
        checked_fields(preset, {"nope": 1})


@pytest.mark.parametrize("item, message", [
    ("nope=1", "FIELD one of"),
    ("r1_gamma", "FIELD one of"),
    ("name=other", "FIELD one of"),
    ("r1_gamma=abc", "r1_gamma takes a number \\(now 10.0\\), not 'abc'"),
    ("latent_dim=2.5", "latent_dim takes an integer"),
    ("d_activations=1", "d_activations takes true or false"),
    ("adam_betas=0.5", "adam_betas takes a JSON list"),
])
def test_set_refuses_unknown_fields_and_wrong_types(item, message, tmp_path):
    from alae_tf.training import train

    args = build_parser().parse_args(["--set", item, "--run-dir", str(tmp_path / "run")])
    with pytest.raises(UsageError, match=message):
        train.resolve_settings(args)


def _record_run(run_dir, settings):
    """A run directory that binds ``settings`` (config.json and one checkpoint file)."""
    from alae_tf.runs import record_config

    record_config(settings)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "ckpt-1.index").write_bytes(b"")


def test_set_applies_on_top_of_the_recorded_preset_when_resuming(tmp_path):
    from alae_tf.runs import RunSettings

    args = build_parser().parse_args(["--set", "r1_gamma=2"])
    recorded = get_preset("mnist_mlp", learning_rate=0.001)
    _record_run(tmp_path, RunSettings(recorded, run_dir=str(tmp_path)))
    preset = resolve_settings(str(tmp_path), fields=preset_fields(args))[0].preset
    assert preset.r1_gamma == 2.0 and preset.learning_rate == 0.001
    assert isinstance(args, argparse.Namespace)


def test_flags_left_out_come_from_the_recorded_run_else_the_defaults(tmp_path):
    from alae_tf.models.precision import PRECISIONS
    from alae_tf.runs import RunSettings
    from alae_tf.training import train

    recorded = RunSettings(get_preset("mnist_mlp", epochs=4, batch_size=16),
                           run_dir=str(tmp_path), seed=7, steps_per_epoch=3, keep_checkpoints=0)
    _record_run(tmp_path, recorded)
    settings, found = train.resolve_settings(build_parser().parse_args(
        ["--run-dir", str(tmp_path), "--epochs", "6", "--grid-every", "2"]))
    assert found == recorded
    assert (settings.seed, settings.steps_per_epoch, settings.keep_checkpoints,
            settings.precision, settings.preset.batch_size, settings.preset.epochs,
            settings.grid_every) == (7, 3, 0, "float32", 16, 6, 2)
    settings.check_resumes(found)
    # The library resolves the same way from plain arguments.
    assert resolve_settings(str(tmp_path), fields={"epochs": 6}, grid_every=2, verbose=2) == (
        settings, found)

    fresh, found = train.resolve_settings(build_parser().parse_args(
        ["--run-dir", str(tmp_path / "new"), "--verbose", "1"]))
    assert found is None
    assert (fresh.preset.name, fresh.seed, fresh.steps_per_epoch, fresh.keep_checkpoints,
            fresh.verbose) == ("mnist_mlp", 0, None, 3, 1)
    assert fresh.precision in PRECISIONS  # "auto", resolved for this machine


def test_generator_output_activation_keeps_pixels_in_range_and_serialises():
    generator = MLPGenerator(8, (4, 4, 1), (16,), output_activation="sigmoid")
    w = np.random.default_rng(0).normal(size=(64, 8)).astype("float32") * 50
    x = np.asarray(generator(w))
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0
    again = MLPGenerator.from_config(generator.get_config())
    assert again.output_activation == "sigmoid"
    with pytest.raises(ValueError, match="output_activation must be one of"):
        MLPGenerator(8, (4, 4, 1), (16,), output_activation="relu")


def test_preset_fields_reach_the_model():
    preset = get_preset("mnist_mlp", adam_betas=(0.5, 0.9), ema_half_life=2000.0,
                        g_output="sigmoid")
    model = build_model(preset)
    model.compile(learning_rate=preset.learning_rate, adam_betas=preset.adam_betas)
    assert model.ema_half_life == 2000.0
    assert model.generator.output_activation == "sigmoid"
    for optimizer in (model.ed_optimizer, model.fg_optimizer):
        assert optimizer.beta_1 == 0.5 and optimizer.beta_2 == 0.9
    with pytest.raises(ValueError, match=r"g_output 'tanh' needs pixel_range \(-1.0, 1.0\)"):
        build_model(get_preset("mnist_mlp", g_output="tanh"))


@pytest.mark.slow
def test_time_budget_stops_with_a_checkpoint_and_the_same_command_trains_on(tmp_path, capsys):
    from alae_tf.training import train

    run = tmp_path / "run"
    argv = ["--preset", "mnist_mlp", "--epochs", "5", "--steps-per-epoch", "2", "--batch-size",
            "16", "--time-budget", "0.0001", "--set", "g_output=sigmoid", "--set",
            "hidden_units=[64,64]", "--run-dir", str(run), "--verbose", "0"]
    for epoch in (1, 2):
        assert train.main(argv) == 0
        out = capsys.readouterr().out
        assert (f"time budget of 0.0001 minutes used: stopped after epoch {epoch} of 5"
                in out)
        assert f"done: epoch {epoch}, step {2 * epoch}," in out
        assert f"epoch {epoch}/5, " not in out  # --verbose 0: no progress lines either
        assert (run / "checkpoints" / f"ckpt-{epoch}.index").exists()
        assert (run / "samples" / f"epoch_{epoch:04d}_samples.png").exists()
        assert (run / "model.keras").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["preset"]["g_output"] == "sigmoid"


@pytest.mark.slow
@pytest.mark.system
def test_ablation_script_tabulates_a_run_and_reports_a_failed_one(tmp_path, capfd,
                                                                    monkeypatch):
    # The script's main() in this process; the alae-train and alae-eval processes it starts
    # are real (and quiet: TF_CPP_MIN_LOG_LEVEL is inherited).
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ablation", Path(__file__).parents[1] / "benchmarks" / "ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    out = tmp_path / "ablation"
    (out / "sigmoid").mkdir(parents=True)
    (out / "sigmoid" / "seed_0").write_text("a file where the run directory should be")
    code = ablation.main(["--minutes", "0.001", "--variants", "reference,sigmoid", "--out",
                          str(out), "--train-flags", "--set hidden_units=[64,64]",
                          "--eval-flags",
                          "--max-train 500 --classifier-epochs 1 --num-samples 200"])
    stderr = capfd.readouterr().err
    assert code == 1, stderr[-2000:]
    assert "ablation: sigmoid seed 0 failed (alae-train exit 2)" in stderr
    assert "Traceback" not in stderr
    rows = json.loads((out / "ablation.json").read_text())["rows"]
    assert [(r["variant"], r["seed"], r["epochs"]) for r in rows] == [("reference", 0, 1)]
    config = json.loads((out / "reference" / "seed_0" / "config.json").read_text())
    assert config["preset"]["hidden_units"] == [64, 64]  # --train-flags reached alae-train
    assert 0.0 <= rows[0]["w_knn1"] <= 1.0 and rows[0]["images_seen"] == 7936
    assert "| reference | 0 | 1 | 7,936 |" in (out / "ablation.md").read_text()


# ---------------------------------------------------------------- lazy R1, lr decay, shifts

def _d_step_in_graph(model, x, step):
    """Step 1 (the discriminator update) at step counter ``step``, traced as in fit()."""
    model.step.assign(step)
    return tf.function(lambda: model.discriminator_step(x, 4))()


def _ed_weights(model):
    return [v.numpy().copy() for v in model.ed_variables]


@pytest.mark.parametrize("step, same_as_gamma", [(0, 30.0), (3, 30.0), (1, 0.0), (2, 0.0)])
def test_lazy_r1_is_k_times_the_penalty_on_every_kth_step_and_absent_otherwise(
        make_tiny_model, step, same_as_gamma):
    # r1_interval 3, gamma 10: steps 0, 3, ... update like gamma 30 every step; the others
    # like gamma 0. Both with SGD, which compares gradients, not Adam's normalised steps.
    x = tf.constant(np.random.default_rng(1).uniform(size=(4, 8, 8, 1)), tf.float32)
    runs = {}
    for name, kwargs in (("lazy", {"r1_gamma": 10.0, "r1_interval": 3}),
                         ("eager", {"r1_gamma": same_as_gamma})):
        model = make_tiny_model(seed=5, **kwargs)
        model.compile(ed_optimizer=keras.optimizers.SGD(0.1),
                      fg_optimizer=keras.optimizers.SGD(0.1))
        before = _ed_weights(model)
        adversarial, r1 = _d_step_in_graph(model, x, step)
        runs[name] = (before, _ed_weights(model), r1.numpy())
    for a, b in zip(runs["lazy"][1], runs["eager"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(runs["lazy"][2], runs["eager"][2], rtol=1e-5, atol=1e-8)
    assert (runs["lazy"][2].max() > 0) == (step % 3 == 0)
    moved = zip(runs["lazy"][0], runs["lazy"][1], strict=True)
    assert any(not np.array_equal(a, b) for a, b in moved)


@pytest.mark.slow
def test_lazy_r1_trains_a_style_model_whose_upper_blocks_get_no_gradient():
    from test_style_model import tiny_style_model

    model = tiny_style_model(r1_interval=4)
    model.compile()
    model.set_level(1)
    top = model.encoder.trainable_variables[0]  # the unused highest-resolution from-RGB
    before = top.numpy().copy()
    model.make_train_function()
    data = tf.data.Dataset.from_tensors(
        tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)), tf.float32))
    history = model.fit(data.repeat(), epochs=1, steps_per_epoch=5, verbose=0).history
    assert int(model.step.numpy()) == 5
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert np.array_equal(top.numpy(), before)
    assert type(model).from_config(model.get_config()).r1_interval == 4


def test_r1_interval_must_be_a_positive_integer(make_tiny_model):
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="r1_interval must be a positive integer"):
            make_tiny_model(r1_interval=bad)


@pytest.mark.parametrize("decay, factors", [
    ("none", [1.0, 1.0, 1.0, 1.0]),
    ("linear", [1.0, 0.75, 0.5, 0.25]),
    ("cosine", [1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5, 0.5 * (1 + np.cos(3 * np.pi / 4))]),
])
def test_learning_rate_decays_over_the_run(decay, factors):
    schedule = get_preset("mnist_mlp", epochs=4, learning_rate=0.004, lr_decay=decay).schedule
    np.testing.assert_allclose([schedule.learning_rate_at_epoch(e) for e in range(4)],
                               0.004 * np.array(factors))


def test_learning_rate_decay_name_is_checked():
    with pytest.raises(ValueError, match="lr_decay must be one of none, cosine, linear"):
        _ = get_preset("mnist_mlp", lr_decay="step").schedule


def test_shift_images_moves_each_image_by_its_own_offset_and_fills_the_border():
    from alae_tf.data import shift_images

    images = tf.constant(np.random.default_rng(2).uniform(1, 2, (64, 6, 6, 1)), tf.float32)
    shifted = shift_images(images, 2, tf.constant([0, 9], tf.int64), fill=-1.0).numpy()
    offsets = set()
    for original, moved in zip(images.numpy(), shifted, strict=True):
        # Find the shift (dy, dx) that explains the output: the overlap matches exactly.
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(original, (dy, dx), axis=(0, 1))
                                   [max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)],
                                   moved[max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)])]
        assert len(found) == 1
        dy, dx = found[0]
        offsets.add(found[0])
        border = np.ones((6, 6), bool)
        border[max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)] = False
        assert np.all(moved[border] == -1.0)
    assert len(offsets) > 10  # 25 possible offsets, 64 images


def test_translate_reaches_the_pipeline_and_is_checked():
    from alae_tf.data import DataError, make_dataset

    plain, _ = make_dataset("mnist", resolution=28, channels=1, batch_size=32, seed=3)
    moved, _ = make_dataset("mnist", resolution=28, channels=1, batch_size=32, seed=3,
                            translate=2)
    a, b = next(iter(plain)).numpy(), next(iter(moved)).numpy()
    assert not np.array_equal(a, b)
    # Shifts move ink, they do not make or remove it (MNIST digits keep 2 px of margin).
    np.testing.assert_allclose(a.sum(axis=(1, 2, 3)), b.sum(axis=(1, 2, 3)), rtol=1e-5)
    with pytest.raises(DataError, match="translate must be a whole number of pixels"):
        make_dataset("mnist", resolution=28, channels=1, batch_size=32, translate=28)


@pytest.mark.slow
def test_a_notebook_trains_resumes_and_is_refused_through_the_library(tmp_path):
    from alae_tf.trainer import OtherPreset, train

    run = str(tmp_path / "run")
    result = train(preset="mnist_mlp", run_dir=run, epochs=1, steps_per_epoch=2,
                   batch_size=16, hidden_units=(64, 64), verbose=0)
    assert (result.epoch, result.step, result.images_seen) == (1, 2, 32)
    assert result.model_path == os.path.join(run, "model.keras")
    assert os.path.isfile(result.model_path) and not result.already_trained
    again = train(run_dir=run)  # everything left out: the recorded run, trained already
    assert again.already_trained and (again.epoch, again.step) == (1, 2)
    with pytest.raises(OtherPreset, match="holds a mnist_mlp run, not mnist_style_small"):
        train(preset="mnist_style_small", run_dir=run)
