"""The paper's image metrics of a trained ALAE: FID of generations, FID of reconstructions, and
perceptual path length in W (paper section 6; reference code: metrics/fid.py, fid_rec.py,
ppl.py).

- Generations: z ~ N(0, I), no truncation, the EMA networks. A StyleALAE mixes styles as the
  reference's sampler for FID does: with the model's style-mixing probability a batch takes a
  second w from a crossover slot drawn uniformly in [1, 2 * (level + 1)] on (one draw per batch).
- Reconstructions: real images x of the training split against G(E(x)) of the same images.
- PPL: ``alae_tf.metrics.ppl`` on the EMA mapping and generator, the two images of a pair
  sharing noise.

Images reach the feature networks in [0, 1], whatever the model's pixel range.
"""

import time

import numpy as np

from alae_tf.metrics import fid, ppl
from alae_tf.progress import format_duration

# The reference judges face models on a crop of the face (metrics/ppl.py).
FACE_CROPS = {"ffhq1024": "face", "celeba_hq256": "face", "celeba128": "celeba"}


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
    low, high = pixel_range
    return np.clip((np.asarray(images, np.float32) - low) / (high - low), 0.0, 1.0)


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
               out=print):
    """FID of generations and of reconstructions against the same real images.

    Args:
        model: a trained ALAE at its final level.
        pixel_range: the model's pixel range.
        real_batches: iterable of real image batches in ``pixel_range`` (the training split).
        extractor: an ``alae_tf.metrics.fid.FeatureExtractor``.
        num_images: images per set; fewer when the real images run out (the counts used are
            returned).
        out: where progress lines go.

    Returns:
        {"fid_generations", "fid_reconstructions", "fid_real_images",
        "fid_generated_images", "fid_features"}.
    """
    real, reconstructed = fid.FeatureStatistics(), fid.FeatureStatistics()
    progress = Progress(f"{extractor.name} of real images and reconstructions", num_images,
                        out=out)
    for batch in real_batches:
        batch = np.asarray(batch)[:num_images - real.count]
        real.update(extractor(to_unit_range(batch, pixel_range)))
        reconstructed.update(extractor(to_unit_range(model.reconstruct(batch), pixel_range)))
        progress(real.count)
        if real.count >= num_images:
            break
    if real.count < 2:
        raise ValueError("FID needs at least 2 real images")
    if real.count < num_images:
        progress.finish(real.count)
    if real.count < num_images:
        out(f"{extractor.name}: the data has {real.count:,} images; every set uses that many",
            flush=True)
    count = real.count
    generated = fid.statistics_of(
        generated_batches(model, pixel_range, count, batch_size, seed), extractor, count,
        Progress(f"{extractor.name} of generations", count, out=out))
    return {
        "fid_generations": fid.statistics_distance(real, generated),
        "fid_reconstructions": fid.statistics_distance(real, reconstructed),
        "fid_real_images": count,
        "fid_generated_images": generated.count,
        "fid_features": extractor.name,
    }


def ppl_scores(model, pixel_range, distance, distance_name, num_samples, crop=None,
               epsilon=1e-4, batch_size=32, seed=0, out=print):
    """PPL in W, "full" and "end", of the EMA networks.

    Args:
        distance: (images_a, images_b) in [0, 1] -> [N] distances.
        distance_name: what the numbers are called.
        crop: None, "face" or "celeba" (``alae_tf.metrics.ppl.face_crop``).

    Returns:
        {"ppl_full", "ppl_end", "ppl_samples", "ppl_distance", "ppl_epsilon"}.
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
    for sampling in ppl.SAMPLINGS:
        scores[f"ppl_{sampling}"] = ppl.perceptual_path_length(
            mapping, synthesize, distance, num_samples, model.latent_dim, epsilon=epsilon,
            sampling=sampling, batch_size=batch_size, seed=seed,
            progress=Progress(f"PPL ({sampling}, {distance_name})", num_samples, out=out,
                              unit="samples"))
    return scores
