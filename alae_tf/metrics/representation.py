"""Representation and sample-quality scores for MNIST, computed on numpy arrays.

The representation scores are the paper's MNIST protocol (section 6.1): features
from the encoder are scored with a 1-nearest-neighbour classifier (Euclidean) and a linear SVM
(scikit-learn ``LinearSVC``, C in {0.02, 0.1}, max_iter 5000) trained on one split and tested
on another. The classifier scores are this project's cheap proxy for sample quality on a
2-core machine (the paper reports FID, which needs 50k images): a small CNN trained on real
digits judges whether generations look like confident digits, whether all ten classes appear,
and whether reconstructions keep the digit's identity.
"""

import warnings

import keras
import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

DIGIT_SHAPE = (28, 28, 1)


def _flatten(x):
    """Returns ``x`` as a float64 matrix ``[N, features]``."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def nearest_neighbour_accuracy(train_x, train_y, test_x, test_y):
    """Accuracy of the exact 1-nearest-neighbour classifier under the Euclidean distance.

    Each test point takes the label of its closest training point. Distances are computed in
    test batches so that the distance block stays near 64 MB whatever the split sizes.

    Args:
        train_x: training features, ``[N, ...]`` (flattened to ``[N, D]``).
        train_y: training labels, ``[N]``.
        test_x: test features, ``[M, ...]`` with the same feature size as ``train_x``.
        test_y: test labels, ``[M]``.

    Returns:
        The fraction of test points whose nearest training point has the same label.

    Reference: ALAE paper section 6.1 (representation evaluation on MNIST).
    """
    train_x, test_x = _flatten(train_x), _flatten(test_x)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    train_sq = np.einsum("nd,nd->n", train_x, train_x)
    batch = max(1, (1 << 23) // max(1, len(train_x)))
    correct = 0
    for start in range(0, len(test_x), batch):
        block = test_x[start : start + batch]
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; |a|^2 is constant per test row, so it cannot
        # change the argmin and is left out.
        dist = train_sq[None, :] - 2.0 * block @ train_x.T
        nearest = np.argmin(dist, axis=1)
        correct += int(np.sum(train_y[nearest] == test_y[start : start + batch]))
    return correct / len(test_x)


def linear_svm_accuracy(train_x, train_y, test_x, test_y, cs=(0.02, 0.1), max_iter=5000, seed=0):
    """Test accuracy of a linear SVM for each regularisation constant C.

    Follows the paper's reference: ``LinearSVC(C=c, max_iter=max_iter)`` on the raw features,
    with no feature scaling, so the scores depend on the scale of the representation just as
    the reference's did. scikit-learn's ``dual="auto"`` may pick the primal solver where the
    reference ran the dual one; both solve the same problem. Convergence warnings are silenced
    and reported per C in the result instead.

    Args:
        train_x: training features, ``[N, ...]`` (flattened to ``[N, D]``).
        train_y: training labels, ``[N]``.
        test_x: test features, ``[M, ...]``.
        test_y: test labels, ``[M]``.
        cs: the values of C to try.
        max_iter: iteration limit of liblinear.
        seed: ``random_state`` of liblinear's coordinate descent.

    Returns:
        ``{"best": float, "by_c": {str(c): float}, "converged": {str(c): bool}}``; "best" is
        the highest test accuracy over ``cs``, as the paper reports it.

    Reference: ALAE paper section 6.1 (representation evaluation on MNIST).
    """
    train_x, test_x = _flatten(train_x), _flatten(test_x)
    by_c, converged = {}, {}
    for c in cs:
        svm = LinearSVC(C=c, max_iter=max_iter, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm.fit(train_x, train_y)
        # liblinear warns exactly when it stops at the iteration limit.
        converged[str(c)] = bool(svm.n_iter_ < max_iter)
        by_c[str(c)] = float(svm.score(test_x, test_y))
    return {"best": max(by_c.values()), "by_c": by_c, "converged": converged}


def representation_scores(train_x, train_y, test_x, test_y, **svm_kwargs):
    """Scores one feature set with 1-NN and the linear SVM, as the paper's MNIST table does.

    Args:
        train_x: training features, ``[N, ...]`` (flattened to ``[N, D]``).
        train_y: training labels, ``[N]``.
        test_x: test features, ``[M, ...]``.
        test_y: test labels, ``[M]``.
        **svm_kwargs: forwarded to ``linear_svm_accuracy`` (``cs``, ``max_iter``, ``seed``).

    Returns:
        ``{"knn1": float, "svm": float, "svm_by_c": {str(c): float},
        "svm_converged": {str(c): bool}}`` where "svm" is the best accuracy over C.

    Reference: ALAE paper section 6.1 (representation evaluation on MNIST).
    """
    train_x, test_x = _flatten(train_x), _flatten(test_x)
    svm = linear_svm_accuracy(train_x, train_y, test_x, test_y, **svm_kwargs)
    return {
        "knn1": nearest_neighbour_accuracy(train_x, train_y, test_x, test_y),
        "svm": svm["best"],
        "svm_by_c": svm["by_c"],
        "svm_converged": svm["converged"],
    }


def pca_features(train_x, test_x, n_components=50, seed=0):
    """Projects both splits on the principal components of the training split.

    A linear baseline for the 50-D encoder features: same dimension, no learning beyond the
    training covariance. The test split never influences the projection.

    Args:
        train_x: training data, ``[N, ...]`` (flattened to ``[N, D]``).
        test_x: test data, ``[M, ...]``.
        n_components: number of components kept.
        seed: ``random_state`` of the (possibly randomised) SVD.

    Returns:
        ``(train_features [N, n_components], test_features [M, n_components])``.
    """
    pca = PCA(n_components=n_components, random_state=seed)
    return pca.fit_transform(_flatten(train_x)), pca.transform(_flatten(test_x))


def _digit_batch(images):
    """Returns float images as float32 ``[N, 28, 28, 1]`` clipped to [0, 1].

    Generators overshoot (the MLP generator's output is linear: podgorskiy/ALAE branch
    mnist_ref, net.py), and clipping is what saving them as an image would do. Integer pixels
    are refused rather than guessed at: uint8 digits clipped to [0, 1] would silently become
    binary images.
    """
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"expected float pixels in [0, 1], got dtype {images.dtype}")
    return np.clip(images.astype(np.float32).reshape((-1, *DIGIT_SHAPE)), 0.0, 1.0)


def build_digit_classifier():
    """conv-pool-conv-pool-dense CNN, 28x28x1 -> 10 class probabilities (about 96k weights).

    Shifts of up to 5% (1.4 px) and dropout regularise it: with only 8k training digits the
    plain network stops near 96% test accuracy; with them it passes 97%.
    """
    return keras.Sequential(
        [
            keras.Input(shape=DIGIT_SHAPE),
            keras.layers.RandomTranslation(0.05, 0.05, fill_mode="constant", name="shift"),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv1"),  # [N, 26, 26, 32]
            keras.layers.MaxPooling2D(2, name="pool1"),  # [N, 13, 13, 32]
            keras.layers.Conv2D(64, 3, activation="relu", name="conv2"),  # [N, 11, 11, 64]
            keras.layers.MaxPooling2D(2, name="pool2"),  # [N, 5, 5, 64]
            keras.layers.Flatten(name="flatten"),  # [N, 1600]
            keras.layers.Dropout(0.3, name="dropout1"),
            keras.layers.Dense(48, activation="relu", name="dense"),
            keras.layers.Dropout(0.3, name="dropout2"),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="digit_classifier",
    )


def train_digit_classifier(
    images, labels, *, epochs=6, batch_size=64, learning_rate=3e-3, seed=0, verbose=0
):
    """Trains the small CNN that judges generated and reconstructed digits.

    Adam with a learning rate decayed to zero along a cosine over the whole run. Seeds Python,
    numpy and TensorFlow with ``keras.utils.set_random_seed(seed)`` first, so the initial
    weights, the shifts, the dropout masks and the batch order, and therefore the trained
    model, repeat. On the embedded MNIST split the defaults give about 97.8% test accuracy.

    Args:
        images: float training digits in [0, 1], ``[N, 28, 28, 1]`` or ``[N, 28, 28]``.
        labels: integer class labels in 0..9, ``[N]``.
        epochs: passes over the training data.
        batch_size: images per Adam step.
        learning_rate: the initial learning rate of the cosine decay.
        seed: the global random seed set before the model is built.
        verbose: forwarded to ``Model.fit``.

    Returns:
        The trained ``keras.Model``, mapping ``[N, 28, 28, 1]`` to softmax probabilities
        ``[N, 10]``.
    """
    images = _digit_batch(images)
    keras.utils.set_random_seed(seed)
    model = build_digit_classifier()
    steps = epochs * -(-len(images) // batch_size)  # ceil: fit runs a last partial batch
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        images,
        np.asarray(labels, dtype=np.int32),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=verbose,
    )
    return model


def _predict_classes(classifier, images):
    """Returns ``(predicted class [N], max probability [N], number of classes)``."""
    probs = classifier.predict(_digit_batch(images), batch_size=256, verbose=0)
    return np.argmax(probs, axis=-1), np.max(probs, axis=-1), probs.shape[-1]


def classifier_scores(classifier, generated, originals=None, reconstructions=None, threshold=0.9):
    """Scores generated (and optionally reconstructed) digits with a trained digit classifier.

    Args:
        classifier: a model mapping ``[N, 28, 28, 1]`` images in [0, 1] to class
            probabilities, such as the one ``train_digit_classifier`` returns.
        generated: float generated digits, ``[N, 28, 28, 1]`` or ``[N, 28, 28]``; clipped to
            [0, 1] first.
        originals: optional float real digits ``x``, same layout.
        reconstructions: optional float ``G(E(x))`` of ``originals``, in the same order.
        threshold: a generation counts as confident when its top probability exceeds it.

    Returns:
        ``{"confident_fraction": float, "class_histogram": [10 ints]}``, plus
        ``"label_agreement"`` (the fraction of ``x`` whose predicted class equals that of
        ``G(E(x))``) when ``originals`` and ``reconstructions`` are both given.
    """
    if (originals is None) != (reconstructions is None):
        raise ValueError("originals and reconstructions must be given together")
    classes, max_prob, n_classes = _predict_classes(classifier, generated)
    scores = {
        "confident_fraction": float(np.mean(max_prob > threshold)),
        "class_histogram": np.bincount(classes, minlength=n_classes).tolist(),
    }
    if originals is not None:
        if np.shape(originals) != np.shape(reconstructions):
            raise ValueError(
                f"originals {np.shape(originals)} and reconstructions "
                f"{np.shape(reconstructions)} differ in shape"
            )
        original_classes, _, _ = _predict_classes(classifier, originals)
        reconstructed_classes, _, _ = _predict_classes(classifier, reconstructions)
        scores["label_agreement"] = float(np.mean(original_classes == reconstructed_classes))
    return scores
