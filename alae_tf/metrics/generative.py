"""The paper's image metrics of a trained ALAE: FID of generations, FID of reconstructions, and
perceptual path length in W (paper section 6; reference code: metrics/fid.py, fid_rec.py,
ppl.py).

- Generations: z ~ N(0, I), no truncation, the EMA networks. A StyleALAE mixes styles as the
  reference's sampler for FID does: with the model's style-mixing probability a batch takes a
  second w from a crossover slot drawn uniformly in [1, 2 * (level + 1)] on (one draw per batch).
- Reconstructions: real images x of the training split against G(E(x)) of the same images.
- PPL: ``alae_tf.metrics.ppl`` on the EMA mapping and generator, the two images of a pair
  sharing noise.

Images reach the feature networks in [0, 1], whatever the model's pixel range. The feature
network and the PPL distance are chosen by name (``feature_network``, ``path_distance``), and
``real_batches`` gives the real images; ``alae_tf.metrics.registry`` puts these together.
"""

import dataclasses
import time

import numpy as np

from alae_tf.errors import MetricError
from alae_tf.images import PixelRange
from alae_tf.metrics import fid, ppl
from alae_tf.progress import format_duration

# The reference judges face models on a crop of the face (metrics/ppl.py).
FACE_CROPS = {"ffhq1024": "face", "celeba_hq256": "face", "celeba128": "celeba"}
FID_SETS = ("generations", "reconstructions")
FEATURE_NETWORKS = "digits, inception-hub[:PATH], a .pb, or a .keras/.h5 file"
PATH_DISTANCES = "lpips:FILE.npz, digits or pixels"


class Progress:
    """Prints "LABEL: k/n images, 12s, about 40s left" at most every ``every`` seconds and at
    the end (``finish`` when the work stops short of ``total``)."""

    def __init__(self, label, total, every=10.0, clock=time.monotonic, out=print, unit="images"):
        self.label, self.total, self.every, self.clock, self.out = label, total, every, clock, out
        self.unit = unit
        self.start = clock()
        self.last = self.start

    def finish(self, done):
        """The last line of work that ended at ``done`` of ``total``."""
        self.total = done
        self(done)

    def __call__(self, done):
        now = self.clock()
        if done < self.total and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed * (self.total - done) / done if done else float("nan")
        tail = f", about {format_duration(left, coarse=True)} left" if done < self.total else ""
        self.out(f"{self.label}: {done:,}/{self.total:,} {self.unit}, "
                 f"{format_duration(elapsed)}{tail}",
                 flush=True)


def to_unit_range(images, pixel_range):
    """Model images in ``pixel_range`` -> float32 numpy in [0, 1] (clipped, as a saved image)."""
    return PixelRange.of(pixel_range).to_unit(np.asarray(images, np.float32))


def _mapping(model):
    return model.inference_network("mapping_f")


def sample_styles(model, z, mixing_z=None, draws=None):
    """The EMA mapping's w for ``z`` ([N, latent]), mixed with ``mixing_z``'s w as described in
    the module docstring when ``draws`` = (u_mix, u_crossover) in [0, 1) says so."""
    import tensorflow as tf

    w = _mapping(model)(tf.convert_to_tensor(z))
    prob = getattr(model, "style_mixing_prob", 0.0)
    if mixing_z is None or draws is None or prob <= 0 or draws[0] >= prob:
        return w
    w_mix = _mapping(model)(tf.convert_to_tensor(mixing_z))
    crossover = 1 + int(draws[1] * 2 * (model.level + 1))
    slots = tf.range(tf.shape(w)[1])[None, :, None]
    return tf.where(slots < crossover, w, w_mix)


def generated_batches(model, pixel_range, count, batch_size=64, seed=0):
    """Yields batches of generated images in [0, 1] until ``count``."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < count:
        n = min(batch_size, count - done)
        z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
        mixing_z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
        w = sample_styles(model, z, mixing_z, rng.uniform(size=2))
        # Seeds are drawn only for a model with noise, so an MLP-ALAE's stream of z is as it was.
        seeds = rng.integers(0, 2**31 - 1, size=n) if hasattr(model, "noise_shapes") else None
        noise = None if seeds is None else noise_for(model, seeds)
        yield to_unit_range(model.decode(w, noise=noise), pixel_range)
        done += n


def noise_for(model, seeds):
    """A StyleALAE's noise maps drawn from one seed per image (None for MLP-ALAE)."""
    if not hasattr(model, "noise_shapes"):
        return None
    from alae_tf.models.style.model import noise_from_seeds

    return noise_from_seeds(seeds, model.noise_shapes())


def fid_scores(model, pixel_range, real_batches, extractor, num_images, batch_size=64, seed=0,
               out=print, sets=FID_SETS):
    """FID of generations and of reconstructions against the same real images.

    Args:
        model: a trained ALAE at its final level.
        pixel_range: the model's pixel range.
        real_batches: iterable of real image batches in ``pixel_range`` (the training split).
        extractor: an ``alae_tf.metrics.fid.FeatureExtractor``.
        num_images: images per set; fewer when the real images run out (the counts used are
            returned).
        out: where progress lines go.
        sets: which of ``FID_SETS`` to score.

    Returns:
        {"fid_generations", "fid_reconstructions", "fid_real_images",
        "fid_generated_images", "fid_features"}, without the keys of a set not asked for.
    """
    real, reconstructed = fid.FeatureStatistics(), fid.FeatureStatistics()
    with_reconstructions = "reconstructions" in sets
    progress = Progress(f"{extractor.name} of real images"
                        f"{' and reconstructions' if with_reconstructions else ''}", num_images,
                        out=out)
    for batch in real_batches:
        batch = np.asarray(batch)[:num_images - real.count]
        real.update(extractor(to_unit_range(batch, pixel_range)))
        if with_reconstructions:
            reconstructed.update(extractor(to_unit_range(model.reconstruct(batch),
                                                         pixel_range)))
        progress(real.count)
        if real.count >= num_images:
            break
    if real.count < 2:
        raise MetricError(f"FID needs at least 2 real images, the data gave {real.count}")
    if real.count < num_images:
        progress.finish(real.count)
    if real.count < num_images:
        out(f"{extractor.name}: the data has {real.count:,} images; every set uses that many",
            flush=True)
    count = real.count
    scores = {}
    if "generations" in sets:
        generated = fid.statistics_of(
            generated_batches(model, pixel_range, count, batch_size, seed), extractor, count,
            Progress(f"{extractor.name} of generations", count, out=out))
        scores["fid_generations"] = fid.statistics_distance(real, generated)
    if with_reconstructions:
        scores["fid_reconstructions"] = fid.statistics_distance(real, reconstructed)
    scores["fid_real_images"] = count
    if "generations" in sets:
        scores["fid_generated_images"] = generated.count
    scores["fid_features"] = extractor.name
    return scores


def ppl_scores(model, pixel_range, distance, distance_name, num_samples, crop=None,
               epsilon=1e-4, batch_size=32, seed=0, out=print, samplings=ppl.SAMPLINGS):
    """PPL in W, "full" and "end", of the EMA networks.

    Args:
        distance: (images_a, images_b) in [0, 1] -> [N] distances.
        distance_name: what the numbers are called.
        crop: None, "face" or "celeba" (``alae_tf.metrics.ppl.face_crop``).
        samplings: which of ``alae_tf.metrics.ppl.SAMPLINGS`` to measure.

    Returns:
        {"ppl_full", "ppl_end", "ppl_samples", "ppl_distance", "ppl_epsilon"}, without the
        key of a sampling not asked for.
    """
    import tensorflow as tf

    def mapping(z):
        return _mapping(model)(tf.convert_to_tensor(z)).numpy()

    def synthesize(w, seeds):
        images = to_unit_range(model.decode(tf.constant(w, tf.float32),
                                            noise=noise_for(model, seeds)), pixel_range)
        if crop:
            images = ppl.face_crop(images, celeba_style=crop == "celeba")
        return ppl.downsample_to(images)

    scores = {"ppl_samples": num_samples, "ppl_distance": distance_name, "ppl_epsilon": epsilon}
    for sampling in samplings:
        scores[f"ppl_{sampling}"] = ppl.perceptual_path_length(
            mapping, synthesize, distance, num_samples, model.latent_dim, epsilon=epsilon,
            sampling=sampling, batch_size=batch_size, seed=seed,
            progress=Progress(f"PPL ({sampling}, {distance_name})", num_samples, out=out,
                              unit="samples"))
    return scores


def is_feature_network(choice):
    """True when ``choice`` names a feature network ``feature_network`` knows: "digits",
    "inception-hub", "inception-hub:PATH", a ``.pb`` file or a ``.keras``/``.h5`` model."""
    return (choice in ("digits", "inception-hub") or choice.startswith("inception-hub:")
            or choice.endswith((".pb", ".keras", ".h5")))


def feature_network(choice, digit_classifier, input_range=(-1.0, 1.0), batch_size=64):
    """The FID feature network ``choice`` names (``is_feature_network``).

    Args:
        choice: "digits" (the digit classifier: a digits-FID, not comparable with published
            FIDs), "inception-hub" or "inception-hub:PATH" (TF-Hub's 2015-12-05 Inception),
            a ``classify_image_graph_def.pb``, or a ``.keras``/``.h5`` model.
        digit_classifier: a callable giving the trained digit classifier (called only for
            "digits").
        input_range: the pixel range a Keras feature network expects.
        batch_size: images per call of the network.

    Returns:
        An ``alae_tf.metrics.fid.FeatureExtractor``.
    """
    if not is_feature_network(choice):
        raise MetricError(f"unknown feature network {choice!r}: give {FEATURE_NETWORKS}")
    if choice == "digits":
        return fid.digit_extractor(digit_classifier(), crop=28)
    if choice.startswith("inception-hub"):
        url = choice.partition(":")[2] or fid.INCEPTION_HUB_URL
        return fid.inception_hub_extractor(url, batch_size=batch_size)
    if choice.endswith(".pb"):
        return fid.inception_graph_extractor(choice, batch_size=batch_size)
    return fid.keras_extractor(choice, input_range, batch_size=batch_size)


def is_path_distance(choice):
    """True when ``choice`` names a PPL distance ``path_distance`` knows."""
    return choice.startswith("lpips:") or choice in ("digits", "pixels")


def path_distance(choice, digit_classifier):
    """(distance, name) for PPL that ``choice`` names: "lpips:FILE.npz" (LPIPS VGG16, the
    published distance), "digits" or "pixels" (stand-ins, not comparable with published PPLs).
    ``digit_classifier()`` gives the trained digit classifier (called only for "digits")."""
    from alae_tf.metrics.lpips import LPIPS

    if not is_path_distance(choice):
        raise MetricError(f"unknown PPL distance {choice!r}: give {PATH_DISTANCES}")
    if choice.startswith("lpips:"):
        return LPIPS.from_file(choice.partition(":")[2]), "LPIPS (VGG16)"
    if choice == "digits":
        return (ppl.feature_distance(fid.digit_extractor(digit_classifier(), crop=28)),
                "digit features (not comparable with published PPLs)")
    return ppl.squared_pixel_distance, "squared pixels (not comparable with published PPLs)"


def real_batches(preset, batch_size, seed, dataset=None):
    """(batches, count): the training split of ``dataset`` (default: the preset's) in the
    model's pixel range, each image once, in a seeded order (a count below the split's size
    then samples every class: the embedded MNIST split is ordered by class), and its size."""
    from alae_tf.data import make_dataset

    if dataset is not None:
        preset = dataclasses.replace(preset, dataset=dataset)
    batches, count = make_dataset(
        preset.dataset, resolution=preset.resolution, channels=preset.channels,
        batch_size=batch_size, pixel_range=preset.pixel_range, shuffle=True, seed=seed,
        repeat=False, drop_remainder=False, max_image_pixels=preset.max_image_pixels)
    return (batch.numpy() for batch in batches), count
