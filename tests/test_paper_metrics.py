"""FID of generations and reconstructions and PPL of a model: the drivers on tiny models, style
mixing as the reference samples for FID, progress output."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_model
from test_style_model import tiny_style_model

from alae_tf import fid, paper_metrics


def _pixels():
    return fid.FeatureExtractor(lambda x: np.asarray(x).reshape(len(x), -1), "pixel-FID")


def test_progress_counts_and_estimates_the_time_left():
    times = iter([0.0, 5.0, 20.0, 40.0])
    lines = []
    progress = paper_metrics.Progress("FID", 400, every=10.0, clock=lambda: next(times),
                                      out=lambda line, flush: lines.append(line))
    progress(100)  # 5 s: too soon for a line
    progress(200)  # 20 s: half done, about 20 s left
    progress(400)  # the end is always printed
    assert lines == ["FID: 200/400 images, 20 s, about 20 s left", "FID: 400/400 images, 40 s"]


def test_fid_scores_of_a_tiny_model_and_the_counts_used():
    model = tiny_model(seed=1)
    rng = np.random.default_rng(0)
    reals = [rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32) for _ in range(3)]
    lines = []
    scores = paper_metrics.fid_scores(model, (0.0, 1.0), reals, _pixels(), num_images=100,
                                      batch_size=16, out=lambda line, flush: lines.append(line))
    assert scores["fid_real_images"] == scores["fid_generated_images"] == 48
    assert scores["fid_features"] == "pixel-FID"
    assert np.isfinite(scores["fid_generations"]) and scores["fid_generations"] > 0
    assert np.isfinite(scores["fid_reconstructions"]) and scores["fid_reconstructions"] > 0
    assert "the data has 48 images; every set uses that many" in "\n".join(lines)
    # The reconstructions' statistics are those of G(E(x)) of exactly these images.
    real, rec = fid.FeatureStatistics(), fid.FeatureStatistics()
    for x in reals:
        real.update(x.reshape(16, -1))
        rec.update(np.clip(np.asarray(model.reconstruct(x)), 0, 1).reshape(16, -1))
    assert scores["fid_reconstructions"] == pytest.approx(fid.statistics_distance(real, rec),
                                                          rel=1e-6)


def test_generations_mix_styles_with_the_models_probability():
    model = tiny_style_model(style_mixing_prob=0.9)
    rng = np.random.default_rng(1)
    z, z_mix = (rng.standard_normal((4, 8)).astype(np.float32) for _ in range(2))
    w = model.network("mapping_f_ema")(z).numpy()
    w_mix = model.network("mapping_f_ema")(z_mix).numpy()
    # u_mix 0.5 < 0.9 mixes; u_crossover 0.4 of 2 * (level 2 + 1) = 6 slots: crossover 1 + 2.
    mixed = paper_metrics.sample_styles(model, z, z_mix, (0.5, 0.4)).numpy()
    np.testing.assert_array_equal(mixed[:, :3], w[:, :3])
    np.testing.assert_array_equal(mixed[:, 3:], w_mix[:, 3:])
    unmixed = paper_metrics.sample_styles(model, z, z_mix, (0.95, 0.4)).numpy()
    np.testing.assert_array_equal(unmixed, w)


def test_ppl_scores_of_a_tiny_style_model():
    model = tiny_style_model()
    from alae_tf import ppl

    scores = paper_metrics.ppl_scores(model, (-1.0, 1.0), ppl.squared_pixel_distance,
                                      "pixel", num_samples=8, batch_size=4,
                                      out=lambda line, flush: None)
    assert scores["ppl_samples"] == 8 and scores["ppl_epsilon"] == 1e-4
    assert scores["ppl_full"] > 0 and scores["ppl_end"] > 0
    # Noise shared within a pair: a model whose w has no effect has zero path length.
    model.network("mapping_f_ema").set_weights(
        [np.zeros_like(v) for v in model.network("mapping_f_ema").get_weights()])
    flat = paper_metrics.ppl_scores(model, (-1.0, 1.0), ppl.squared_pixel_distance, "pixel",
                                    num_samples=4, batch_size=4, out=lambda line, flush: None)
    assert flat["ppl_full"] == pytest.approx(0.0, abs=1e-6)


def test_to_unit_range_clips_like_a_saved_image():
    x = tf.constant([[-1.5, -1.0, 0.0, 1.0, 2.0]])
    np.testing.assert_allclose(paper_metrics.to_unit_range(x, (-1.0, 1.0)),
                               [[0.0, 0.0, 0.5, 1.0, 1.0]])
