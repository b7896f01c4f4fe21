"""Frechet Inception Distance: streaming feature statistics, the distance, and the networks that
give the features.

FID (Heusel et al., NeurIPS 2017) compares the Gaussians fitted to the features of two image sets:
``||m1 - m2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``. The ALAE paper (section 6, Tables 3 and 5)
reports it for generations (50k images, no truncation) and for reconstructions (real images
against G(E(x)) of the same images), with the features of the 2015-12-05 Inception graph that
published FIDs use (reference code: metrics/fid.py, metrics/fid_rec.py).

Images enter every extractor as float ``[N, H, W, C]`` in [0, 1] (C = 1 or 3); each extractor
maps them to what its network expects.
"""

import numpy as np

from alae_tf.errors import MetricError

# The Inception graph of published FIDs, as TF-Hub serves it (needs a network).
INCEPTION_HUB_URL = "https://tfhub.dev/tensorflow/tfgan/eval/inception/1"
INCEPTION_SIZE = 299


class FeatureStatistics:
    """Mean and covariance of feature vectors, accumulated in float64 batch by batch.

    Each batch is merged with the pairwise update of Chan, Golub and LeVeque (1979), so the
    result equals the one-shot ``np.mean`` / ``np.cov`` of all features while memory stays at
    one ``[D, D]`` matrix whatever the number of images.
    """

    def __init__(self):
        self.count = 0
        self._mean = None
        self._scatter = None  # sum of (x - mean)(x - mean)^T over the features seen

    def update(self, features):
        """Adds a batch ``[N, D]`` of features."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            x = x.reshape(len(x), -1)
        n = len(x)
        if n == 0:
            return
        mean = x.mean(axis=0)
        centred = x - mean
        scatter = centred.T @ centred
        if self.count == 0:
            self.count, self._mean, self._scatter = n, mean, scatter
            return
        if len(mean) != len(self._mean):
            raise ValueError(f"features of size {len(mean)} after {len(self._mean)}")
        total = self.count + n
        delta = mean - self._mean
        self._scatter += scatter + np.outer(delta, delta) * (self.count * n / total)
        self._mean += delta * (n / total)
        self.count = total

    @property
    def mean(self):
        return self._mean

    @property
    def covariance(self):
        """The unbiased covariance (divided by N - 1), as ``np.cov``."""
        if self.count < 2:
            raise MetricError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        return self._scatter / (self.count - 1)


def frechet_distance(mean1, cov1, mean2, cov2):
    """The Frechet distance between N(mean1, cov1) and N(mean2, cov2):
    ``|m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr(sqrt(C1 C2))``.

    The trace of the root is taken from symmetric eigendecompositions, not from a general
    matrix square root of ``C1 C2`` (scipy's ``sqrtm``, as the reference implementations do):
    with ``R = sqrt(C1)``, ``C1 C2`` is similar to the symmetric ``R C2 R``, so
    ``tr(sqrt(C1 C2))`` is the sum of the square roots of that matrix's eigenvalues. The
    result is the same (to about 1e-6 relative; ``tests/test_fid.py`` compares the two), about
    five times faster at 2,048 features (4.4 s instead of 24 s on one core), and real by
    construction; a singular covariance (fewer images than features) needs no guard, the
    eigenvalues that rounding makes slightly negative count as zero.

    Raises:
        MetricError: the inputs are not finite.
    """
    mean1 = np.atleast_1d(mean1).astype(np.float64)
    mean2 = np.atleast_1d(mean2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    for name, value in (("mean", mean1), ("mean", mean2), ("covariance", cov1),
                        ("covariance", cov2)):
        if not np.isfinite(value).all():
            raise MetricError(f"a feature {name} is not finite (NaN or infinity): the feature "
                              "network gave non-finite features")
    diff = mean1 - mean2
    values, vectors = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root1 @ cov2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_root)


def statistics_distance(a, b):
    """FID between two ``FeatureStatistics``."""
    return frechet_distance(a.mean, a.covariance, b.mean, b.covariance)


class FeatureExtractor:
    """A network that maps images to feature vectors for FID.

    Args:
        fn: callable, float32 ``[N, size, size, channels]`` in ``input_range`` -> features.
        name: what the numbers are called in metrics.json and the printed table.
        size: the side the images are resized to (bilinear), or None to keep theirs.
        crop: the side of a central crop taken first when images are larger (32 px MNIST
            models pad the 28 px digits), or None.
        channels: 3 to repeat grey images into RGB, 1 to take the luma of RGB ones, None to
            keep them.
        input_range: the pixel range the network expects.
        comparable: True when the numbers compare with published FIDs.
        batch_size: images per call.
    """

    def __init__(self, fn, name, size=None, channels=None, input_range=(0.0, 1.0),
                 comparable=False, batch_size=64, crop=None):
        self.fn, self.name, self.size, self.channels = fn, name, size, channels
        self.crop = crop
        self.input_range, self.comparable, self.batch_size = input_range, comparable, batch_size

    def prepare(self, images):
        """[N, H, W, C] in [0, 1] -> the network's input (tf.Tensor)."""
        import tensorflow as tf

        x = tf.convert_to_tensor(np.asarray(images, np.float32))
        if self.crop is not None and x.shape[1] > self.crop:
            x = tf.image.resize_with_crop_or_pad(x, self.crop, self.crop)
        if self.channels == 3 and x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        elif self.channels == 1 and x.shape[-1] == 3:
            x = tf.image.rgb_to_grayscale(x)
        if self.size is not None and tuple(x.shape[1:3]) != (self.size, self.size):
            x = tf.image.resize(x, (self.size, self.size), method="bilinear")
        low, high = self.input_range
        return low + tf.clip_by_value(x, 0.0, 1.0) * (high - low)

    def __call__(self, images):
        """Features ``[N, D]`` (float64) of images in [0, 1], batch by batch."""
        out = []
        for start in range(0, len(images), self.batch_size):
            features = np.asarray(self.fn(self.prepare(images[start:start + self.batch_size])))
            out.append(features.reshape(len(features), -1).astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, 0))


def keras_extractor(path_or_model, input_range=(-1.0, 1.0), name=None, batch_size=64):
    """Features from any Keras model: its output (flattened) on images resized to its input.

    ``input_range`` defaults to [-1, 1], what ``keras.applications.inception_v3`` expects.
    """
    import keras

    model = path_or_model
    if isinstance(path_or_model, str):
        try:
            model = keras.saving.load_model(path_or_model, compile=False)
        except (OSError, ValueError) as e:
            raise MetricError(f"cannot load the feature network {path_or_model!r} ({e})") from None
    shape = model.input_shape
    if len(shape) != 4 or shape[1] != shape[2]:
        raise MetricError(f"the feature network takes {shape}; FID needs one that takes square "
                          "images [N, S, S, C]")
    return FeatureExtractor(lambda x: model(x, training=False),
                            name or f"FID ({getattr(model, 'name', 'keras model')})",
                            size=shape[1], channels=shape[3], input_range=input_range,
                            batch_size=batch_size)


def inception_graph_extractor(path, batch_size=64):
    """The FID Inception network from a frozen GraphDef file: ``classify_image_graph_def.pb``
    of the 2015-12-05 Inception release, the graph of published FIDs (Heusel et al.'s code).

    Images are fed to its ``ExpandDims:0`` tensor in [0, 255] (the graph resizes them to 299 px
    itself) and the 2048 ``pool_3:0`` features come out.
    """
    import tensorflow as tf

    try:
        with open(path, "rb") as f:
            graph_def = tf.compat.v1.GraphDef.FromString(f.read())
    except (OSError, ValueError) as e:
        raise MetricError(f"cannot read the Inception graph {path!r} ({e}); give "
                          "classify_image_graph_def.pb of the 2015-12-05 Inception") from None
    names = {node.name for node in graph_def.node}
    if not {"ExpandDims", "pool_3"} <= names:
        raise MetricError(f"{path!r} is not the FID Inception graph (no ExpandDims and pool_3 "
                          "nodes)")

    def imported(images):
        pool, = tf.graph_util.import_graph_def(
            graph_def, input_map={"ExpandDims:0": images}, return_elements=["pool_3:0"],
            name="inception")
        return pool

    fn = tf.compat.v1.wrap_function(
        imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])
    return FeatureExtractor(fn, "FID (Inception 2015-12-05)", size=None, channels=3,
                            input_range=(0.0, 255.0), comparable=True, batch_size=batch_size)


def inception_hub_extractor(url=INCEPTION_HUB_URL, batch_size=64):
    """The FID Inception network from TF-Hub (``tfgan/eval/inception/1``; needs a network or
    a local copy of the module at ``url``): 2048 pool_3 features of 299 px images in [-1, 1]."""
    try:
        import tensorflow_hub as hub

        module = hub.load(url)
    except Exception as e:  # hub raises many kinds: network, format, a missing module
        raise MetricError(f"cannot load the FID Inception network from {url} "
                          f"({type(e).__name__}); it needs a network, or a downloaded copy of "
                          "the module (its folder), or the frozen graph "
                          "classify_image_graph_def.pb") from None
    signature = module.signatures["default"]

    def run(images):
        return signature(images)["pool_3"]

    return FeatureExtractor(run, "FID (Inception 2015-12-05)", size=INCEPTION_SIZE,
                            channels=3, input_range=(-1.0, 1.0), comparable=True,
                            batch_size=batch_size)


def digit_extractor(classifier, batch_size=256, crop=None):
    """The 48 features of the project's digit classifier (``alae_tf.metrics.representation``) before
    its softmax layer, for MNIST models. The numbers it gives are a digits-FID: they rank MNIST
    models but do not compare with published (Inception) FIDs."""
    import keras

    features = keras.Model(classifier.inputs, classifier.get_layer("dense").output)
    return FeatureExtractor(lambda x: features(x, training=False), "digits-FID", size=28,
                            channels=1, input_range=(0.0, 1.0), comparable=False,
                            batch_size=batch_size, crop=crop)


def statistics_of(batches, extractor, count, progress=None):
    """``FeatureStatistics`` of the first ``count`` images drawn from ``batches`` (an iterable of
    [N, H, W, C] arrays in [0, 1]); ``progress(done)`` is called after each batch.

    Raises:
        MetricError: ``batches`` ran out before ``count`` images.
    """
    stats = FeatureStatistics()
    for images in batches:
        images = np.asarray(images)[:count - stats.count]
        stats.update(extractor(images))
        if progress is not None:
            progress(stats.count)
        if stats.count >= count:
            return stats
    raise MetricError(f"only {stats.count} images were available, {count} were asked for")
