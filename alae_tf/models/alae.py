"""The ALAE training model: four networks, three adversarial updates, one Keras ``fit()``."""

import keras
import tensorflow as tf
from keras import ops

from alae_tf import distribute
from alae_tf.images import PixelRange
from alae_tf.models import losses, precision
from alae_tf.models.mapping import single_style

# The paper's names for the four networks: attributes, checkpoint keys, parameter reports.
NETWORK_NAMES = ("mapping_f", "generator", "encoder", "mapping_d")
# The networks that have an exponential-moving-average copy named ``<name>_ema``.
EMA_NETWORK_NAMES = ("mapping_f", "generator", "encoder")
OPTIMIZER_NAMES = ("ed_optimizer", "fg_optimizer")

# Every random draw of a training step has its own stateless seed
# (model seed, step * _SEEDS_PER_STEP + update * 4 + purpose).
_UPDATES = {"discriminator": 0, "generator": 1, "latent": 2}
_PURPOSES = {"z": 0, "mixing_z": 1, "mixing_draw": 2, "noise": 3}
_SEEDS_PER_STEP = 16


def _ema_copy(network, name):
    clone = network.__class__.from_config({**network.get_config(), "name": name})
    clone.build()
    clone.set_weights(network.get_weights())
    clone.trainable = False
    return clone


@keras.saving.register_keras_serializable(package="alae_tf")
class ALAE(keras.Model):
    """Adversarial Latent Autoencoder.

    Owns the four networks that meet in the latent space W: ``mapping_f`` (F: z -> w),
    ``generator`` (G: w -> x), ``encoder`` (E: x -> w) and ``mapping_d`` (D: w -> logit), and an
    exponential moving average (EMA) copy of F, G and E for inference. ``train_step`` performs
    the paper's three updates; ``call(x)`` reconstructs with the EMA networks. This class is the
    MLP-ALAE family's model (``alae_tf.models.mlp.family``) and the base of every family's:
    ``StyleALAE`` adds progressive growing, style mixing and noise. A family whose model
    ``grows`` overrides the few level-of-detail members the training loop calls
    (``set_level``, ``sync_level``, ``level_resolution``, ``images_at_level``); this one trains
    at its one level 0, its full resolution.

    Args:
        mapping_f: F network, ``[N, latent] -> w``; a ``MappingF`` (owns the average w).
        generator: G network, ``w -> [N, H, W, C]``; needs ``image_shape``.
        encoder: E network, ``[N, H, W, C] -> [N, latent]``.
        mapping_d: D network, ``[N, latent] -> [N]`` logits.
        r1_gamma: weight of the R1 penalty on real images (10 in every reference config).
        r1_interval: lazy R1 (StyleGAN2's lazy regularisation): the penalty is computed on
            every ``r1_interval``-th step only, weighted by ``r1_interval`` so that its mean
            weight is unchanged; 1 (the reference) computes it on every step.
        ema_half_life: half-life of the EMA networks in images (beta = 0.5 ** (batch / h)).
        seed: seed of every random draw of training; a step's draws depend only on the seed
            and the step counter, so a resumed run continues the same noise sequence.
        pixel_range: ``(low, high)`` or a ``PixelRange``, the range of the images the networks
            take and make; None: the family's ``default_pixel_range`` (what a model saved
            before the range was recorded was trained with).

    Reference: Pidhorskyi et al., "Adversarial Latent Autoencoders", CVPR 2020, Algorithm 1;
    podgorskiy/ALAE train_alae.py (the three updates) and model.py (``Model.forward``).
    """

    # Whether the networks grow level by level during training (``StyleALAE``).
    grows = False
    # The pixel range of every preset and imported model of the family.
    default_pixel_range = (0.0, 1.0)

    def __init__(self, mapping_f, generator, encoder, mapping_d, r1_gamma=10.0,
                 ema_half_life=10_000.0, seed=0, r1_interval=1, pixel_range=None, **kwargs):
        super().__init__(**kwargs)
        self.mapping_f = mapping_f
        self.generator = generator
        self.encoder = encoder
        self.mapping_d = mapping_d
        self.r1_gamma = float(r1_gamma)
        if int(r1_interval) != r1_interval or r1_interval < 1:
            raise ValueError(f"r1_interval must be a positive integer, got {r1_interval!r}")
        self.r1_interval = int(r1_interval)
        self.ema_half_life = float(ema_half_life)
        self.seed = int(seed)
        self.pixel_range = PixelRange.of(
            self.default_pixel_range if pixel_range is None else pixel_range)
        for name in NETWORK_NAMES:
            if not self.network(name).built:  # deserialised networks arrive built
                self.network(name).build()
        for name in EMA_NETWORK_NAMES:
            setattr(self, f"{name}_ema", _ema_copy(self.network(name), f"{name}_ema"))

        # Training state lives in variables so that checkpoints capture it.
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.loss_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss/d", "loss/r1", "loss/g", "loss/latent")
        }
        self.ed_optimizer = None
        self.fg_optimizer = None
        self.built = True

    # ------------------------------------------------------------------ structure

    def network(self, name):
        """The network called ``name`` (one of NETWORK_NAMES, or ``<name>_ema``)."""
        return getattr(self, name)

    def inference_network(self, name, use_ema=True):
        """The network ``name`` (one of EMA_NETWORK_NAMES) that inference runs: its EMA copy,
        or with ``use_ema`` False the trained network."""
        if name not in EMA_NETWORK_NAMES:
            raise ValueError(f"inference runs one of {', '.join(EMA_NETWORK_NAMES)}, "
                             f"not {name!r}")
        return self.network(f"{name}_ema" if use_ema else name)

    @property
    def compute_precision(self):
        """The dtype the networks compute in: "float32", "bfloat16" or "float16" (set by the
        Keras dtype policy they were built under; variables stay float32)."""
        return self.generator.compute_dtype

    @property
    def latent_dim(self):
        return self.mapping_f.latent_dim

    @property
    def image_shape(self):
        """(H, W, C) of the images at the networks' full resolution."""
        return tuple(self.generator.image_shape)

    @property
    def num_styles(self):
        """Style slots of w: 0 when one w drives the whole generator (MLP-ALAE)."""
        return self.mapping_f.num_styles

    # ------------------------------------------------------------------ level of detail
    # What the training loop, the run's checkpoints and the exporters ask of every model. A
    # model that does not grow trains at one level, 0, its full resolution.

    max_level = 0
    level = 0

    @property
    def level_resolution(self):
        """Side of the images the networks take now (the full resolution)."""
        return self.image_shape[0]

    def set_level(self, level, fade_steps=0):
        """Moves to level of detail ``level``: only 0 for a model that does not grow."""
        if level != 0:
            raise ValueError(f"{type(self).__name__} has one level of detail (0), got {level}")

    def sync_level(self):
        """Follows the level of detail a checkpoint restored (one level: nothing to follow)."""

    def images_at_level(self, x, fade=False):
        """Real images as the networks take them now (one level: ``x`` itself)."""
        return x

    @property
    def state_variables(self):
        """{name: variable} of the training state outside the networks and optimizers."""
        return {"step": self.step}

    def get_config(self):
        config = super().get_config()
        for name in NETWORK_NAMES:
            config[name] = keras.saving.serialize_keras_object(self.network(name))
        config.update(r1_gamma=self.r1_gamma, ema_half_life=self.ema_half_life, seed=self.seed,
                      r1_interval=self.r1_interval, pixel_range=list(self.pixel_range))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in NETWORK_NAMES:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    # ------------------------------------------------------------------ optimizers

    def compile(self, ed_optimizer=None, fg_optimizer=None, learning_rate=0.002,
                adam_betas=(0.0, 0.99), **kwargs):
        """Sets up the two optimizers and builds their state now (under the current strategy).

        Args:
            ed_optimizer: updates E and D. Default: Adam(lr, beta_1 0, beta_2 0.99, eps 1e-8).
            fg_optimizer: updates F and G. Same default.
            learning_rate: learning rate of the default optimizers.
            adam_betas: (beta_1, beta_2) of the default optimizers.
            **kwargs: passed to ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``).

        When the networks compute in float16 (the ``mixed_float16`` dtype policy), each
        optimizer gets its own loss scale (``precision.with_loss_scaling``).
        """
        super().compile(optimizer=None, **kwargs)
        ed_optimizer = ed_optimizer or _default_adam(learning_rate, "ed_adam", adam_betas)
        fg_optimizer = fg_optimizer or _default_adam(learning_rate, "fg_adam", adam_betas)
        self.ed_optimizer = precision.with_loss_scaling(ed_optimizer, self.compute_precision)
        self.fg_optimizer = precision.with_loss_scaling(fg_optimizer, self.compute_precision)
        # Built eagerly: two lazily built optimizers fail under a 2-replica MirroredStrategy.
        self.ed_optimizer.build(self.ed_variables)
        self.fg_optimizer.build(self.fg_variables)

    def get_compile_config(self):
        # Optimizers are set up by compile() itself; a loaded model is compiled by the caller.
        return None

    def reset_optimizers(self, learning_rate):
        """Zeroes both optimizers' state (moments, step counts) and sets their learning rate.

        Progressive growing starts every level of detail with fresh optimizer state.
        """
        for optimizer in (self.ed_optimizer, self.fg_optimizer):
            precision.reset_loss_scale(optimizer)
            for variable in precision.inner_optimizer(optimizer).variables:
                variable.assign(ops.zeros_like(variable))
        self.set_learning_rate(learning_rate)

    def set_learning_rate(self, learning_rate):
        for optimizer in (self.ed_optimizer, self.fg_optimizer):
            optimizer.learning_rate = learning_rate

    @property
    def ed_variables(self):
        """Trainable variables of the discriminator side, E and D."""
        return self.encoder.trainable_variables + self.mapping_d.trainable_variables

    @property
    def fg_variables(self):
        """Trainable variables of the generator side, F and G."""
        return self.mapping_f.trainable_variables + self.generator.trainable_variables

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    # ------------------------------------------------------------------ networks as trained

    def run_generator(self, generator, w):
        """G (or its EMA copy) as training runs it (a growing family: at its current level)."""
        return generator(w)

    def run_encoder(self, encoder, x):
        """E (or its EMA copy) as training runs it (a growing family: at its current level)."""
        return encoder(x)

    # ------------------------------------------------------------------ inference (EMA)

    def call(self, x, training=False):
        """G(E(x)) with the EMA networks, like ``reconstruct``."""
        return self.reconstruct(x)

    def encode(self, x, use_ema=True):
        """Images [N, H, W, C] (at the current level's resolution) -> latent codes [N, latent].

        The inference methods return float32 whatever precision the networks compute in.
        """
        return tf.cast(self.run_encoder(self.inference_network("encoder", use_ema), x),
                       tf.float32)

    def decode(self, w, noise=None, use_ema=True):
        """Latent codes w [N, latent] -> images.

        ``noise`` is in the signature both families share, so that callers treat them alike:
        a StyleALAE's generator takes per-pixel noise inputs, an MLP-ALAE's none (None).
        """
        if noise is not None:
            raise ValueError(f"{type(self).__name__}'s generator takes no noise input")
        return tf.cast(self.run_generator(self.inference_network("generator", use_ema), w),
                       tf.float32)

    def generate(self, z, truncation_psi=1.0, noise=None, use_ema=True):
        """Prior samples z [N, latent] -> images, with truncation toward the average w.

        Args:
            z: a [N, latent] tensor of N(0, 1) samples.
            truncation_psi: w <- w_avg + psi (w - w_avg), a float or scalar tensor; 1 leaves
                w unchanged (StyleALAE: in the truncated slots).
            noise: as in ``decode``.
            use_ema: use the EMA networks (the default for sampling).
        """
        w = self.inference_network("mapping_f", use_ema)(z, truncation_psi=truncation_psi)
        return self.decode(w, noise, use_ema)

    def reconstruct(self, x, use_ema=True):
        """Images -> G(E(x))."""
        return self.decode(self.encode(x, use_ema), use_ema=use_ema)

    def interpolate(self, x_a, x_b, num_steps=8, use_ema=True):
        """Decodes ``num_steps`` points on the line in W between E(x_a) and E(x_b).

        Returns images [N, num_steps, H, W, C] for image batches x_a, x_b of size N.
        """
        w_a, w_b = self.encode(x_a, use_ema), self.encode(x_b, use_ema)
        t = ops.reshape(ops.linspace(0.0, 1.0, num_steps), (1, num_steps, 1))
        w = w_a[:, None, :] + t * (w_b - w_a)[:, None, :]  # [N, steps, latent]
        images = self.decode(ops.reshape(w, (-1, self.latent_dim)), use_ema=use_ema)
        return ops.reshape(images, (-1, num_steps, *images.shape[1:]))

    # ------------------------------------------------------------------ training draws

    def step_seed(self, update, purpose):
        """The stateless seed of one draw: (model seed, step, update, purpose)."""
        salt = 4 * _UPDATES[update] + _PURPOSES[purpose]
        return tf.stack([tf.constant(self.seed, tf.int64), self.step * _SEEDS_PER_STEP + salt])

    def sample_z(self, global_batch, update, purpose="z"):
        """This replica's share of a global batch of z ~ N(0, 1) for one update of the step."""
        return distribute.replica_normal(global_batch, (self.latent_dim,),
                                         self.step_seed(update, purpose))

    def fake_styles(self, global_batch, update):
        """w = F(z) for a generated batch of one update; the running average w follows it."""
        return self.mapping_f(self.sample_z(global_batch, update), update_w_avg=True)

    def fake_images(self, global_batch, update):
        """(w, G(w)) for a generated batch of one update, with the training networks."""
        w = self.fake_styles(global_batch, update)
        return w, self.run_generator(self.generator, w)

    # ------------------------------------------------------------------ the three updates

    def discriminate(self, x):
        """D(E(x)) with the training networks: [N, H, W, C] -> float32 logits [N]."""
        return tf.cast(self.mapping_d(self.run_encoder(self.encoder, x)), tf.float32)

    def real_logits_and_r1(self, x):
        """D(E(x)) for real images and the per-example R1 penalty (gamma/2) ||dD(E(x))/dx||^2."""
        # float16: the inner gradient is taken of the sum times E/D's loss scale, then
        # unscaled, so that small gradients do not underflow (an overflow makes R1 inf and
        # the loss-scale optimizer skips the step).
        scale = precision.loss_scale(self.ed_optimizer)
        with tf.GradientTape() as r1_tape:
            r1_tape.watch(x)
            real_logits = self.discriminate(x)
            real_logit_sum = tf.reduce_sum(real_logits)  # inside the tape, so it is recorded
            if scale is not None:
                real_logit_sum = real_logit_sum * scale
        input_gradients = tf.cast(r1_tape.gradient(real_logit_sum, x), tf.float32)
        if scale is not None:
            input_gradients = input_gradients / scale
        r1 = losses.r1_penalty(input_gradients, self.r1_gamma)
        return real_logits, r1

    def discriminator_gradients(self, x, x_fake, global_batch, r1_weight):
        """Gradients of step 1's loss for ``ed_variables`` (None where a variable is unused),
        with the R1 penalty weighted by ``r1_weight`` (0: not computed at all).

        Returns (gradients, per-example adversarial loss, per-example weighted R1).
        """
        with tf.GradientTape() as tape:
            if r1_weight:
                real_logits, r1 = self.real_logits_and_r1(x)
                r1 = r1 * r1_weight
            else:
                real_logits = self.discriminate(x)
                r1 = tf.zeros_like(real_logits)
            adversarial = losses.discriminator_loss(real_logits, self.discriminate(x_fake))
            loss = distribute.global_mean(adversarial + r1, global_batch)
            scaled_loss = self.ed_optimizer.scale_loss(loss)
        return tape.gradient(scaled_loss, self.ed_variables), adversarial, r1

    def discriminator_step(self, x, global_batch):
        """Step 1: E and D learn to tell E(x) from E(G(F(z))), with R1 on the real images.

        With lazy R1 (``r1_interval`` k > 1) the penalty, weighted by k, is computed only
        on steps whose counter is a multiple of k. Returns the per-example adversarial loss
        and weighted R1 penalty of this replica's batch (R1 is 0 on the steps without it).
        """
        _, x_fake = self.fake_images(global_batch, "discriminator")
        x_fake = tf.stop_gradient(x_fake)
        variables = self.ed_variables
        if self.r1_interval == 1:
            grads, adversarial, r1 = self.discriminator_gradients(x, x_fake, global_batch, 1.0)
            _apply(self.ed_optimizer, grads, variables)
            return adversarial, r1
        # tf.cond branches cannot return None: each returns the gradients that exist, and
        # both must agree on which those are (R1 reaches no variable the loss does not).
        present = []

        def branch(r1_weight):
            def gradients():
                grads, adversarial, r1 = self.discriminator_gradients(
                    x, x_fake, global_batch, r1_weight)
                present.append([i for i, g in enumerate(grads) if g is not None])
                return [g for g in grads if g is not None], adversarial, r1
            return gradients

        grads, adversarial, r1 = tf.cond(
            tf.equal(self.step % self.r1_interval, 0),
            branch(float(self.r1_interval)), branch(0.0))
        if len(present) == 2 and present[0] != present[1]:  # eagerly, one branch runs
            raise RuntimeError("lazy R1: the two discriminator branches train different "
                               "variables")
        _apply(self.ed_optimizer, grads, [variables[i] for i in present[0]])
        return adversarial, r1

    def generator_step(self, global_batch):
        """Step 2: F and G learn to fool D o E, which stay fixed. Returns per-example losses."""
        with tf.GradientTape() as tape:
            _, fake = self.fake_images(global_batch, "generator")
            per_example = losses.generator_loss(self.discriminate(fake))
            loss = self.fg_optimizer.scale_loss(distribute.global_mean(per_example, global_batch))
        _apply(self.fg_optimizer, tape.gradient(loss, self.fg_variables), self.fg_variables)
        return per_example

    def latent_step(self, global_batch):
        """Step 3: E learns to invert G in W, ||w - E(G(w))||^2, w = F(z) held as the target.

        Updates E, G and, as in the reference, F through the w fed to G; D gets no gradient.
        Returns per-example losses.
        """
        e_variables = self.encoder.trainable_variables
        variables = e_variables + self.fg_variables
        with tf.GradientTape() as tape:
            w, fake = self.fake_images(global_batch, "latent")
            w_rec = self.run_encoder(self.encoder, fake)
            per_example = losses.latent_reconstruction_loss(
                tf.cast(tf.stop_gradient(single_style(w)), tf.float32), tf.cast(w_rec, tf.float32))
            loss = self.ed_optimizer.scale_loss(distribute.global_mean(per_example, global_batch))
        grads = tape.gradient(loss, variables)
        # One backward pass at E/D's loss scale; F/G's optimizer expects its own scale.
        fg_grads = precision.rescale_gradients(grads[len(e_variables):], self.ed_optimizer,
                                               self.fg_optimizer)
        _apply(self.ed_optimizer, grads[:len(e_variables)], e_variables)
        _apply(self.fg_optimizer, fg_grads, self.fg_variables)
        return per_example

    def train_step(self, data):
        """One ALAE iteration (Algorithm 1 of the paper): the three updates, then EMA."""
        x = data[0] if isinstance(data, tuple | list) else data  # [N, H, W, C]; labels unused
        x = self.images_at_level(x, fade=True)
        global_batch = tf.shape(x)[0] * distribute.num_replicas()

        d_loss, r1 = self.discriminator_step(x, global_batch)
        g_loss = self.generator_step(global_batch)
        latent_loss = self.latent_step(global_batch)
        self.update_ema(tf.cast(global_batch, tf.float32))
        self.step.assign_add(1)

        for name, per_example in (
            ("loss/d", d_loss), ("loss/r1", r1), ("loss/g", g_loss), ("loss/latent", latent_loss)
        ):
            value = tf.reduce_mean(per_example)
            if name == "loss/r1" and precision.loss_scale(self.ed_optimizer) is not None:
                # float16: R1 overflows on the steps the loss-scale optimizer skips (and
                # halves its scale for); those steps are left out of the logged mean.
                finite = tf.math.is_finite(value)
                self.loss_trackers[name].update_state(tf.where(finite, value, 0.0),
                                                      sample_weight=tf.cast(finite, tf.float32))
                continue
            self.loss_trackers[name].update_state(value)
        logs = self.get_metrics_result()
        if distribute.is_multi_worker():
            # Keras reduces a multi-worker step's logs with a mean over axis 0, which a
            # scalar does not have.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def update_ema(self, global_batch):
        """EMA networks <- lerp(trained, EMA, 0.5 ** (global batch / half-life)).

        Trainable weights are averaged; the rest (F's running average w) is copied.
        """
        beta = tf.pow(0.5, global_batch / self.ema_half_life)
        targets, values = [], []
        for name in EMA_NETWORK_NAMES:
            source, ema = self.network(name), self.network(f"{name}_ema")
            for src, dst in zip(source.weights, ema.weights, strict=True):
                targets.append(dst)
                values.append(src + beta * (dst - src) if src.trainable else src.value)
        distribute.assign_synced(targets, values)


def _apply(optimizer, grads, variables):
    # Blocks above the current level of detail get no gradient: leave them out, quietly.
    pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])


def _default_adam(learning_rate, name, betas=(0.0, 0.99)):
    # Reference optimizer: Adam(beta_1 0, beta_2 0.99, eps 1e-8), no weight decay.
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=float(betas[0]), beta_2=float(betas[1]),
        epsilon=1e-8, name=name
    )
