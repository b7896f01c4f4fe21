"""Behaviour of the ALAE training model: the three updates, R1, EMA, distribution, saving."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.models import losses
from alae_tf.models.alae import ALAE


def _images(n, shape=(8, 8, 1), seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(size=(n, *shape)), tf.float32)


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables, strict=True)]


def _groups(model):
    return {
        "mapping_f": model.mapping_f.trainable_variables,
        "generator": model.generator.trainable_variables,
        "encoder": model.encoder.trainable_variables,
        "mapping_d": model.mapping_d.trainable_variables,
    }


def _step_changes(model, run_step):
    groups = _groups(model)
    before = {k: _snapshot(v) for k, v in groups.items()}
    run_step()
    return {k: any(_changed(before[k], v)) for k, v in groups.items()}


@pytest.mark.parametrize(
    "step, expected",
    [
        ("discriminator", {"encoder", "mapping_d"}),
        ("generator", {"mapping_f", "generator"}),
        ("latent", {"encoder", "generator", "mapping_f"}),
    ],
)
def test_each_step_updates_only_its_own_networks(make_tiny_model, step, expected):
    model = make_tiny_model()
    model.compile()
    x = _images(4)
    run = {
        "discriminator": lambda: model.discriminator_step(x, 4),
        "generator": lambda: model.generator_step(4),
        "latent": lambda: model.latent_step(4),
    }[step]
    changes = _step_changes(model, run)
    assert {name for name, changed in changes.items() if changed} == expected


def test_latent_step_leaves_every_discriminator_variable_alone(make_tiny_model):
    model = make_tiny_model()
    model.compile()
    before = _snapshot(model.mapping_d.trainable_variables)
    model.latent_step(4)
    assert not any(_changed(before, model.mapping_d.trainable_variables))


def test_r1_matches_finite_differences(make_tiny_model):
    model = make_tiny_model(r1_gamma=10.0)
    x = _images(2, seed=3)
    _, r1 = model.real_logits_and_r1(x)

    def logits(images):
        return model.mapping_d(model.encoder(images)).numpy().astype(np.float64)

    eps = 1e-2
    flat = x.numpy().reshape(2, -1)
    grad = np.zeros_like(flat, dtype=np.float64)
    for i in range(flat.shape[1]):
        step = np.zeros_like(flat)
        step[:, i] = eps
        plus = logits(tf.constant((flat + step).reshape(x.shape)))
        minus = logits(tf.constant((flat - step).reshape(x.shape)))
        grad[:, i] = (plus - minus) / (2 * eps)
    expected = 0.5 * 10.0 * np.sum(grad**2, axis=1)
    assert np.all(expected > 0)
    np.testing.assert_allclose(r1.numpy(), expected, rtol=2e-2)


def test_losses_equal_their_formulas():
    real = tf.constant([-2.0, 0.0, 3.0])
    fake = tf.constant([1.0, -1.0, 0.5])
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    np.testing.assert_allclose(
        losses.discriminator_loss(real, fake), softplus(fake.numpy()) + softplus(-real.numpy()),
        rtol=1e-6,
    )
    np.testing.assert_allclose(losses.generator_loss(fake), softplus(-fake.numpy()), rtol=1e-6)
    grads = tf.constant(np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2))
    np.testing.assert_allclose(
        losses.r1_penalty(grads, 10.0),
        5.0 * np.sum(grads.numpy().reshape(2, -1) ** 2, axis=1),
        rtol=1e-6,
    )
    w = tf.constant([[1.0, 2.0], [0.0, 0.0]])
    w_rec = tf.constant([[0.0, 0.0], [3.0, 1.0]])
    np.testing.assert_allclose(losses.latent_reconstruction_loss(w, w_rec), [2.5, 5.0])


def test_train_step_updates_ema_average_w_and_step(make_tiny_model):
    model = make_tiny_model(ema_half_life=100.0)
    model.compile()
    ema_before = _snapshot(model.generator_ema.weights)
    model.train_step(_images(4))
    assert int(model.step.numpy()) == 1
    assert np.any(model.mapping_f.w_avg.numpy() != 0)
    # The running average w is copied into the EMA mapping, not averaged.
    np.testing.assert_array_equal(model.mapping_f_ema.w_avg.numpy(),
                                  model.mapping_f.w_avg.numpy())
    # One step from equal weights: ema = lerp(new, old, beta) with beta = 0.5 ** (4 / 100).
    beta = 0.5 ** (4 / 100)
    pairs = zip(ema_before, model.generator.weights, model.generator_ema.weights, strict=True)
    for old, new, ema in pairs:
        np.testing.assert_allclose(ema.numpy(), new.numpy() + beta * (old - new.numpy()),
                                   rtol=1e-5, atol=1e-6)


def test_training_noise_depends_only_on_seed_and_step(make_tiny_model):
    a, b = make_tiny_model(seed=1), make_tiny_model(seed=1)
    np.testing.assert_array_equal(a.sample_z(6, "generator"), b.sample_z(6, "generator"))
    assert not np.array_equal(a.sample_z(6, "generator"), a.sample_z(6, "latent"))
    b.step.assign(5)
    assert not np.array_equal(a.sample_z(6, "generator"), b.sample_z(6, "generator"))


def _fit_one_step(model, x, jit_compile=False):
    model.compile(jit_compile=jit_compile)
    data = tf.data.Dataset.from_tensors(x)
    model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)


@pytest.mark.slow
def test_two_replicas_match_one_replica(make_tiny_model, two_replica_strategy):
    x = _images(8, seed=7)
    single = make_tiny_model(seed=4)
    initial = single.get_weights()
    _fit_one_step(single, x)

    with two_replica_strategy.scope():
        mirrored = make_tiny_model(seed=4)
        mirrored.set_weights(initial)
        _fit_one_step(mirrored, x)

    assert int(mirrored.step.numpy()) == 1
    for a, b in zip(single.weights, mirrored.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)
    for opt_a, opt_b in (
        (single.ed_optimizer, mirrored.ed_optimizer),
        (single.fg_optimizer, mirrored.fg_optimizer),
    ):
        for a, b in zip(opt_a.variables, opt_b.variables, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)
    # The training moved the weights: the comparison is not between two untouched models.
    moved = zip(initial, single.weights, strict=True)
    assert any(not np.array_equal(a, b.numpy()) for a, b in moved)


def test_keras_save_and_load_give_identical_outputs(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=2)
    _fit_one_step(model, _images(4))
    path = str(tmp_path / "alae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ALAE)
    x, z = _images(3, seed=9), tf.random.normal((3, model.latent_dim), seed=1)
    np.testing.assert_array_equal(model.reconstruct(x), loaded.reconstruct(x))
    np.testing.assert_array_equal(model.generate(z), loaded.generate(z))
    np.testing.assert_array_equal(model(x), loaded(x))
    np.testing.assert_array_equal(model.mapping_f_ema.w_avg.numpy(),
                                  loaded.mapping_f_ema.w_avg.numpy())
    assert int(loaded.step.numpy()) == 1


def test_model_config_round_trip(make_tiny_model):
    model = make_tiny_model()
    config = model.get_config()
    again = ALAE.from_config(config).get_config()
    assert json.dumps(config, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_inference_api_shapes_and_truncation(make_tiny_model):
    model = make_tiny_model()
    model.mapping_f_ema.w_avg.assign(tf.ones((model.latent_dim,)))
    x = _images(3)
    assert model.encode(x).shape == (3, 8)
    assert model.decode(model.encode(x)).shape == (3, 8, 8, 1)
    assert model.interpolate(x[:2], x[1:], num_steps=5).shape == (2, 5, 8, 8, 1)
    ends = model.interpolate(x[:2], x[1:], num_steps=3)
    np.testing.assert_allclose(ends[:, 0], model.reconstruct(x[:2]), atol=1e-5)
    np.testing.assert_allclose(ends[:, -1], model.reconstruct(x[1:]), atol=1e-5)
    z = tf.random.normal((2, 8), seed=3)
    # psi = 0 collapses every sample onto the average w.
    collapsed = model.generate(z, truncation_psi=0.0)
    np.testing.assert_allclose(collapsed[0], collapsed[1], atol=1e-6)
    np.testing.assert_allclose(collapsed[0], model.decode(model.mapping_f_ema.w_avg[None])[0],
                               atol=1e-5)
    # call() is the EMA reconstruction, like every other inference method.
    np.testing.assert_array_equal(model(x), model.reconstruct(x))


def test_inference_runs_the_networks_named_ema_or_trained(make_tiny_model):
    model = make_tiny_model()
    model.compile()
    model.train_step(_images(4))
    assert model.inference_network("encoder") is model.encoder_ema
    assert model.inference_network("generator", use_ema=False) is model.generator
    x, z = _images(2), tf.random.normal((2, 8), seed=4)
    # Training moved the trained networks away from their EMA copies.
    assert not np.allclose(model.encode(x), model.encode(x, use_ema=False))
    np.testing.assert_array_equal(model.encode(x, use_ema=False), model.encoder(x))
    np.testing.assert_array_equal(model.generate(z, use_ema=False),
                                  model.generator(model.mapping_f(z, truncation_psi=1.0)))
    with pytest.raises(ValueError, match="mapping_d"):
        model.inference_network("mapping_d")
    with pytest.raises(ValueError, match="no noise input"):
        model.decode(model.encode(x), noise=[tf.zeros((2, 8, 8, 1))])


def test_truncation_psi_is_a_tensor_traced_once(make_tiny_model):
    model = make_tiny_model()
    model.mapping_f_ema.w_avg.assign(tf.fill((model.latent_dim,), 0.5))
    z = tf.random.normal((3, model.latent_dim), seed=8)
    traces = []

    @tf.function
    def generate(z, psi):
        traces.append(1)
        return model.generate(z, truncation_psi=psi)

    for psi in (1.0, 0.7, 0.0):
        eager = model.generate(z, truncation_psi=psi)
        np.testing.assert_allclose(generate(z, tf.constant(psi)), eager, atol=1e-6)
    assert len(traces) == 1  # psi is data, not a Python branch
    w = model.mapping_f_ema(z)
    np.testing.assert_allclose(model.generate(z, truncation_psi=tf.constant(0.7)),
                               model.decode(0.5 + 0.7 * (w - 0.5)), atol=1e-5)
    np.testing.assert_allclose(model.generate(z, truncation_psi=1.0), model.decode(w), atol=1e-6)


@pytest.mark.slow
@pytest.mark.system
def test_alae_tf_load_model_needs_nothing_else(make_tiny_model, tmp_path):
    import os
    import subprocess
    import sys

    path = str(tmp_path / "alae.keras")
    make_tiny_model(seed=3).save(path)
    code = (f"import alae_tf; m = alae_tf.load_model({path!r}); "
            "print(type(m).__name__, m.latent_dim)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["ALAE", "8"]


def test_the_model_carries_its_pixel_range(make_tiny_model, tmp_path):
    from alae_tf.images import PixelRange

    model = ALAE.from_config({**make_tiny_model().get_config(), "pixel_range": [-1.0, 1.0]})
    assert model.pixel_range == PixelRange(-1.0, 1.0)
    path = str(tmp_path / "range.keras")
    model.save(path)
    assert keras.saving.load_model(path).pixel_range == PixelRange(-1.0, 1.0)
    # A model saved before the range was recorded loads with its family's, (0, 1).
    config = make_tiny_model().get_config()
    del config["pixel_range"]
    assert ALAE.from_config(config).pixel_range == PixelRange(0.0, 1.0)


def test_every_family_is_one_registry_entry():
    import dataclasses

    from alae_tf.errors import ConfigError
    from alae_tf.models import FAMILIES, Preset, build_model, family_of, get_family, get_preset

    common = {f.name for f in dataclasses.fields(Preset)}
    owned = [name for family in FAMILIES.values() for name in family.preset_fields]
    assert len(owned) == len(set(owned)) and set(owned) <= common  # one owner per field
    for name in ("mnist_mlp", "mnist_style_small"):
        preset = get_preset(name, latent_dim=8, hidden_units=(16,), startf=8, maxf=8,
                            resolution=8 if name.endswith("small") else 28)
        family = get_family(preset.family)
        model = build_model(preset)
        assert type(model) is family.model_class and family_of(model) is family
        assert tuple(model.pixel_range) == tuple(preset.pixel_range) == tuple(family.pixel_range)
        assert preset.progressive == family.progressive == model.grows
    assert not FAMILIES["mlp"].noise_inputs and FAMILIES["style"].style_mixing
    with pytest.raises(ConfigError, match="unknown network family 'gan'"):
        build_model(get_preset("mnist_mlp", family="gan"))
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        get_preset("nope")
