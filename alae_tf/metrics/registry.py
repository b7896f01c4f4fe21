"""Metrics asked for by name: ``compute(names, model, preset, options)`` -> a JSON-able dict.

Each name is one function of the model (with the preset that built it, which gives the data
source, pixel range and PPL crop) and the ``MetricOptions``; it returns the keys it adds to
metrics.json. Names asked for together share their expensive parts: the digit splits and the
digit classifier (trained once, seeded), the reconstructions of the held-out digits, the FID
feature network and the PPL distance. ``metric_names()`` lists them:

- ``representation``, ``reconstruction_mse``, ``samples``: the paper's MNIST protocol
  (``alae_tf.metrics.digits``); ``MNIST_PROTOCOL`` holds the three.
- ``fid``: FID of generations and of reconstructions against the same real images in one pass
  (``alae_tf.metrics.generative``); ``fid_generations`` or ``fid_reconstructions`` alone.
- ``ppl``: perceptual path length in W, full and end; ``ppl_full`` or ``ppl_end`` alone.
- ``flops``: FLOPs of one image through each network, and of one training step per image
  (``alae_tf.metrics.flops``).

The metrics run in the order asked, on the model at its final level. This module imports
neither TensorFlow nor the metric modules until a metric runs.
"""

import dataclasses
import functools
from collections.abc import Callable

from alae_tf.errors import MetricError

MNIST_PROTOCOL = ("representation", "reconstruction_mse", "samples")


class OptionError(MetricError):
    """A ``MetricError`` about what one ``MetricOptions`` field names (a feature network file,
    LPIPS weights): an application can point at the setting that chose it.

    Args:
        message: the error's one line.
        option: the ``MetricOptions`` field, e.g. "fid_network".
    """

    def __init__(self, message, option):
        super().__init__(message)
        self.option = option


@dataclasses.dataclass(frozen=True)
class MetricOptions:
    """How the metrics are computed.

    Args:
        seed: seed of every draw (z, data order, subsets, the digit classifier).
        num_samples: generated digits the digit classifier scores.
        max_train: fit 1-NN/SVM on a seeded random subset of this many training digits
            (0: all 7,996).
        classifier_epochs: epochs of the digit classifier.
        fid_images: images per FID set (fewer when the data has fewer).
        fid_network: the FID feature network (``generative.feature_network``); None: digits
            for MNIST models, else inception-hub.
        fid_input_range: the pixel range a Keras feature network expects.
        ppl_samples: PPL path samples.
        ppl_distance: the PPL distance (``generative.path_distance``); None: digits for MNIST
            models, else pixels.
        dataset: the real images for FID (``alae_tf.data`` source name); None: the preset's.
        batch_size: images per batch for FID (PPL takes half as many pairs).
        out: where progress lines go (called as ``print``).
    """

    seed: int = 0
    num_samples: int = 2000
    max_train: int = 0
    classifier_epochs: int = 6
    fid_images: int = 50_000
    fid_network: str | None = None
    fid_input_range: tuple[float, float] = (-1.0, 1.0)
    ppl_samples: int = 50_000
    ppl_distance: str | None = None
    dataset: str | None = None
    batch_size: int = 64
    out: Callable = print


class _Evaluation:
    """One model scored under one set of options: the work its metrics share, made on first
    use."""

    def __init__(self, model, preset, options):
        self.model, self.preset, self.options = model, preset, options

    def _mnist_default(self, mnist, other):
        from alae_tf.metrics import digits

        return mnist if digits.is_mnist(self.preset) else other

    @functools.cached_property
    def splits(self):
        from alae_tf.metrics import digits

        return digits.DigitSplits.load(self.preset, self.options.max_train, self.options.seed)

    @functools.cached_property
    def classifier(self):
        """(digit classifier, its held-out accuracy)."""
        from alae_tf.metrics import digits

        return digits.train_classifier(self.options.classifier_epochs, self.options.seed,
                                       out=self.options.out)

    @functools.cached_property
    def digit_generations(self):
        """(reconstruction MSE, classifier scores): one set of reconstructions for both."""
        from alae_tf.metrics import digits

        classifier = self.classifier[0]  # trained (and seeded) before the model is sampled
        return digits.generation_scores(self.model, self.preset, self.splits, classifier,
                                        self.options.num_samples, seed=self.options.seed)

    @functools.cached_property
    def feature_network(self):
        from alae_tf.metrics import generative

        choice = self.options.fid_network or self._mnist_default("digits", "inception-hub")
        try:
            return generative.feature_network(choice, lambda: self.classifier[0],
                                              self.options.fid_input_range,
                                              self.options.batch_size)
        except MetricError as e:
            raise OptionError(str(e), "fid_network") from None

    @functools.cached_property
    def path_distance(self):
        from alae_tf.metrics import generative

        choice = self.options.ppl_distance or self._mnist_default("digits", "pixels")
        try:
            return generative.path_distance(choice, lambda: self.classifier[0])
        except MetricError as e:
            raise OptionError(str(e), "ppl_distance") from None

    def fid(self, sets):
        from alae_tf.metrics import generative

        options = self.options
        extractor = self.feature_network
        batches, count = generative.real_batches(self.preset, options.batch_size, options.seed,
                                                 dataset=options.dataset)
        return generative.fid_scores(
            self.model, self.preset.pixel_range, batches, extractor,
            min(options.fid_images, count), batch_size=options.batch_size, seed=options.seed,
            out=options.out, sets=sets)

    def ppl(self, samplings):
        from alae_tf.metrics import generative

        options, preset = self.options, self.preset
        distance, name = self.path_distance
        return generative.ppl_scores(
            self.model, preset.pixel_range, distance, name, options.ppl_samples,
            crop=preset.ppl_crop or generative.FACE_CROPS.get(preset.name),
            batch_size=max(1, options.batch_size // 2), seed=options.seed, out=options.out,
            samplings=samplings)


def _representation(run):
    from alae_tf.metrics import digits

    splits = run.splits
    return {"num_train": len(splits.train), "num_test": len(splits.test),
            "representation": digits.representation_scores(
                run.model, splits, seed=run.options.seed, out=run.options.out)}


def _reconstruction_mse(run):
    return {"reconstruction_mse": run.digit_generations[0]}


def _samples(run):
    samples = dict(run.digit_generations[1])
    samples["classifier_test_accuracy"] = run.classifier[1]
    samples["num_generated"] = run.options.num_samples
    return {"samples": samples}


def _flops(run):
    from alae_tf.metrics import flops

    forward = flops.forward_flops(run.model)
    return {"flops": {**forward,
                      "step_per_image": flops.step_flops(forward, run.preset.r1_interval)}}


_METRICS = {
    "representation": _representation,
    "reconstruction_mse": _reconstruction_mse,
    "samples": _samples,
    "fid": lambda run: run.fid(("generations", "reconstructions")),
    "fid_generations": lambda run: run.fid(("generations",)),
    "fid_reconstructions": lambda run: run.fid(("reconstructions",)),
    "ppl": lambda run: run.ppl(("full", "end")),
    "ppl_full": lambda run: run.ppl(("full",)),
    "ppl_end": lambda run: run.ppl(("end",)),
    "flops": _flops,
}


def metric_names():
    """The names ``compute`` knows, in a fixed order."""
    return tuple(_METRICS)


def compute(names, model, preset, options=None):
    """Computes the metrics ``names`` of ``model`` and returns their keys in one dict.

    Args:
        names: a metric name or a sequence of them (``metric_names()``), computed in order.
        model: a trained ALAE or StyleALAE at its final level of detail.
        preset: the preset that built ``model`` (``alae_tf.models.presets``).
        options: a ``MetricOptions`` (default: its defaults).

    Returns:
        {key: JSON-able value}: the keys each metric adds, in the order asked.

    Raises:
        MetricError: an unknown name, a model below full resolution, or a metric that cannot
            be computed as asked (a non-MNIST model for the MNIST protocol, too few images).
        OptionError: the feature network or PPL distance the options name is unusable.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [name for name in names if name not in _METRICS]
    if unknown:
        raise MetricError(f"unknown metric {unknown[0]!r}; known: {', '.join(_METRICS)}")
    if model.level != model.max_level:
        raise MetricError(f"the model is at level of detail {model.level} of {model.max_level} "
                          f"({model.level_resolution} px); the metrics score full-resolution "
                          "models: train longer")
    run = _Evaluation(model, preset, options or MetricOptions())
    results = {}
    for name in names:
        results.update(_METRICS[name](run))
    return results
