"""StyleALAE: the ALAE model with progressive growing, style mixing and per-pixel noise."""

import keras
import tensorflow as tf

from alae_tf import distribute
from alae_tf.models.alae import ALAE
from alae_tf.models.style.growing import ProgressiveGrowing


def mix_styles(w, w_mix, crossover):
    """Slots [0, crossover) from ``w``, the rest from ``w_mix``: both [N, slots, latent].

    ``crossover`` is a scalar tensor, so one traced step serves every draw.
    """
    slots = tf.range(tf.shape(w)[1])[None, :, None]
    return tf.where(slots < crossover, w, w_mix)


def noise_from_seeds(seeds, shapes):
    """The generator's per-pixel noise inputs drawn from one int64 seed per example.

    Args:
        seeds: [N] int64; example n's noise depends on seeds[n] alone.
        shapes: (H, W) of each noise input (``StyleGenerator.noise_shapes``).

    Returns:
        A list of [N, H, W, 1] float32 tensors, one per shape.
    """
    def per_example(seed):
        return [tf.random.stateless_normal((h, w, 1),
                                           seed=tf.stack([seed, tf.cast(i, seed.dtype)]))
                for i, (h, w) in enumerate(shapes)]

    signature = [tf.TensorSpec((h, w, 1), tf.float32) for h, w in shapes]
    return tf.map_fn(per_example, tf.cast(seeds, tf.int64), fn_output_signature=signature)


@keras.saving.register_keras_serializable(package="alae_tf")
class StyleALAE(ProgressiveGrowing, ALAE):
    """StyleALAE: ALAE with a StyleGAN generator and a style encoder that grow progressively.

    On top of ``ALAE`` it owns:

    - progressive growing (``ProgressiveGrowing``): the level of detail ``lod`` and the
      fade-in weight ``alpha()`` that G and E run at;
    - style mixing (discriminator and generator updates): with probability
      ``style_mixing_prob`` a second w = F(z2) takes the slots from a crossover drawn uniformly
      in [1, 2 (lod + 1)]; the second w keeps its gradient and is not averaged into w_avg;
    - the generator's per-pixel noise: drawn from the model's seed in training, given or drawn
      at random in inference (``decode``, ``generate``).

    Args:
        mapping_f: a ``MappingF`` with ``num_styles`` equal to the generator's.
        generator: a ``StyleGenerator``.
        encoder: a ``StyleEncoder``.
        mapping_d: a ``MappingD``.
        style_mixing_prob: probability that a generated batch mixes two w (0.9).
        **kwargs: the ``ALAE`` arguments (r1_gamma, ema_half_life, seed, pixel_range
            (default (-1, 1)), name).

    Reference: ALAE paper section 5; podgorskiy/ALAE model.py (``Model.generate``), net.py
    (``Generator``, ``EncoderDefault``) and lod_driver.py (``LODDriver``); Karras et al. 2019
    (style mixing).
    """

    default_pixel_range = (-1.0, 1.0)

    def __init__(self, mapping_f, generator, encoder, mapping_d, style_mixing_prob=0.9,
                 **kwargs):
        if mapping_f.num_styles != generator.num_styles:
            raise ValueError(f"mapping_f has {mapping_f.num_styles} style slots, the generator "
                             f"{generator.num_styles}: build MappingF with num_styles="
                             f"{generator.num_styles}")
        super().__init__(mapping_f, generator, encoder, mapping_d, **kwargs)
        self.style_mixing_prob = float(style_mixing_prob)
        self.init_growing()

    def get_config(self):
        return {**super().get_config(), "style_mixing_prob": self.style_mixing_prob}

    # ------------------------------------------------------------------ networks as trained

    def run_generator(self, generator, w, noise=None):
        """G (or its EMA copy) at the current level, with the per-pixel ``noise`` inputs
        (shapes ``noise_shapes()``; None: drawn at random)."""
        return generator(w, lod=self._level, alpha=self.alpha(), noise=noise)

    def run_encoder(self, encoder, x):
        return encoder(x, lod=self._level, alpha=self.alpha())

    def noise_shapes(self):
        """(H, W) of each of the generator's noise inputs at the current level."""
        return self.generator.noise_shapes(self._level)

    # ------------------------------------------------------------------ inference (EMA)

    def decode(self, w, noise=None, use_ema=True):
        """Latent codes w, [N, latent] or per slot [N, slots, latent] -> images.

        ``noise``: the generator's per-pixel noise inputs (shapes ``noise_shapes()``), which
        make the output a deterministic function of w; drawn at random when None.
        """
        return tf.cast(self.run_generator(self.inference_network("generator", use_ema), w,
                                          noise), tf.float32)

    # ------------------------------------------------------------------ training draws

    def fake_styles(self, global_batch, update):
        """w = F(z) in every slot, or, in the discriminator and generator updates, with
        probability p two w split at a random crossover.

        The latent update never mixes: its target is the one w that made the image (the
        reference's ``Model.forward`` generates with ``mixing=False`` there). Only the first w
        moves the running average (the reference averages it alone).
        """
        w = self.mapping_f(self.sample_z(global_batch, update), update_w_avg=True)
        if update == "latent" or self.style_mixing_prob <= 0:
            return w
        w_mix = self.mapping_f(self.sample_z(global_batch, update, "mixing_z"))
        draws = tf.random.stateless_uniform((2,), seed=self.step_seed(update, "mixing_draw"))
        active = 2 * (self._level + 1)  # the slots in use at this level
        crossover = 1 + tf.cast(draws[1] * active, tf.int32)  # uniform in [1, active]
        crossover = tf.where(draws[0] < self.style_mixing_prob, crossover, self.num_styles)
        return mix_styles(w, w_mix, crossover)

    def training_noise(self, global_batch, update):
        """This replica's share of the generator's noise inputs for one update, drawn from
        the model's seed and step like every other draw of training."""
        seed = self.step_seed(update, "noise")
        return [
            distribute.replica_normal(global_batch, (h, w, 1),
                                      tf.random.experimental.stateless_fold_in(seed, i))
            for i, (h, w) in enumerate(self.noise_shapes())
        ]

    def fake_images(self, global_batch, update):
        w = self.fake_styles(global_batch, update)
        return w, self.run_generator(self.generator, w, self.training_noise(global_batch, update))
