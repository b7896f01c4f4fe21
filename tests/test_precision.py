"""Mixed precision (alae-train --precision): what stays float32, loss scaling for float16,
and how close a few 16-bit training steps come to float32 ones."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.models import precision
from alae_tf.models.precision import policy_scope


def _images(n, shape=(8, 8, 1), low=0.0, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(low, 1, (n, *shape)), tf.float32)


def _built(make, precision, **kwargs):
    with policy_scope(precision):
        return make(**kwargs)


def _sgd_steps(model, x, steps):
    # SGD compares gradients; Adam's first steps are lr * sign(g), which turns rounding in
    # tiny gradients into full-size differences.
    model.compile(ed_optimizer=keras.optimizers.SGD(0.01), fg_optimizer=keras.optimizers.SGD(0.01))
    for optimizer in (model.ed_optimizer, model.fg_optimizer):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # A scale no step overflows at: a skipped step would be a different trajectory.
            optimizer.dynamic_scale.assign(256.0)
    history = model.fit(tf.data.Dataset.from_tensors(x).repeat(), epochs=1,
                        steps_per_epoch=steps, verbose=0).history
    return {name: values[-1] for name, values in history.items()}


@pytest.mark.parametrize("precision, dtype", [("mixed_bfloat16", "bfloat16"),
                                              ("mixed_float16", "float16")])
def test_sixteen_bit_networks_keep_float32_state_and_outputs(make_tiny_model, precision, dtype):
    model = _built(make_tiny_model, precision)
    model.compile()
    assert model.compute_precision == dtype
    assert all(v.dtype == "float32" for v in model.weights if "int" not in v.dtype)
    assert model.discriminate(_images(4)).dtype == tf.float32
    assert model.encode(_images(4)).dtype == tf.float32
    assert model.generate(tf.random.normal((4, 8))).dtype == tf.float32
    assert model.mapping_f(tf.random.normal((4, 8)), update_w_avg=True).dtype == dtype
    assert model.mapping_f.w_avg.dtype == "float32"
    scaled = precision == "mixed_float16"
    for optimizer in (model.ed_optimizer, model.fg_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == scaled
    # The global policy is back to float32 once the networks are built.
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("precision, tolerance", [("mixed_bfloat16", 0.05),
                                                  ("mixed_float16", 0.02)])
def test_a_few_sixteen_bit_steps_stay_finite_and_close_to_float32(make_tiny_model, precision,
                                                                  tolerance):
    x = _images(16, seed=3)
    reference = make_tiny_model(seed=2)
    initial = reference.get_weights()
    logs_32 = _sgd_steps(reference, x, 3)
    model = _built(make_tiny_model, precision, seed=2)
    model.set_weights(initial)
    logs_16 = _sgd_steps(model, x, 3)
    assert all(np.isfinite(v) for v in logs_16.values())
    for name, value in logs_32.items():
        assert abs(logs_16[name] - value) <= tolerance * max(abs(value), 1e-3), name
    # Weights: the change made by three steps, compared with float32's change.
    for w0, w32, w16 in zip(initial, reference.get_weights(), model.get_weights(), strict=True):
        step = np.abs(w32 - w0).max()
        if step > 0:
            assert np.abs(w16 - w32).max() <= 4 * tolerance * step + 1e-6


def test_loss_scales_reset_with_the_optimizers_and_convert_between_them(make_tiny_model):
    model = _built(make_tiny_model, "mixed_float16")
    model.compile()
    model.fit(tf.data.Dataset.from_tensors(_images(8)).repeat(), epochs=1, steps_per_epoch=2,
              verbose=0)
    model.ed_optimizer.dynamic_scale.assign(2.0 ** 10)
    model.fg_optimizer.dynamic_scale.assign(2.0 ** 4)
    grads = [tf.constant([64.0, -8.0]), None]
    # E/D's scale to F/G's, as the latent update's one backward pass needs.
    rescaled = precision.rescale_gradients(grads, model.ed_optimizer, model.fg_optimizer)
    np.testing.assert_array_equal(rescaled[0], [1.0, -0.125])
    assert rescaled[1] is None
    model.reset_optimizers(0.001)
    for optimizer in (model.ed_optimizer, model.fg_optimizer):
        assert float(optimizer.dynamic_scale.numpy()) == optimizer.initial_scale
        assert int(optimizer.step_counter.numpy()) == 0
        # Moments and step counts zeroed (the learning rate is a variable too, set anew).
        assert all(not np.any(v.numpy()) for v in optimizer.inner_optimizer.variables
                   if "learning_rate" not in v.path)
        assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.001)
    # Without loss scaling (float32, bfloat16) nothing is rescaled.
    assert precision.rescale_gradients(grads, keras.optimizers.SGD(),
                                       keras.optimizers.SGD()) is grads


def test_float16_skips_a_step_whose_scaled_gradients_overflow(make_tiny_model):
    model = _built(make_tiny_model, "mixed_float16")
    model.compile()
    model.ed_optimizer.dynamic_scale.assign(2.0 ** 40)  # far beyond float16's 65,504
    before = [v.numpy().copy() for v in model.ed_variables]
    model.fit(tf.data.Dataset.from_tensors(_images(8)), epochs=1, steps_per_epoch=1, verbose=0)
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.ed_variables,
                                                             strict=True))
    assert float(model.ed_optimizer.dynamic_scale.numpy()) < 2.0 ** 40
    assert np.isfinite(float(model.loss_trackers["loss/d"].result()))
    # The next steps, at the lowered scale, train E and D.
    model.ed_optimizer.dynamic_scale.assign(2.0 ** 8)
    model.fit(tf.data.Dataset.from_tensors(_images(8)), epochs=1, steps_per_epoch=1, verbose=0)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.ed_variables,
                                                                strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_style_model_trains_during_a_fade_in_sixteen_bits(precision):
    from test_style_model import tiny_style_model

    model = _built(tiny_style_model, precision, r1_interval=2)
    model.compile()
    model.set_level(1, fade_steps=4)
    data = tf.data.Dataset.from_tensors(_images(4, (16, 16, 1), low=-1.0)).repeat()
    logs = model.fit(data, epochs=1, steps_per_epoch=3, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert model.decode(tf.random.normal((2, 8))).dtype == tf.float32


@pytest.mark.slow
def test_cli_trains_in_bfloat16_saves_a_float32_model_and_keeps_the_precision(
        tmp_path, capsys, monkeypatch):
    from alae_tf.training import train

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # alae-train's main sets it
    run = tmp_path / "run"
    # Narrow layers: bfloat16 matrix products are emulated, slowly, on a CPU without bf16.
    base = ["--preset", "mnist_mlp", "--set", "hidden_units=[64,64]", "--steps-per-epoch",
            "2", "--batch-size", "16", "--run-dir", str(run), "--verbose", "0"]
    assert train.main([*base, "--epochs", "1", "--precision", "mixed_bfloat16"]) == 0
    assert "1 replica(s), mixed_bfloat16; run dir" in capsys.readouterr().out
    assert keras.config.dtype_policy().name == "float32"  # the policy is put back
    assert json.loads((run / "config.json").read_text())["settings"]["precision"] == \
        "mixed_bfloat16"
    model = keras.saving.load_model(run / "model.keras")
    assert model.compute_precision == "float32"
    assert model.encode(_images(2, (28, 28, 1))).dtype == tf.float32
    # Resuming keeps the recorded precision; asking for another is refused, in one line.
    assert train.main([*base, "--epochs", "2", "--precision", "float32"]) == 2
    assert "precision='mixed_bfloat16', not 'float32'" in capsys.readouterr().err
    assert train.main([*base, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "done: epoch 2" in out
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("flags, has_gpu, family, expected", [
    ({"avx512f", "avx512_bf16"}, False, "mlp", "mixed_bfloat16"),
    ({"amx_bf16", "amx_tile"}, False, "mlp", "mixed_bfloat16"),
    ({"avx512f", "avx512_bf16"}, False, "style", "float32"),
    ({"avx512f", "avx2"}, False, "mlp", "float32"),
    ({"avx512_bf16"}, True, "mlp", "float32"),
    (set(), False, "mlp", "float32"),
])
def test_default_precision_is_bfloat16_only_for_mlp_on_a_cpu_with_native_bfloat16(
        flags, has_gpu, family, expected):
    from alae_tf.models.precision import default_precision

    assert default_precision(has_gpu, family, flags) == expected


def test_cpu_flags_and_model_are_read_from_cpuinfo(tmp_path):
    from alae_tf.models.precision import cpu_flags, cpu_model

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R14\n"
                       "flags\t\t: fpu avx2 avx512_bf16\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_model(str(cpuinfo)) == "AMD EPYC 9R14"
    assert cpu_flags(str(tmp_path / "missing")) == set()
    assert cpu_model(str(tmp_path / "missing")) == "unknown CPU"
