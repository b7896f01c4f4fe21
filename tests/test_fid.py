"""FID and PPL: the Frechet distance against closed forms, streaming statistics against one-shot
ones, feature networks loaded from files, PPL of a linear generator against its closed form."""

import numpy as np
import pytest

from alae_tf.errors import MetricError
from alae_tf.metrics import fid, ppl


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(0).normal(size=(500, 6))
    stats = fid.FeatureStatistics()
    stats.update(x)
    assert fid.statistics_distance(stats, stats) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_two_gaussians_in_closed_form():
    # Diagonal covariances: tr(C1 + C2 - 2 sqrt(C1 C2)) = sum (s1 - s2)^2 of the std devs.
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.5, 0.5])
    expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
    got = fid.frechet_distance(m1, np.diag(s1**2), m2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-9)
    # Rotating both Gaussians by the same orthogonal matrix changes nothing.
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rotated = fid.frechet_distance(q @ m1, q @ np.diag(s1**2) @ q.T, q @ m2,
                                   q @ np.diag(s2**2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)
    # Scalar case: (m1 - m2)^2 + (s1 - s2)^2.
    assert fid.frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 1)


def test_the_distance_equals_the_reference_implementations_matrix_square_root():
    # The reference implementations take scipy's sqrtm of C1 C2; the eigendecompositions used
    # here give its trace, for full-rank and for rank-deficient covariances (fewer samples than
    # dimensions, as FID on a few images) alike.
    import scipy.linalg

    rng = np.random.default_rng(2)
    for samples, dim in ((400, 20), (5, 20), (12, 300)):
        a, b = fid.FeatureStatistics(), fid.FeatureStatistics()
        a.update(rng.normal(size=(samples, dim)))
        b.update(rng.normal(size=(samples, dim)) * 1.5 + 1.0)
        root = scipy.linalg.sqrtm(a.covariance @ b.covariance).real
        expected = (np.sum((a.mean - b.mean) ** 2) + np.trace(a.covariance)
                    + np.trace(b.covariance) - 2 * np.trace(root))
        value = fid.statistics_distance(a, b)
        assert np.isfinite(value) and value > 0
        assert value == pytest.approx(expected, rel=1e-6), (samples, dim)
    with pytest.raises(MetricError, match="not finite"):
        fid.frechet_distance([0.0, np.nan], np.eye(2), [0.0, 0.0], np.eye(2))


def test_streaming_statistics_equal_one_shot_statistics():
    rng = np.random.default_rng(3)
    x = rng.normal(loc=50.0, scale=3.0, size=(1037, 16)).astype(np.float32)  # a large offset
    stats = fid.FeatureStatistics()
    for start in range(0, len(x), 100):  # uneven last batch
        stats.update(x[start:start + 100])
    assert stats.count == len(x)
    np.testing.assert_allclose(stats.mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(x.astype(np.float64), rowvar=False),
                               rtol=1e-9, atol=1e-12)


def test_statistics_of_stops_at_the_count_and_reports_progress():
    extractor = fid.FeatureExtractor(lambda x: np.asarray(x).reshape(len(x), -1), "pixels")
    batches = (np.full((4, 2, 2, 1), i / 10, np.float32) for i in range(10))
    seen = []
    stats = fid.statistics_of(batches, extractor, 10, progress=seen.append)
    assert stats.count == 10 and seen == [4, 8, 10]
    with pytest.raises(ValueError, match="only 8 images"):
        fid.statistics_of([np.zeros((8, 2, 2, 1))], extractor, 9)


def test_extractor_prepares_images_for_its_network():
    got = {}

    def network(x):
        got["x"] = np.asarray(x)
        return np.ones((len(x), 3))

    extractor = fid.FeatureExtractor(network, "test", size=8, channels=3,
                                     input_range=(-1.0, 1.0))
    features = extractor(np.full((5, 4, 4, 1), 0.75, np.float32))
    assert features.shape == (5, 3) and features.dtype == np.float64
    assert got["x"].shape == (5, 8, 8, 3)
    np.testing.assert_allclose(got["x"], 0.5, atol=1e-6)  # 0.75 in [0, 1] is 0.5 in [-1, 1]


@pytest.mark.slow
def test_fid_end_to_end_with_a_random_inception_at_299_px(tmp_path):
    """The full pipeline on InceptionV3's architecture (random weights: the trained ones are a
    download): grey 32 px images resized to 299 px RGB, 2048 pooled features, streamed."""
    import keras

    keras.utils.set_random_seed(0)
    inception = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg",
                                               input_shape=(299, 299, 3))
    extractor = fid.keras_extractor(inception, batch_size=8)
    rng = np.random.default_rng(4)
    real = rng.uniform(0.0, 0.5, size=(12, 32, 32, 1)).astype(np.float32)
    near = rng.uniform(0.0, 0.5, size=(12, 32, 32, 1)).astype(np.float32)
    far = rng.uniform(0.5, 1.0, size=(12, 32, 32, 1)).astype(np.float32)

    def stats(images):
        return fid.statistics_of([images[:8], images[8:]], extractor, len(images))

    real_stats = stats(real)
    assert real_stats.mean.shape == (2048,)
    np.testing.assert_array_equal(stats(real).mean, real_stats.mean)  # deterministic features
    # Each distance is two 2048 x 2048 symmetric eigendecompositions (seconds): two of them.
    near_fid = fid.statistics_distance(real_stats, stats(near))
    far_fid = fid.statistics_distance(real_stats, stats(far))
    assert 0 < near_fid < far_fid


def test_any_keras_model_file_serves_as_the_feature_network(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D()])
    path = str(tmp_path / "features.keras")
    model.save(path)
    extractor = fid.keras_extractor(path, input_range=(0.0, 1.0))
    x = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype(np.float32)
    expected = model(extractor.prepare(x)).numpy()
    np.testing.assert_allclose(extractor(x), expected, rtol=1e-5)
    assert extractor.size == 16 and extractor.channels == 3 and not extractor.comparable


def test_feature_networks_that_cannot_serve_are_one_line(tmp_path):
    bad = tmp_path / "not_a_model.keras"
    bad.write_text("nothing")
    with pytest.raises(MetricError, match="cannot load the feature network"):
        fid.keras_extractor(str(bad))
    with pytest.raises(MetricError, match="cannot read the Inception graph"):
        fid.inception_graph_extractor(str(tmp_path / "missing.pb"))


def test_a_frozen_graph_with_the_fid_tensor_names_is_read(tmp_path):
    """The GraphDef path: images fed at ExpandDims:0 in [0, 255], features read at pool_3:0
    (here a stand-in graph with those names: the real one is a download)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="ExpandDims")
        tf.reduce_mean(images, axis=[1, 2], keepdims=True, name="pool_3")  # [N, 1, 1, 3]
    path = tmp_path / "graph.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    extractor = fid.inception_graph_extractor(str(path))
    x = np.random.default_rng(5).uniform(size=(3, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(extractor(x), x.mean(axis=(1, 2)) * 255.0, rtol=1e-5)
    other = tf.Graph()
    with other.as_default():
        tf.compat.v1.placeholder(tf.float32, [None, 2], name="input")
    (tmp_path / "other.pb").write_bytes(other.as_graph_def().SerializeToString())
    with pytest.raises(MetricError, match="not the FID Inception graph"):
        fid.inception_graph_extractor(str(tmp_path / "other.pb"))


def test_ppl_of_a_linear_generator_equals_its_closed_form():
    """G(w) = A w with the squared distance: d / eps^2 = ||A (w_b - w_a)||^2 for every t, whose
    mean over w_a, w_b ~ N(0, I) is 2 tr(A^T A)."""
    rng = np.random.default_rng(6)
    latent, pixels = 4, 12
    a = rng.normal(size=(pixels, latent))

    def synthesize(w, seeds):
        return (np.asarray(w, np.float64) @ a.T).reshape(len(w), 3, 4, 1)

    values = ppl.path_distances(lambda z: z, synthesize, ppl.squared_pixel_distance,
                                num_samples=4000, latent_dim=latent, batch_size=500, seed=1)
    # Per pair, against the exact value from the same z (drawn in the same order).
    check = np.random.default_rng(1)
    exact = []
    for _ in range(8):
        z = check.standard_normal((1000, latent)).astype(np.float32).astype(np.float64)
        check.uniform(size=500)
        check.integers(0, 2**31 - 1, size=500)
        exact.append(np.sum(((z[1::2] - z[0::2]) @ a.T) ** 2, axis=1))
    np.testing.assert_allclose(values, np.concatenate(exact), rtol=1e-6)
    assert ppl.perceptual_path_length(
        lambda z: z, synthesize, ppl.squared_pixel_distance, num_samples=4000,
        latent_dim=latent, batch_size=500, seed=1) == pytest.approx(
        ppl.trimmed_mean(np.concatenate(exact)), rel=1e-6)
    # The population mean, untrimmed, within sampling error.
    assert np.mean(values) == pytest.approx(2 * np.trace(a.T @ a), rel=0.05)


def test_ppl_end_sampling_pairs_share_noise_and_start_at_t0():
    seen = []

    def synthesize(w, seeds):
        seen.append(seeds)
        return np.asarray(w, np.float64).reshape(len(w), 1, 1, -1)

    values = ppl.path_distances(lambda z: z * 0 + 1.0, synthesize, ppl.squared_pixel_distance,
                                num_samples=6, latent_dim=2, sampling="end", batch_size=3)
    assert np.all(values == 0)  # every w is the same point: no path
    for seeds in seen:
        np.testing.assert_array_equal(seeds[:3], seeds[3:])
    with pytest.raises(ValueError, match="sampling"):
        ppl.path_distances(lambda z: z, synthesize, ppl.squared_pixel_distance, 2, 2,
                           sampling="middle")


def test_trimmed_mean_drops_the_extreme_percent():
    values = np.concatenate([np.ones(990), np.full(5, 1000.0), np.full(5, -1000.0)])
    assert ppl.trimmed_mean(values) == pytest.approx(1.0)
    # Of 100 values the 1st and 99th percentiles ("lower", "higher") are the extremes: kept.
    values = np.concatenate([np.ones(98), [1000.0, -1000.0]])
    assert ppl.trimmed_mean(values) == pytest.approx(np.mean(values))


def test_face_crop_and_downsampling():
    images = np.arange(2 * 1024 * 1024 * 3, dtype=np.float32).reshape(2, 1024, 1024, 3)
    crop = ppl.face_crop(images)
    assert crop.shape == (2, 512, 512, 3)
    np.testing.assert_array_equal(crop[0, 0, 0], images[0, 384, 256])
    small = ppl.downsample_to(crop)
    assert small.shape == (2, 256, 256, 3)
    np.testing.assert_allclose(small[0, 0, 0], crop[0, :2, :2].mean(axis=(0, 1)))
    assert ppl.face_crop(images[:, :128, :128], celeba_style=True).shape[1:3] == (78, 78)


def test_lpips_equals_the_lpips_package_on_the_same_weights(tmp_path):
    """tests/data/lpips_reference.json: the lpips package's LPIPS(net='vgg') on these seeded
    weights and image pairs (the real weights are downloads)."""
    import json
    from pathlib import Path

    from helpers.lpips import random_lpips_weights, reference_inputs

    from alae_tf.metrics.lpips import LPIPS

    path = tmp_path / "lpips_vgg.npz"
    np.savez(path, **random_lpips_weights())
    distance = LPIPS.from_file(str(path), batch_size=3)
    a, b = reference_inputs()
    reference = json.loads((Path(__file__).parent / "data" / "lpips_reference.json").read_text())
    np.testing.assert_allclose(distance(a, b), reference["distances"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(distance(a, a), 0.0, atol=1e-7)
    np.testing.assert_allclose(distance(b, a), distance(a, b), rtol=1e-5)


def test_lpips_files_that_do_not_fit_are_one_line(tmp_path):
    from helpers.lpips import random_lpips_weights

    from alae_tf.metrics.lpips import LPIPS

    weights = random_lpips_weights()
    del weights["lin4.model.1.weight"]
    np.savez(tmp_path / "short.npz", **weights)
    with pytest.raises(MetricError, match="lack 1 tensors"):
        LPIPS.from_file(str(tmp_path / "short.npz"))
    weights = random_lpips_weights()
    weights["net.slice1.0.weight"] = weights["net.slice1.0.weight"][:32]
    np.savez(tmp_path / "wrong.npz", **weights)
    with pytest.raises(MetricError, match=r"net.slice1.0.weight has shape \(32, 3, 3, 3\)"):
        LPIPS.from_file(str(tmp_path / "wrong.npz"))
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(MetricError, match="cannot read LPIPS weights"):
        LPIPS.from_file(str(tmp_path / "junk.npz"))
