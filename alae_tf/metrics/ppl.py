"""Perceptual path length in W (Karras et al., StyleGAN, CVPR 2019, section 4.2), as the ALAE
paper reports it (section 6, Table 4; reference code: metrics/ppl.py).

For pairs of latents w_a, w_b = F(z_a), F(z_b) and t ~ U(0, 1) ("full") or t = 0 ("end"), the
images G(lerp(w_a, w_b, t)) and G(lerp(w_a, w_b, t + eps)) are compared with a perceptual
distance d; PPL is the mean of d / eps^2 after the lowest and highest 1% are dropped. The two
images of a pair share their noise maps. Face models are judged on a central crop (the
reference's crop for FFHQ-like and CelebA-128 framing) downsampled to at most 256 px.

The distance is pluggable: LPIPS on VGG16 (Zhang et al., CVPR 2018) is what published PPLs use;
its weights are downloads, so without them this module offers named stand-ins whose numbers
rank models of one kind but do not compare with published PPLs.
"""

import numpy as np

SAMPLINGS = ("full", "end")


def face_crop(images, celeba_style=False):
    """The reference's face region of ``[N, H, W, C]`` images: rows 3/8..7/8 and columns
    2/8..6/8, or for CelebA-128 framing a tighter box around the same centre."""
    side = images.shape[1]
    if not celeba_style:
        c = side // 8
        return images[:, 3 * c:7 * c, 2 * c:6 * c]
    scale = 2.0 / 1.6410  # CelebA-128 faces are 1.641x smaller in the frame
    h, w = int(0.5 * scale * side), int(0.5 * scale * side)
    vc, hc = int(5 / 8 * side), int(4 / 8 * side)
    return images[:, vc - h // 2:vc + h // 2, hc - w // 2:hc + w // 2]


def downsample_to(images, limit=256):
    """Box-filter downsampling by a whole factor to at most ``limit`` px, as the reference does
    before VGG (built for 224 px)."""
    factor = images.shape[1] // limit
    if images.shape[1] <= limit or factor < 2:
        return images
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def squared_pixel_distance(a, b):
    """A named stand-in for LPIPS: the sum over pixels of the squared difference (images in
    [0, 1]). It is what PPL measures for a generator judged by eye of a pixel counter; its
    numbers rank models of one kind only."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.sum(d.reshape(len(d), -1) ** 2, axis=1)


def feature_distance(extractor):
    """A stand-in for LPIPS from any feature network (``alae_tf.metrics.fid.FeatureExtractor``): the
    squared distance between the two images' feature vectors."""
    def distance(a, b):
        fa, fb = extractor(a), extractor(b)
        return np.sum((fa - fb) ** 2, axis=1)

    return distance


def trimmed_mean(values, low=1, high=99):
    """The mean of ``values`` between their ``low`` and ``high`` percentiles (inclusive), the
    reference's outlier rejection."""
    values = np.asarray(values, np.float64)
    lo = np.percentile(values, low, method="lower")
    hi = np.percentile(values, high, method="higher")
    return float(np.mean(values[(values >= lo) & (values <= hi)]))


def path_distances(mapping, synthesize, distance, num_samples, latent_dim, epsilon=1e-4,
                   sampling="full", batch_size=32, seed=0, progress=None):
    """The per-pair values d / eps^2 of PPL in W.

    Args:
        mapping: z ``[N, latent_dim]`` -> w (``[N, D]`` or ``[N, S, D]``), the mapping F.
        synthesize: (w float64, pair_seeds ``[N]`` int) -> images ``[N, H, W, C]`` in [0, 1]; images
            given the same seed must get the same noise maps.
        distance: (images_a, images_b) -> ``[N]`` distances.
        num_samples: number of pairs.
        latent_dim: size of z.
        epsilon: the step along the path.
        sampling: "full" (t ~ U(0, 1)) or "end" (t = 0).
        batch_size: pairs per batch.
        seed: seeds z, t and the noise.
        progress: called with the number of pairs done after each batch.

    Returns:
        float64 ``[num_samples]``.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    rng = np.random.default_rng(seed)
    values = []
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        z = rng.standard_normal((2 * n, latent_dim)).astype(np.float32)
        t = rng.uniform(size=n) if sampling == "full" else np.zeros(n)
        w = np.asarray(mapping(z), np.float64)
        w_a, w_b = w[0::2], w[1::2]
        t = t.reshape((n,) + (1,) * (w.ndim - 1))
        w_0 = w_a + (w_b - w_a) * t
        w_1 = w_a + (w_b - w_a) * (t + epsilon)
        noise = rng.integers(0, 2**31 - 1, size=n)
        # float64 until the generator: at eps = 1e-4 a float32 lerp would round the step.
        images = synthesize(np.concatenate([w_0, w_1]), np.concatenate([noise, noise]))
        values.append(np.asarray(distance(images[:n], images[n:]), np.float64) / epsilon**2)
        done += n
        if progress is not None:
            progress(done)
    return np.concatenate(values)


def perceptual_path_length(*args, **kwargs):
    """PPL: the trimmed mean of ``path_distances(*args, **kwargs)``."""
    return trimmed_mean(path_distances(*args, **kwargs))
