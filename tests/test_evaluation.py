"""Tests of alae_tf.metrics.representation: representation scores and the digit classifier."""

import importlib.resources

import numpy as np
import pytest

from alae_tf.metrics import representation


def two_clusters(n, dim=10, seed=0):
    """Two Gaussian clusters at -3 and +3 in every coordinate, labels 0 and 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, dim)) + np.where(y[:, None] == 1, 3.0, -3.0)
    return x, y


@pytest.fixture(scope="module")
def mnist():
    path = importlib.resources.files("alae_tf") / "assets" / "mnist.npz"
    with np.load(path) as data:
        return {
            "x_train": data["x_train"].astype(np.float32) / 255.0,
            "y_train": data["y_train"],
            "x_test": data["x_test"].astype(np.float32) / 255.0,
            "y_test": data["y_test"],
        }


@pytest.fixture(scope="module")
def classifier():
    """The sample-quality classifier as alae-eval trains it (train_digit_classifier on the
    7,996 embedded training digits, 6 epochs, seed 0), through the session's cache: one
    training per test session, shared with the alae-eval runs of other files (40 s on an AVX2
    CPU). The tests that use it are slow-tier."""
    from alae_tf.metrics import digits

    return digits.train_classifier(epochs=6, seed=0, out=lambda *_, **__: None)[0]


def test_nearest_neighbour_separates_two_clusters():
    train_x, train_y = two_clusters(400, seed=0)
    test_x, test_y = two_clusters(200, seed=1)
    assert representation.nearest_neighbour_accuracy(train_x, train_y, test_x, test_y) == 1.0


def test_nearest_neighbour_is_at_chance_with_shuffled_labels():
    train_x, train_y = two_clusters(1000, seed=0)
    test_x, test_y = two_clusters(1000, seed=1)
    shuffled = np.random.default_rng(2).permutation(train_y)
    accuracy = representation.nearest_neighbour_accuracy(train_x, shuffled, test_x, test_y)
    assert 0.42 < accuracy < 0.58  # chance is 0.5; the binomial std is 0.016


def test_nearest_neighbour_is_exact_across_batches():
    rng = np.random.default_rng(0)
    # 5000 training points make the function split 3000 test points into two batches.
    train_x = rng.normal(size=(5000, 6))
    test_x = rng.normal(size=(3000, 6))
    brute = np.array([np.argmin(np.linalg.norm(train_x - t, axis=1)) for t in test_x])
    # Each training point its own label: accuracy 1.0 means every neighbour is the true one.
    assert representation.nearest_neighbour_accuracy(train_x, np.arange(5000), test_x, brute) == 1.0
    train_y = rng.integers(0, 4, size=5000)
    test_y = rng.integers(0, 4, size=3000)
    expected = np.mean(train_y[brute] == test_y)
    assert representation.nearest_neighbour_accuracy(train_x, train_y, test_x, test_y) == expected


def test_linear_svm_separates_separable_data_for_each_c():
    train_x, train_y = two_clusters(300, seed=0)
    test_x, test_y = two_clusters(100, seed=1)
    result = representation.linear_svm_accuracy(train_x, train_y, test_x, test_y)
    assert result["best"] == 1.0
    assert result["by_c"] == {"0.02": 1.0, "0.1": 1.0}
    assert set(result["converged"]) == {"0.02", "0.1"}
    assert all(isinstance(v, bool) for v in result["converged"].values())


def test_linear_svm_reports_non_convergence_without_warning(recwarn):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 30)), rng.integers(0, 3, size=200)
    result = representation.linear_svm_accuracy(x, y, x, y, cs=(10.0,), max_iter=2)
    assert result["converged"] == {"10.0": False}
    assert not [w for w in recwarn if "converge" in str(w.message)]


def test_representation_scores_flattens_inputs():
    train_x, train_y = two_clusters(200, dim=12, seed=0)
    test_x, test_y = two_clusters(100, dim=12, seed=1)
    scores = representation.representation_scores(
        train_x.reshape(-1, 3, 4), train_y, test_x.reshape(-1, 3, 4), test_y, cs=(0.1,)
    )
    assert scores["knn1"] == 1.0 and scores["svm"] == 1.0
    assert scores["svm_by_c"] == {"0.1": 1.0}
    assert set(scores["svm_converged"]) == {"0.1"}


def test_pca_features_fitted_on_train_only():
    rng = np.random.default_rng(0)
    train_x = rng.normal(size=(300, 8, 8)) + 1.0
    test_x = rng.normal(size=(120, 8, 8)) + 4.0
    train_f, test_f = representation.pca_features(train_x, test_x, n_components=20)
    assert train_f.shape == (300, 20) and test_f.shape == (120, 20)
    # Centred on the training mean, so only the training features average to zero.
    np.testing.assert_allclose(train_f.mean(axis=0), 0.0, atol=1e-10)
    assert np.abs(test_f.mean(axis=0)).max() > 1.0
    train_f2, _ = representation.pca_features(train_x, test_x + 100.0, n_components=20)
    np.testing.assert_array_equal(train_f, train_f2)


@pytest.mark.slow
@pytest.mark.slow
def test_digit_classifier_reaches_97_percent(classifier, mnist):
    probs = classifier.predict(mnist["x_test"][..., None], verbose=0)
    accuracy = np.mean(np.argmax(probs, axis=-1) == mnist["y_test"])
    assert accuracy >= 0.97, accuracy
    assert classifier.count_params() < 150_000


def test_digit_classifier_is_deterministic(mnist):
    def weights():
        model = representation.train_digit_classifier(
            mnist["x_train"][:256], mnist["y_train"][:256], epochs=1, seed=3
        )
        return model.get_weights()

    for a, b in zip(weights(), weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_classifier_scores_real_digits_and_noise(classifier, mnist):
    real = representation.classifier_scores(classifier, mnist["x_test"])
    assert real["confident_fraction"] > 0.9
    assert len(real["class_histogram"]) == 10
    assert sum(real["class_histogram"]) == len(mnist["x_test"])
    assert min(real["class_histogram"]) > 100  # all ten digits appear, about 200 each
    noise = np.random.default_rng(0).uniform(size=(500, 28, 28, 1)).astype(np.float32)
    assert representation.classifier_scores(classifier, noise)["confident_fraction"] < 0.3


@pytest.mark.slow
def test_classifier_scores_label_agreement(classifier, mnist):
    x = mnist["x_test"][::7]  # the split is sorted by label: take every digit
    same = representation.classifier_scores(classifier, x, originals=x, reconstructions=x.copy())
    assert same["label_agreement"] == 1.0
    # Overshooting generator output is clipped to [0, 1], as saving it as an image would.
    overshoot = representation.classifier_scores(
        classifier, x, originals=x, reconstructions=x * 3.0 - 1.0
    )
    clipped = np.clip(x * 3.0 - 1.0, 0.0, 1.0)
    expected = representation.classifier_scores(classifier, x, originals=x, reconstructions=clipped)
    assert overshoot["label_agreement"] == expected["label_agreement"]
    permuted = x[np.random.default_rng(0).permutation(len(x))]
    shuffled = representation.classifier_scores(classifier, x, originals=x,
                                                reconstructions=permuted)
    assert shuffled["label_agreement"] < 0.3  # chance is about 0.1


def test_classifier_scores_rejects_bad_inputs(mnist):
    classifier = representation.build_digit_classifier()  # its weights do not matter here
    x = mnist["x_test"][:8]
    with pytest.raises(ValueError):
        representation.classifier_scores(classifier, x, originals=x)
    with pytest.raises(ValueError):
        representation.classifier_scores(classifier, (x * 255).astype(np.uint8))


def test_the_digit_classifier_is_trained_once_per_settings_then_read_from_the_cache(
        tmp_path, monkeypatch):
    import keras

    from alae_tf.metrics import digits

    monkeypatch.setenv("ALAE_TF_CACHE_DIR", str(tmp_path))
    trained = []

    def untrained(images, labels, *, epochs, seed):  # the real network, no fit: fast
        trained.append((epochs, seed, len(images)))
        keras.utils.set_random_seed(seed + epochs)
        return representation.build_digit_classifier()

    monkeypatch.setattr(representation, "train_digit_classifier", untrained)
    lines = []

    def out(message, **_):
        lines.append(message)

    first, accuracy = digits.train_classifier(epochs=3, seed=1, out=out)
    after_training = np.random.random()
    again, again_accuracy = digits.train_classifier(epochs=3, seed=1, out=out)
    path = digits.classifier_cache_path(3, 1)
    assert trained == [(3, 1, 7996)] and path.parent == tmp_path / "digit_classifier"
    assert lines == ["training the digit classifier ...",
                     f"digit classifier: read from the cache ({path})"]
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again_accuracy == accuracy
    # Keras's generators are seeded the same whether the classifier was trained or read.
    assert np.random.random() == after_training

    # Other settings are another classifier; a damaged file is trained again and replaced.
    digits.train_classifier(epochs=4, seed=1, out=out)
    assert trained[-1] == (4, 1, 7996) and len(trained) == 2
    path.write_bytes(b"not an HDF5 file")
    digits.train_classifier(epochs=3, seed=1, out=out)
    assert len(trained) == 3 and lines[-1] == "training the digit classifier ..."
    digits.train_classifier(epochs=3, seed=1, out=out)
    assert len(trained) == 3 and lines[-1].startswith("digit classifier: read from the cache")
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []

    # A cache that cannot be written costs a line and a training next time, nothing else.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ALAE_TF_CACHE_DIR", str(blocked))
    classifier, _ = digits.train_classifier(epochs=3, seed=1, out=out)
    assert lines[-1].startswith(f"(could not cache the digit classifier in {blocked}")
    assert classifier.count_params() == first.count_params()
