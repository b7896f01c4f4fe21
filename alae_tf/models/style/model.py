"""StyleALAE: the ALAE model with progressive growing, style mixing and per-pixel noise."""

import keras
import tensorflow as tf

from alae_tf import distribute
from alae_tf.models import schedule
from alae_tf.models.alae import ALAE


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


def downsample_to(x, side):
    """Average-pools square images [N, R, R, C] down to ``side`` (R a multiple of it)."""
    factor = x.shape[1] // side
    return x if factor == 1 else tf.nn.avg_pool2d(x, factor, factor, "VALID")


@keras.saving.register_keras_serializable(package="alae_tf")
class StyleALAE(ALAE):
    """StyleALAE: ALAE with a StyleGAN generator and a style encoder that grow progressively.

    On top of ``ALAE`` it owns:

    - the level of detail: the checkpointed variable ``lod`` and the Python int ``level`` that
      traced steps are built for (``set_level`` writes both; ``sync_level`` copies the variable
      after a restore). Each level is its own traced training step;
    - the fade-in weight, a function of the step counter computed in the graph
      (``schedule.fade_in_alpha(step, fade_start, fade_steps)`` with both ends checkpointed),
      so it is right for any ``steps_per_execution`` and after a resume;
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

    grows = True
    default_pixel_range = (-1.0, 1.0)

    def __init__(self, mapping_f, generator, encoder, mapping_d, style_mixing_prob=0.9,
                 **kwargs):
        if mapping_f.num_styles != generator.num_styles:
            raise ValueError(f"mapping_f has {mapping_f.num_styles} style slots, the generator "
                             f"{generator.num_styles}: build MappingF with num_styles="
                             f"{generator.num_styles}")
        super().__init__(mapping_f, generator, encoder, mapping_d, **kwargs)
        self.style_mixing_prob = float(style_mixing_prob)
        self.lod = self.add_weight(
            name="lod", shape=(), dtype="int64", trainable=False,
            initializer=keras.initializers.Constant(self.max_level),
            aggregation="only_first_replica",
        )
        # The current level fades in over steps [fade_start, fade_start + fade_steps).
        self.fade_start = self.add_weight(
            name="fade_start", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.fade_steps = self.add_weight(
            name="fade_steps", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self._level = self.max_level
        self.alpha_tracker = keras.metrics.Mean(name="fade/alpha")

    def get_config(self):
        return {**super().get_config(), "style_mixing_prob": self.style_mixing_prob}

    @property
    def metrics(self):
        return [*super().metrics, self.alpha_tracker]

    # ------------------------------------------------------------------ levels of detail

    @property
    def max_level(self):
        return self.generator.num_blocks - 1

    @property
    def level(self):
        return self._level

    @property
    def level_resolution(self):
        return 4 * 2**self._level

    @property
    def state_variables(self):
        return {**super().state_variables, "lod": self.lod, "fade_start": self.fade_start,
                "fade_steps": self.fade_steps}

    def set_level(self, level, fade_steps=0):
        """Moves to level of detail ``level`` (side 4 * 2^level); the step is traced anew.

        The new block fades in over the next ``fade_steps`` training steps (0: no fade).
        """
        level = int(level)
        if not 0 <= level <= self.max_level:
            raise ValueError(f"lod must be in [0, {self.max_level}], got {level}")
        if fade_steps < 0:
            raise ValueError(f"fade_steps must be 0 or more, got {fade_steps}")
        self.lod.assign(level)
        self.fade_start.assign(self.step)
        self.fade_steps.assign(int(fade_steps))
        self._level = level
        self.train_function = None  # the step's shapes depend on the level: trace it again

    def sync_level(self):
        level = int(self.lod.numpy())
        if level != self._level:
            self._level = level
            self.train_function = None

    def load_own_variables(self, store):
        # keras.saving.load_model restores lod with the other variables; follow it.
        super().load_own_variables(store)
        self.sync_level()

    def alpha(self):
        """Fade-in weight of the current level's newest block (1: no fade)."""
        return schedule.fade_in_alpha(self.step, self.fade_start, self.fade_steps)

    def images_at_level(self, x, fade=False):
        """Real images [N, R, R, C] at the current level: average-pooled to 4 * 2^level and,
        with ``fade``, blended alpha * x + (1 - alpha) * upsample(avgpool(x)) during a fade-in.
        """
        x = downsample_to(x, self.level_resolution)
        if not fade or self._level == 0:
            return x
        coarse = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        coarse = tf.repeat(tf.repeat(coarse, 2, axis=1), 2, axis=2)  # nearest upsample
        return coarse + self.alpha() * (x - coarse)

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

    def train_step(self, data):
        self.alpha_tracker.update_state(self.alpha())  # the weight this step trains with
        return super().train_step(data)
