"""StyleALAE inside the shared ALAE model: levels of detail, fade-in, style mixing, noise."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.mapping import MappingD, MappingF
from alae_tf.model import ALAE
from alae_tf.presets import get_preset
from alae_tf.style import StyleEncoder, StyleGenerator
from alae_tf.training.callbacks import FadeIn
from alae_tf.training.train import lod_segments


def tiny_style_model(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return ALAE(
        mapping_f=MappingF(8, 2, name="mapping_f"),
        generator=StyleGenerator(16, 1, 8, startf=4, maxf=8, name="generator"),
        encoder=StyleEncoder(16, 1, 8, startf=4, maxf=8, name="encoder"),
        mapping_d=MappingD(8, 3, output_dim=16, name="mapping_d"),
        seed=seed,
        **kwargs,
    )


def _images(n, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)), tf.float32)


def test_lod_sets_the_resolution_of_every_path():
    model = tiny_style_model()
    assert model.progressive and model.num_styles == 6 and model.current_lod == 2
    for lod, side in ((0, 4), (1, 8), (2, 16)):
        model.set_lod(lod)
        assert model.resolution == side
        assert model.generate(tf.random.normal((2, 8), seed=1)).shape == (2, side, side, 1)
        real = model.real_at_lod(_images(2))
        assert real.shape == (2, side, side, 1)
        assert model.reconstruct(real).shape == (2, side, side, 1)
    with pytest.raises(ValueError, match="lod"):
        model.set_lod(3)


def test_real_images_fade_between_levels():
    model = tiny_style_model()
    model.set_lod(1)
    x = _images(2, seed=3)
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")  # 8 px
    coarse = np.repeat(np.repeat(tf.nn.avg_pool2d(pooled, 2, 2, "VALID"), 2, 1), 2, 2)
    model.alpha.assign(1.0)
    np.testing.assert_allclose(model.real_at_lod(x), pooled, atol=1e-6)
    model.alpha.assign(0.0)
    np.testing.assert_allclose(model.real_at_lod(x), coarse, atol=1e-6)
    model.alpha.assign(0.25)
    np.testing.assert_allclose(model.real_at_lod(x), coarse + 0.25 * (pooled - coarse), atol=1e-6)


def test_style_mixing_uses_two_codes_split_at_a_crossover():
    model = tiny_style_model(style_mixing_prob=1.0)
    model.set_lod(1)
    w = tf.random.normal((3, 8), seed=4)
    crossovers = set()
    for step in range(12):
        model.step.assign(step)
        mixed = model._mixed_styles(w, 3).numpy()  # [3, 6, 8]
        first = [s for s in range(6) if not np.allclose(mixed[:, s], w.numpy())]
        crossover = first[0] if first else 6
        assert 1 <= crossover <= 4  # [1, 2 * (lod + 1)]
        assert all(np.allclose(mixed[:, s], mixed[:, crossover]) for s in range(crossover, 6))
        crossovers.add(crossover)
    assert len(crossovers) > 1  # drawn per step, not fixed at trace time

    model = tiny_style_model(style_mixing_prob=0.0)
    model.set_lod(1)
    mixed = model._mixed_styles(w, 3).numpy()
    np.testing.assert_allclose(mixed, np.repeat(w.numpy()[:, None], 6, axis=1))


def test_truncation_pulls_only_the_first_slots():
    model = tiny_style_model(truncation_cutoff=2)
    model.w_avg.assign(tf.ones((8,)))
    z = tf.random.normal((2, 8), seed=5)
    w = model.mapping_f_ema(z)
    slots = np.repeat(w.numpy()[:, None], 6, axis=1)
    slots[:, :2] = 1.0  # psi = 0: the first two slots become the average w
    np.testing.assert_allclose(model.generate(z, truncation_psi=0.0), model.decode(slots),
                               atol=1e-5)


@pytest.mark.parametrize("lod", [0, 1, 2])
def test_train_step_at_each_level_trains_only_the_active_blocks(lod):
    model = tiny_style_model()
    model.compile()
    model.set_lod(lod)
    model.alpha.assign(0.5 if lod else 1.0)
    top = model.generator.second_convs[2].kernel
    before = top.numpy().copy()
    logs = model.train_step(_images(4))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert int(model.step.numpy()) == 1
    assert np.array_equal(top.numpy(), before) == (lod < 2)


def test_training_noise_comes_from_the_model_seed():
    a, b = tiny_style_model(seed=1), tiny_style_model(seed=1)
    for x, y in zip(a._training_noise(4, 1), b._training_noise(4, 1), strict=True):
        np.testing.assert_array_equal(x, y)
    assert [tuple(n.shape) for n in a._training_noise(4, 1)] == [
        (4, 4, 4, 1), (4, 4, 4, 1), (4, 8, 8, 1), (4, 8, 8, 1), (4, 16, 16, 1), (4, 16, 16, 1)]


def test_two_replicas_match_one_replica_during_a_fade(two_replica_strategy):
    x = _images(8, seed=7)
    single = tiny_style_model(seed=4)
    initial = single.get_weights()

    def one_step(model):
        # SGD: Adam's first step is lr * sign(g), which turns float rounding in near-zero
        # gradients (a bias just before an instance norm) into +-lr; SGD compares gradients.
        model.compile(encoder_optimizer=keras.optimizers.SGD(1e-4),
                      decoder_optimizer=keras.optimizers.SGD(1e-4))
        model.set_lod(1)
        model.alpha.assign(0.4)
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


def test_fade_in_schedule():
    preset = get_preset("mnist_style_small")  # 4 epochs per level: fades over 2 epochs
    fade = FadeIn(preset, lod=1, steps_per_epoch=10)
    assert fade.lod_start == 4
    assert fade.alpha_at(4, 0) == pytest.approx(0.0)
    assert fade.alpha_at(5, 0) == pytest.approx(0.5)
    assert fade.alpha_at(5, 5) == pytest.approx(0.5 - 0.5 * np.cos(np.pi * 0.75))
    assert fade.alpha_at(6, 0) == pytest.approx(1.0)
    assert fade.alpha_at(7, 9) == pytest.approx(1.0)
    assert FadeIn(preset, lod=0, steps_per_epoch=10).alpha_at(0, 0) == 1.0


def test_lod_segments_follow_the_schedule_and_resume_mid_level():
    preset = get_preset("mnist_style_small")
    assert lod_segments(preset, 0) == [(0, 0, 4), (1, 4, 8), (2, 8, 12), (3, 12, 20)]
    assert lod_segments(preset, 5) == [(1, 5, 8), (2, 8, 12), (3, 12, 20)]
    assert lod_segments(get_preset("mnist_mlp", epochs=3), 1) == [(0, 1, 3)]


def test_style_model_save_and_load(tmp_path):
    model = tiny_style_model(seed=2)
    model.set_lod(1)
    path = str(tmp_path / "style.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.current_lod == 1  # read from the restored variable
    z = tf.random.normal((2, 8), seed=6)
    np.testing.assert_allclose(model.generate(z), loaded.generate(z), atol=1e-6)
