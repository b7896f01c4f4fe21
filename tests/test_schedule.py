"""The progressive-growing schedule: levels per epoch, segments, fade length, per-level values."""

import numpy as np
import pytest

from alae_tf.models.presets import PRESETS, get_preset
from alae_tf.models.schedule import ProgressiveSchedule, fade_in_alpha


def test_levels_and_segments_follow_the_schedule_and_resume_mid_level():
    schedule = get_preset("mnist_style_small").schedule  # 4 levels, 4 epochs each, 20 epochs
    assert schedule.num_levels == 4 and schedule.max_level == 3
    assert [schedule.level_at_epoch(e) for e in (0, 3, 4, 11, 12, 19)] == [0, 0, 1, 2, 3, 3]
    assert schedule.segments(0) == [(0, 0, 4), (1, 4, 8), (2, 8, 12), (3, 12, 20)]
    assert schedule.segments(5) == [(1, 5, 8), (2, 8, 12), (3, 12, 20)]
    assert [schedule.starts_level(e) for e in (0, 1, 4, 5, 12, 13)] == [
        True, False, True, False, True, False]
    mlp = get_preset("mnist_mlp", epochs=3).schedule
    assert mlp.num_levels == 1 and mlp.segments(1) == [(0, 1, 3)]
    assert mlp.starts_level(0) and not mlp.starts_level(1)
    assert mlp.fade_steps(0, 100) == 0


def test_fade_lasts_half_a_level_and_never_at_level_zero():
    schedule = get_preset("mnist_style_small").schedule
    assert schedule.fade_steps(0, 10) == 0
    assert schedule.fade_steps(1, 10) == 20  # 4 / 2 epochs of 10 steps
    assert schedule.first_epoch(2) == 8


def test_fade_in_alpha_is_the_reference_cosine():
    for step, expected in ((0, 0.0), (5, 0.5), (10, 1.0), (-3, 0.0), (25, 1.0)):
        assert float(fade_in_alpha(step, 0, 10)) == pytest.approx(expected, abs=1e-6)
    t = 0.3
    assert float(fade_in_alpha(103, 100, 10)) == pytest.approx(0.5 - 0.5 * np.cos(np.pi * t))
    assert float(fade_in_alpha(0, 0, 0)) == 1.0  # no fade


def test_per_level_batch_sizes_and_learning_rates_pad_with_the_last_value():
    schedule = ProgressiveSchedule(num_levels=5, epochs_per_level=2, epochs=12,
                                   batch_sizes=(64, 32), learning_rates=(0.1, 0.2, 0.3))
    assert [schedule.batch_size_at(level) for level in range(5)] == [64, 32, 32, 32, 32]
    assert [schedule.learning_rate_at(level) for level in range(5)] == [0.1, 0.2, 0.3, 0.3, 0.3]
    assert schedule.largest_batch_size == 64
    with pytest.raises(ValueError, match="epochs_per_level"):
        ProgressiveSchedule(num_levels=2, epochs_per_level=0, epochs=4, batch_sizes=(1,),
                            learning_rates=(0.1,))


def test_bedroom_follows_the_reference_config():
    schedule = get_preset("bedroom256").schedule
    assert schedule.epochs == 112 and schedule.epochs_per_level == 2
    assert schedule.learning_rate_at(5) == 0.0015 and schedule.learning_rate_at(6) == 0.002
    for name, preset in PRESETS.items():  # every level of every preset has its values
        levels = range(preset.schedule.num_levels)
        assert all(preset.schedule.batch_size_at(level) > 0 for level in levels), name
