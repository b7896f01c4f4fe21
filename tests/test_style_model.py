"""StyleALAE: levels of detail, fade-in from the step counter, style mixing, noise, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.models.mapping import MappingD, MappingF
from alae_tf.models.schedule import fade_in_alpha
from alae_tf.models.style.model import StyleALAE
from alae_tf.models.style.networks import StyleEncoder, StyleGenerator


def tiny_style_model(seed=0, cls=StyleALAE, truncation_cutoff=8, **kwargs):
    keras.utils.set_random_seed(seed)
    return cls(
        mapping_f=MappingF(8, 2, num_styles=6, truncation_cutoff=truncation_cutoff,
                           name="mapping_f"),
        generator=StyleGenerator(16, 1, 8, startf=4, maxf=8, name="generator"),
        encoder=StyleEncoder(16, 1, 8, startf=4, maxf=8, name="encoder"),
        mapping_d=MappingD(8, 3, output_dim=16, name="mapping_d"),
        seed=seed,
        **kwargs,
    )


def _images(n, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)), tf.float32)


def _cosine_alpha(step, start, steps):
    return 0.5 - 0.5 * np.cos(np.pi * min(max((step - start) / steps, 0.0), 1.0))


def test_level_sets_the_resolution_of_every_path():
    model = tiny_style_model()
    assert model.num_styles == 6 and model.level == model.max_level == 2
    assert model.image_shape == (16, 16, 1)
    for level, side in ((0, 4), (1, 8), (2, 16)):
        model.set_level(level)
        assert model.level_resolution == side and int(model.lod.numpy()) == level
        assert model.generate(tf.random.normal((2, 8), seed=1)).shape == (2, side, side, 1)
        real = model.images_at_level(_images(2))
        assert real.shape == (2, side, side, 1)
        assert model.reconstruct(real).shape == (2, side, side, 1)
    with pytest.raises(ValueError, match="lod"):
        model.set_level(3)


def test_mismatched_style_slots_are_refused():
    with pytest.raises(ValueError, match="num_styles=6"):
        StyleALAE(MappingF(8, 2), StyleGenerator(16, 1, 8, startf=4, maxf=8),
                  StyleEncoder(16, 1, 8, startf=4, maxf=8), MappingD(8, 3))


def test_alpha_follows_the_step_counter():
    model = tiny_style_model()
    model.step.assign(7)
    model.set_level(1, fade_steps=10)  # the fade starts at step 7
    for step, expected in ((7, 0.0), (12, 0.5), (14, _cosine_alpha(14, 7, 10)), (17, 1.0),
                           (40, 1.0)):
        model.step.assign(step)
        assert float(model.alpha()) == pytest.approx(expected, abs=1e-6)
    model.set_level(0)  # no fade
    assert float(model.alpha()) == 1.0
    assert float(fade_in_alpha(3, 0, 0)) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("steps_per_execution", [3, 4])
def test_alpha_is_computed_per_step_for_any_steps_per_execution(steps_per_execution):
    """The mean alpha the steps of an epoch trained with equals the schedule's mean (for one
    step per execution: in the next test, whose fit also fades)."""
    model = tiny_style_model()
    model.compile(steps_per_execution=steps_per_execution)
    model.set_level(1, fade_steps=10)
    history = model.fit(tf.data.Dataset.from_tensors(_images(2)).repeat(), epochs=1,
                        steps_per_epoch=12, verbose=0)
    assert int(model.step.numpy()) == 12
    expected = np.mean([_cosine_alpha(s, 0, 10) for s in range(12)])
    assert history.history["fade/alpha"][-1] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_one_traced_step_per_level_and_no_retrace_within_a_level():
    class CountingStyleALAE(StyleALAE):
        traced_levels = []

        def train_step(self, data):
            self.traced_levels.append(self.level)  # runs once per trace
            return super().train_step(data)

    model = tiny_style_model(cls=CountingStyleALAE)
    model.compile()
    data = tf.data.Dataset.from_tensors(_images(2)).repeat()
    model.set_level(1, fade_steps=4)
    history = model.fit(data, epochs=2, steps_per_epoch=3, verbose=0)
    # One step per execution: each epoch's mean alpha is the schedule's mean over its steps.
    for epoch, steps in enumerate((range(3), range(3, 6))):
        assert history.history["fade/alpha"][epoch] == pytest.approx(
            np.mean([_cosine_alpha(s, 0, 4) for s in steps]), abs=1e-6)
    model.fit(data, epochs=3, initial_epoch=2, steps_per_epoch=3, verbose=0)
    assert model.traced_levels == [1]
    model.set_level(2)
    model.fit(data, epochs=2, steps_per_epoch=2, verbose=0)
    assert model.traced_levels == [1, 2]
    assert int(model.step.numpy()) == 13


def test_real_images_fade_between_levels():
    model = tiny_style_model()
    model.set_level(1, fade_steps=8)
    x = _images(2, seed=3)
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")  # 8 px
    coarse = np.repeat(np.repeat(tf.nn.avg_pool2d(pooled, 2, 2, "VALID"), 2, 1), 2, 2)
    np.testing.assert_allclose(model.images_at_level(x, fade=True), coarse, atol=1e-6)  # step 0
    np.testing.assert_allclose(model.images_at_level(x), pooled, atol=1e-6)  # no fade asked
    model.step.assign(2)
    alpha = _cosine_alpha(2, 0, 8)
    np.testing.assert_allclose(model.images_at_level(x, fade=True),
                               coarse + alpha * (pooled - coarse), atol=1e-6)
    model.step.assign(8)
    np.testing.assert_allclose(model.images_at_level(x, fade=True), pooled, atol=1e-6)


def test_style_mixing_uses_two_codes_split_at_a_crossover():
    model = tiny_style_model(style_mixing_prob=1.0)
    model.set_level(1)
    crossovers = set()
    for step in range(12):
        model.step.assign(step)
        w = model.mapping_f(model.sample_z(3, "generator")).numpy()  # [3, 6, 8]
        w_mix = model.mapping_f(model.sample_z(3, "generator", "mixing_z")).numpy()
        mixed = model.fake_styles(3, "generator").numpy()
        crossover = next(s for s in range(6) if not np.allclose(mixed[:, s], w[:, s]))
        assert 1 <= crossover <= 4  # [1, 2 * (lod + 1)]
        np.testing.assert_allclose(mixed[:, :crossover], w[:, :crossover], atol=1e-6)
        np.testing.assert_allclose(mixed[:, crossover:], w_mix[:, crossover:], atol=1e-6)
        crossovers.add(crossover)
    assert len(crossovers) > 1  # drawn per step, not fixed at trace time

    model = tiny_style_model(style_mixing_prob=0.0)
    w = model.mapping_f(model.sample_z(3, "generator")).numpy()
    np.testing.assert_allclose(model.fake_styles(3, "generator"), w, atol=1e-6)
    # The latent update never mixes: its target is the single w.
    model = tiny_style_model(style_mixing_prob=1.0)
    w = model.mapping_f(model.sample_z(3, "latent")).numpy()
    np.testing.assert_allclose(model.fake_styles(3, "latent"), w, atol=1e-6)


def test_mixing_gradient_reaches_f_through_both_codes():
    model = tiny_style_model(style_mixing_prob=1.0)
    model.set_level(2)
    model.step.assign(next(s for s in range(50) if _crossover_at(model, s) < 6))
    crossover = _crossover_at(model, int(model.step.numpy()))
    weights = np.random.default_rng(0).normal(size=(3, 6, 8)).astype("float32")
    variables = model.mapping_f.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        mixed = model.fake_styles(3, "generator") * weights
        first_part = tf.reduce_sum(mixed[:, :crossover])
        second_part = tf.reduce_sum(mixed[:, crossover:])
    for part in (first_part, second_part):
        grads = tape.gradient(part, variables)
        assert all(g is not None for g in grads)
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0


def _crossover_at(model, step):
    model.step.assign(step)
    w = model.mapping_f(model.sample_z(3, "generator")).numpy()
    mixed = model.fake_styles(3, "generator").numpy()
    return next((s for s in range(6) if not np.allclose(mixed[:, s], w[:, s])), 6)


def test_only_the_first_code_feeds_the_average_w():
    model = tiny_style_model(style_mixing_prob=1.0)
    w = model.mapping_f(model.sample_z(4, "generator"))[:, 0]
    model.fake_styles(4, "generator")
    # From zero: w_avg = lerp(mean(w), 0, decay) = (1 - decay) mean(w), for the first w alone.
    np.testing.assert_allclose(model.mapping_f.w_avg.numpy(),
                               (1 - 0.995) * np.mean(w.numpy(), axis=0), rtol=1e-4, atol=1e-7)


def test_truncation_pulls_only_the_first_slots():
    model = tiny_style_model(truncation_cutoff=2)
    model.mapping_f_ema.w_avg.assign(tf.ones((8,)))
    z = tf.random.normal((2, 8), seed=5)
    w = model.mapping_f_ema(z)  # [2, 6, 8]
    slots = w.numpy().copy()
    slots[:, :2] = 1.0  # psi = 0: the first two slots become the average w
    noise = [tf.zeros((2, h, w_, 1)) for h, w_ in model.noise_shapes()]
    np.testing.assert_allclose(model.generate(z, truncation_psi=tf.constant(0.0), noise=noise),
                               model.decode(slots, noise=noise), atol=1e-5)


def test_decode_with_given_noise_is_deterministic():
    model = tiny_style_model()
    for block in model.generator_ema.blocks:
        for noise in (block.noise0, block.noise1):
            noise.noise_scale.assign(tf.ones_like(noise.noise_scale))
    w = tf.random.normal((2, 8), seed=9)
    noise = [tf.random.normal((2, h, w_, 1), seed=i)
             for i, (h, w_) in enumerate(model.noise_shapes())]
    np.testing.assert_array_equal(model.decode(w, noise=noise), model.decode(w, noise=noise))
    assert not np.allclose(model.decode(w), model.decode(w))  # drawn noise differs


@pytest.mark.parametrize("level", [0, 1, 2])
def test_train_step_at_each_level_trains_only_the_active_blocks(level):
    model = tiny_style_model()
    model.compile()
    model.set_level(level, fade_steps=4 if level else 0)
    model.step.assign(2)  # mid-fade
    top = model.generator.blocks[2].conv1.kernel
    before = top.numpy().copy()
    logs = model.train_step(_images(4))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert int(model.step.numpy()) == 3
    assert np.array_equal(top.numpy(), before) == (level < 2)


def test_training_noise_comes_from_the_model_seed():
    a, b = tiny_style_model(seed=1), tiny_style_model(seed=1)
    for x, y in zip(a.training_noise(4, "generator"), b.training_noise(4, "generator"),
                    strict=True):
        np.testing.assert_array_equal(x, y)
    assert [tuple(n.shape) for n in a.training_noise(4, "generator")] == [
        (4, 4, 4, 1), (4, 4, 4, 1), (4, 8, 8, 1), (4, 8, 8, 1), (4, 16, 16, 1), (4, 16, 16, 1)]


@pytest.mark.slow
def test_two_replicas_match_one_replica_during_a_fade(two_replica_strategy):
    x = _images(8, seed=7)
    single = tiny_style_model(seed=4)
    initial = single.get_weights()

    def one_step(model):
        # SGD: Adam's first step is lr * sign(g), which turns float rounding in near-zero
        # gradients (a bias just before an instance norm) into +-lr; SGD compares gradients.
        model.compile(ed_optimizer=keras.optimizers.SGD(1e-4),
                      fg_optimizer=keras.optimizers.SGD(1e-4))
        model.set_level(1, fade_steps=10)
        model.step.assign(4)  # alpha about 0.35
        model.fit(tf.data.Dataset.from_tensors(x), epochs=1, steps_per_epoch=1, verbose=0)

    one_step(single)
    with two_replica_strategy.scope():
        mirrored = tiny_style_model(seed=4)
        mirrored.set_weights(initial)
        one_step(mirrored)
    for a, b in zip(single.weights, mirrored.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5, err_msg=a.path)
    moved = zip(initial, single.weights, strict=True)
    assert any(not np.array_equal(a, b.numpy()) for a, b in moved)


def test_style_model_save_and_load(tmp_path):
    model = tiny_style_model(seed=2)
    model.set_level(1)
    path = str(tmp_path / "style.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, StyleALAE)
    assert loaded.level == 1  # follows the restored lod variable
    z = tf.random.normal((2, 8), seed=6)
    noise = [tf.random.normal((2, h, w, 1), seed=i)
             for i, (h, w) in enumerate(model.noise_shapes())]
    np.testing.assert_allclose(model.generate(z, noise=noise), loaded.generate(z, noise=noise),
                               atol=1e-6)
