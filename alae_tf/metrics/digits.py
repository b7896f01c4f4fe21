"""The paper's MNIST protocol on a trained model (section 6.1), on the embedded digits.

Held-out split: 2,004 digits; training split: the 7,996 others (or a seeded subset of them).
- representation: 1-NN and linear-SVM accuracy of the 50-D code w = E(x) ("short") and of the
  1,024-D last hidden layer of an MLP encoder ("long"), each for the EMA encoder (``/ema``) and
  the raw training encoder (``/raw``, the one the reference evaluates), with raw pixels and
  PCA-50 as baselines;
- reconstruction: mean squared error of G(E(x)) in [0, 1] pixel units, on the 28 px digit area;
- sample quality: the digit classifier (``representation.train_digit_classifier``, trained on
  all training digits) scores generated digits and checks that x and G(E(x)) get one label.
Reconstructions and samples come from the EMA networks, without truncation. The scoring itself
is ``alae_tf.metrics.representation``'s, on NumPy arrays; this module feeds it a model.
"""

import contextlib
import dataclasses
import os

import numpy as np

from alae_tf.errors import MetricError
from alae_tf.images import PixelRange

DIGIT_SIDE = 28
# The sample-quality draws of z: stateless, from (seed, this stream).
_SAMPLE_STREAM = 7


def is_mnist(preset):
    """True for a preset of 28 or 32 px grey images (32 px pads the 28 px digits)."""
    return preset.channels == 1 and preset.resolution in (DIGIT_SIDE, 32)


def check_mnist(preset):
    """Raises ``MetricError`` unless ``preset`` makes images the digit protocol can score."""
    if not is_mnist(preset):
        raise MetricError(f"the digit protocol scores MNIST models (28 or 32 px, 1 channel); "
                          f"{preset.name!r} makes {preset.resolution} px images with "
                          f"{preset.channels} channels")


def _pad(preset):
    return (preset.resolution - DIGIT_SIDE) // 2


def to_model_range(digits_uint8, preset):
    """uint8 digits [N, 28, 28] -> float32 [N, R, R, 1] in the model's range, zero-padded."""
    x = digits_uint8[..., None]
    pad = _pad(preset)
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return PixelRange.of(preset).from_uint8(x)


def to_digit_units(images, preset):
    """Model outputs [N, R, R, 1] -> [N, 28, 28, 1] in [0, 1] units (the digit area), not
    clipped: the reconstruction error is the generator's own."""
    pad = _pad(preset)
    if pad:
        images = images[:, pad:-pad, pad:-pad]
    return PixelRange.of(preset).to_unit(images, clip=False)


def batched(fn, x, batch=500):
    """``fn`` applied to ``x`` in batches, as one NumPy array."""
    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


def codes(model, x, use_ema):
    """w = E(x) in batches, from the EMA or the raw encoder."""
    return batched(lambda batch: model.encode(batch, use_ema), x)


@dataclasses.dataclass(frozen=True)
class DigitSplits:
    """The embedded MNIST splits: uint8 digits, labels, and the digits in a model's range.

    Args:
        train_uint8: training digits [N, 28, 28].
        train_labels: [N].
        test_uint8: held-out digits [M, 28, 28].
        test_labels: [M].
        train: ``train_uint8`` in the model's range, [N, R, R, 1].
        test: ``test_uint8`` in the model's range, [M, R, R, 1].
    """

    train_uint8: np.ndarray
    train_labels: np.ndarray
    test_uint8: np.ndarray
    test_labels: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @classmethod
    def load(cls, preset, max_train=0, seed=0):
        """The splits for ``preset``'s model; ``max_train`` > 0 keeps a seeded random subset of
        that many training digits (the embedded split is ordered by class)."""
        from alae_tf.data import load_embedded_mnist

        check_mnist(preset)
        x_train, y_train = load_embedded_mnist("train")
        x_test, y_test = load_embedded_mnist("test")
        if max_train:
            keep = np.sort(np.random.default_rng(seed).permutation(len(y_train))[:max_train])
            x_train, y_train = x_train[keep], y_train[keep]
        return cls(x_train, y_train, x_test, y_test, to_model_range(x_train, preset),
                   to_model_range(x_test, preset))

    def pixels(self):
        """(train, test) raw pixels as float64 [N, 784] in [0, 1]: the baseline features."""
        return (self.train_uint8.reshape(len(self.train_uint8), -1) / 255.0,
                self.test_uint8.reshape(len(self.test_uint8), -1) / 255.0)

    def test_units(self):
        """The held-out digits in [0, 1], [M, 28, 28, 1]."""
        return PixelRange().from_uint8(self.test_uint8[..., None])


# Bump when the classifier's architecture, training or data change: cached weights of an
# older version are then never read.
_CLASSIFIER_VERSION = 1


def classifier_cache_path(epochs, seed):
    """Where ``train_classifier`` keeps the classifier trained with these settings (under
    ``alae_tf.cache.cache_dir()``; one file per settings, Keras and TensorFlow version)."""
    import keras
    import tensorflow as tf

    from alae_tf.cache import cache_dir

    name = (f"v{_CLASSIFIER_VERSION}_epochs{int(epochs)}_seed{int(seed)}_keras{keras.__version__}"
            f"_tf{tf.__version__}.weights.h5")
    return cache_dir() / "digit_classifier" / name


def _cached_classifier(path):
    """The classifier whose weights ``path`` holds, or None (no file, or an unreadable one)."""
    from alae_tf.metrics import representation

    if not path.is_file():
        return None
    classifier = representation.build_digit_classifier()
    try:
        classifier.load_weights(str(path))
    except Exception:  # noqa: BLE001 (a damaged or foreign cache file: train again)
        return None
    return classifier


def _cache_classifier(classifier, path, out):
    # Written under a temporary name and renamed: a reader sees the whole file or none. Only a
    # cache: a failed write costs one training next time.
    tmp = path.with_name(f".{os.getpid()}.{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        classifier.save_weights(str(tmp))
        os.replace(tmp, path)
    except OSError as e:
        out(f"(could not cache the digit classifier in {path.parent}: {e.strerror or e})")
        with contextlib.suppress(OSError):
            tmp.unlink()


def train_classifier(epochs=6, seed=0, out=print):
    """The sample-quality classifier, trained on all 7,996 training digits, once per settings:
    its weights are cached (``classifier_cache_path``) and read back on the next call.

    Seeds Keras's global generators with ``seed`` before it returns, trained or read, so what
    is drawn after it (the StyleALAE's noise) repeats either way.

    Returns:
        (the Keras classifier, its accuracy on the 2,004 held-out digits).
    """
    import keras

    from alae_tf.data import load_embedded_mnist
    from alae_tf.metrics import representation

    path = classifier_cache_path(epochs, seed)
    classifier = _cached_classifier(path)
    if classifier is None:
        out("training the digit classifier ...", flush=True)
        digits, labels = load_embedded_mnist("train")
        classifier = representation.train_digit_classifier(
            PixelRange().from_uint8(digits[..., None]), labels, epochs=epochs, seed=seed)
        _cache_classifier(classifier, path, out)
    else:
        out(f"digit classifier: read from the cache ({path})", flush=True)
    keras.utils.set_random_seed(seed)
    test, test_labels = load_embedded_mnist("test")
    predicted = classifier.predict(PixelRange().from_uint8(test[..., None]), verbose=0)
    return classifier, float(np.mean(np.argmax(predicted, axis=1) == test_labels))


def representation_scores(model, splits, seed=0, out=print):
    """The paper's representation table: {name: {"dim", "knn1", "svm", ...}} for w = E(x) and
    the MLP encoder's last hidden layer (EMA and raw encoder), pixels and PCA-50."""
    from alae_tf.metrics import representation
    from alae_tf.models.mlp.networks import MLPEncoder

    features = {}
    for which, use_ema in (("ema", True), ("raw", False)):
        features[f"w/{which}"] = (codes(model, splits.train, use_ema),
                                  codes(model, splits.test, use_ema))
        encoder = model.encoder_ema if use_ema else model.encoder
        if isinstance(encoder, MLPEncoder):  # the "long" features of the paper
            features[f"features/{which}"] = (batched(encoder.features, splits.train),
                                             batched(encoder.features, splits.test))
    raw = splits.pixels()
    features["pixels"] = raw
    features["pca50"] = representation.pca_features(*raw, n_components=50, seed=seed)
    table = {}
    for name, (train_f, test_f) in features.items():
        out(f"scoring {name} ({train_f.shape[1]}-D) ...", flush=True)
        scores = representation.representation_scores(
            train_f, splits.train_labels, test_f, splits.test_labels, seed=seed)
        table[name] = {"dim": int(train_f.shape[1]), **scores}
    return table


def code_scores(model, splits, use_ema, seed=0):
    """(1-NN, SVM) accuracy of w = E(x) from the EMA or the raw encoder."""
    from alae_tf.metrics import representation

    scores = representation.representation_scores(
        codes(model, splits.train, use_ema), splits.train_labels,
        codes(model, splits.test, use_ema), splits.test_labels, seed=seed)
    return scores["knn1"], scores["svm"]


def generation_scores(model, preset, splits, classifier, num_samples, seed=0):
    """Reconstruction MSE and the classifier's scores of samples and reconstructions (EMA
    networks; the reconstructions feed both, so they are made once).

    Returns:
        (MSE in [0, 1] units, ``representation.classifier_scores``'s dict).
    """
    import tensorflow as tf

    from alae_tf.metrics import representation

    reconstructions = to_digit_units(batched(model.reconstruct, splits.test), preset)
    originals = splits.test_units()
    mse = float(np.mean((reconstructions - originals) ** 2))
    z = tf.random.stateless_normal((num_samples, model.latent_dim), seed=(seed, _SAMPLE_STREAM))
    generated = to_digit_units(batched(model.generate, np.asarray(z)), preset)
    samples = representation.classifier_scores(
        classifier, generated, originals=originals, reconstructions=reconstructions)
    return mse, samples
