"""The ALAE training model: four networks, three adversarial updates, one Keras ``fit()``."""

import keras
import tensorflow as tf
from keras import ops

from alae_tf import losses

# Salts that give every random draw of a training step its own stateless seed.
_SALT_D_STEP, _SALT_G_STEP, _SALT_LATENT_STEP = 1, 2, 3
_SALT_MIX_Z, _SALT_MIX_DRAW = 4, 5
_SALT_NOISE = {_SALT_D_STEP: 6, _SALT_G_STEP: 7, _SALT_LATENT_STEP: 8}
_SALTS_PER_STEP = 16


def _assign_synced(variables, values):
    """Assigns ``values`` to (possibly mirrored) ``variables`` from the replica context.

    Every replica computes the same values (they derive from synced weights and all-reduced
    statistics), so each device copy takes its own replica's value, as a Keras optimizer does.
    """
    raw = [v.value if isinstance(v, keras.Variable) else v for v in variables]

    def update(strategy, targets, new_values):
        for target, value in zip(targets, new_values, strict=True):
            strategy.extended.update(
                target, lambda var, val: var.assign(val), args=(value,), group=False
            )

    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: plain assignment is allowed
        for target, value in zip(raw, values, strict=True):
            target.assign(value)
    else:
        context.merge_call(update, args=(raw, list(values)))


def _clone(network, name):
    clone = network.__class__.from_config({**network.get_config(), "name": name})
    clone.build()
    clone.trainable = False
    return clone


@keras.saving.register_keras_serializable(package="alae_tf")
class ALAE(keras.Model):
    """Adversarial Latent Autoencoder.

    Owns the four networks that meet in the latent space W: ``mapping_f`` (F: z -> w),
    ``generator`` (G: w -> x), ``encoder`` (E: x -> w) and ``mapping_d`` (D: w -> logit), plus an
    exponential moving average (EMA) copy of F, G and E and the running average w used for
    truncation. ``train_step`` performs the paper's three updates; ``call(x)`` reconstructs.

    Args:
        mapping_f: F network, ``[N, latent] -> [N, latent]``; needs ``latent_dim``.
        generator: G network, ``[N, latent] -> [N, H, W, C]``; needs ``image_shape``.
        encoder: E network, ``[N, H, W, C] -> [N, latent]``.
        mapping_d: D network, ``[N, latent] -> [N]`` logits.
        r1_gamma: weight of the R1 penalty on real images (10 in every reference config).
        ema_half_life: half-life of the EMA networks in images (beta = 0.5 ** (batch / h)).
        w_avg_decay: decay of the running average w (0.995 per generation).
        seed: seed of every random draw of training (z); a step's draws depend only on the
            seed and the step counter, so a resumed run continues the same noise sequence.
        style_mixing_prob: probability that a generated batch of a progressive (StyleALAE)
            generator mixes two w at a random crossover slot (discriminator and generator
            steps only); ignored by single-style generators.
        truncation_cutoff: style slots that truncation pulls toward the average w (the
            first 8 in StyleGAN); single-style generators truncate their one w.

    Networks with a ``blocks`` attribute (the StyleALAE ladders) grow progressively: they take
    the level of detail and the fade-in weight, which live in the variables ``lod`` and
    ``alpha`` (set them with ``set_lod`` and ``alpha.assign``); real images are brought to the
    level's resolution and faded in the same way.

    Reference: Pidhorskyi et al., "Adversarial Latent Autoencoders", CVPR 2020, Algorithm 1;
    ALAE_SPEC.md section 2.
    """

    def __init__(
        self,
        mapping_f,
        generator,
        encoder,
        mapping_d,
        r1_gamma=10.0,
        ema_half_life=10_000.0,
        w_avg_decay=0.995,
        seed=0,
        style_mixing_prob=0.9,
        truncation_cutoff=8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mapping_f = mapping_f
        self.generator = generator
        self.encoder = encoder
        self.mapping_d = mapping_d
        self.r1_gamma = float(r1_gamma)
        self.ema_half_life = float(ema_half_life)
        self.w_avg_decay = float(w_avg_decay)
        self.seed = int(seed)
        self.style_mixing_prob = float(style_mixing_prob)
        self.truncation_cutoff = int(truncation_cutoff)
        self.latent_dim = mapping_f.latent_dim
        self.image_shape = tuple(generator.image_shape)
        self.progressive = hasattr(generator, "blocks")
        self.num_styles = getattr(generator, "num_styles", 0)
        self.max_lod = generator.blocks - 1 if self.progressive else 0

        for network in (mapping_f, generator, encoder, mapping_d):
            if not network.built:  # deserialised networks arrive built
                network.build()
        self.mapping_f_ema = _clone(mapping_f, "mapping_f_ema")
        self.generator_ema = _clone(generator, "generator_ema")
        self.encoder_ema = _clone(encoder, "encoder_ema")
        for source, ema in self._ema_pairs():
            ema.set_weights(source.get_weights())

        # Training state lives in variables so that checkpoints capture it.
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.w_avg = self.add_weight(
            name="w_avg", shape=(self.latent_dim,), initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        # Progressive growing: level of detail and fade-in weight (full size, no fade).
        self.lod = self.add_weight(
            name="lod", shape=(), dtype="int64", trainable=False,
            initializer=keras.initializers.Constant(self.max_lod),
            aggregation="only_first_replica",
        )
        self.alpha = self.add_weight(
            name="alpha", shape=(), initializer="ones", trainable=False,
            aggregation="only_first_replica",
        )
        # The lod fixes tensor shapes, so traced functions read this Python copy of it.
        self._traced_lod = self.max_lod

        self.loss_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss/d", "loss/r1", "loss/g", "loss/latent")
        }
        self.encoder_optimizer = None
        self.decoder_optimizer = None
        self.built = True

    # ------------------------------------------------------------------ configuration

    def get_config(self):
        config = super().get_config()
        for name in ("mapping_f", "generator", "encoder", "mapping_d"):
            config[name] = keras.saving.serialize_keras_object(getattr(self, name))
        config.update(
            r1_gamma=self.r1_gamma,
            ema_half_life=self.ema_half_life,
            w_avg_decay=self.w_avg_decay,
            seed=self.seed,
            style_mixing_prob=self.style_mixing_prob,
            truncation_cutoff=self.truncation_cutoff,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("mapping_f", "generator", "encoder", "mapping_d"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    def compile(self, encoder_optimizer=None, decoder_optimizer=None, learning_rate=0.002,
                **kwargs):
        """Sets up the two optimizers and builds their state now (under the current strategy).

        Args:
            encoder_optimizer: updates E and D. Default: Adam(lr, beta_1 0, beta_2 0.99, eps 1e-8).
            decoder_optimizer: updates F and G. Same default.
            learning_rate: learning rate of the default optimizers.
            **kwargs: passed to ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``).
        """
        super().compile(optimizer=None, **kwargs)
        self.encoder_optimizer = encoder_optimizer or _default_adam(learning_rate, "encoder_adam")
        self.decoder_optimizer = decoder_optimizer or _default_adam(learning_rate, "decoder_adam")
        # Built eagerly: two lazily built optimizers fail under a 2-replica MirroredStrategy.
        self.encoder_optimizer.build(self.encoder_variables)
        self.decoder_optimizer.build(self.decoder_variables)

    def reset_optimizers(self, learning_rate):
        """Zeroes both optimizers' state (moments, step counts) and sets their learning rate.

        Progressive growing starts every level of detail with fresh optimizer state.
        """
        for optimizer in (self.encoder_optimizer, self.decoder_optimizer):
            for variable in optimizer.variables:
                variable.assign(ops.zeros_like(variable))
        self.set_learning_rate(learning_rate)

    def set_learning_rate(self, learning_rate):
        for optimizer in (self.encoder_optimizer, self.decoder_optimizer):
            optimizer.learning_rate = learning_rate

    def get_compile_config(self):
        # Optimizers are set up by compile() itself; a loaded model is compiled by the caller.
        return None

    @property
    def encoder_variables(self):
        """Trainable variables of the discriminator side, E and D."""
        return self.encoder.trainable_variables + self.mapping_d.trainable_variables

    @property
    def decoder_variables(self):
        """Trainable variables of the generator side, F and G."""
        return self.mapping_f.trainable_variables + self.generator.trainable_variables

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    # ------------------------------------------------------------------ inference

    # ------------------------------------------------------------------ progressive growing

    @property
    def current_lod(self):
        """The level of detail in use (the variable when eager, its Python copy when traced)."""
        if self.progressive and tf.executing_eagerly():
            self._traced_lod = int(self.lod.numpy())
        return self._traced_lod

    def set_lod(self, lod):
        """Moves to level of detail ``lod`` (resolution 4 * 2^lod); traced steps are redone."""
        lod = int(lod)
        if not 0 <= lod <= self.max_lod:
            raise ValueError(f"lod must be in [0, {self.max_lod}], got {lod}")
        self.lod.assign(lod)
        self._traced_lod = lod
        self.train_function = None  # the step's shapes depend on the lod: trace it again

    @property
    def resolution(self):
        """Side of the images at the current level of detail."""
        return 4 * 2**self.current_lod if self.progressive else self.image_shape[0]

    def _grow_kwargs(self):
        return {"lod": self.current_lod, "alpha": self.alpha} if self.progressive else {}

    def _run_generator(self, generator, w):
        return generator(w, **self._grow_kwargs())

    def _run_encoder(self, encoder, x):
        return encoder(x, **self._grow_kwargs())

    def real_at_lod(self, x):
        """Real images [N, R, R, C] at the current level: average-pooled to 4 * 2^lod and,
        during a fade-in, alpha * x + (1 - alpha) * upsample(avgpool(x))."""
        if not self.progressive:
            return x
        factor = self.image_shape[0] // self.resolution
        if factor > 1:
            x = tf.nn.avg_pool2d(x, factor, factor, "VALID")
        if self.current_lod == 0:
            return x
        coarse = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        coarse = tf.repeat(tf.repeat(coarse, 2, axis=1), 2, axis=2)  # nearest upsample
        return coarse + self.alpha * (x - coarse)

    # ------------------------------------------------------------------ inference

    def call(self, x, training=False):
        """Reconstructs a batch of images with the training networks: G(E(x)).

        Images larger than the current level's resolution are average-pooled to it first.
        """
        x = self.pool_to_level(x)
        return self._run_generator(self.generator, self._run_encoder(self.encoder, x))

    def pool_to_level(self, x):
        """Average-pools images larger than the current level's resolution down to it."""
        if self.progressive and x.shape[1] is not None and x.shape[1] > self.resolution:
            factor = x.shape[1] // self.resolution
            x = tf.nn.avg_pool2d(x, factor, factor, "VALID")
        return x

    def _nets(self, use_ema):
        if use_ema:
            return self.mapping_f_ema, self.generator_ema, self.encoder_ema
        return self.mapping_f, self.generator, self.encoder

    def encode(self, x, use_ema=True):
        """Images [N, H, W, C] (at the current level's resolution) -> latent codes [N, latent]."""
        return self._run_encoder(self._nets(use_ema)[2], x)

    def decode(self, w, use_ema=True):
        """Latent codes w [N, latent] (or per style slot [N, slots, latent]) -> images."""
        return self._run_generator(self._nets(use_ema)[1], w)

    def generate(self, z, truncation_psi=1.0, use_ema=True):
        """Prior samples z [N, latent] -> images, with optional truncation toward the mean w.

        Args:
            z: a [N, latent] tensor of N(0, 1) samples.
            truncation_psi: w <- w_avg + psi * (w - w_avg); 1 disables truncation.
            use_ema: use the EMA networks (the default for sampling).
        """
        mapping_f, generator, _ = self._nets(use_ema)
        w = mapping_f(z)
        if truncation_psi != 1.0:
            truncated = self.w_avg + truncation_psi * (w - self.w_avg)
            if self.num_styles:
                # Only the first (coarse) slots are truncated, as in StyleGAN.
                slots = tf.range(self.num_styles)[None, :, None]
                w = tf.where(slots < self.truncation_cutoff, truncated[:, None], w[:, None])
            else:
                w = truncated
        return self._run_generator(generator, w)

    def reconstruct(self, x, use_ema=True):
        """Images -> G(E(x))."""
        return self.decode(self.encode(x, use_ema), use_ema)

    def interpolate(self, x_a, x_b, num_steps=8, use_ema=True):
        """Decodes ``num_steps`` points on the line in W between E(x_a) and E(x_b).

        Returns images [N, num_steps, H, W, C] for image batches x_a, x_b of size N.
        """
        w_a, w_b = self.encode(x_a, use_ema), self.encode(x_b, use_ema)
        t = ops.reshape(ops.linspace(0.0, 1.0, num_steps), (1, num_steps, 1))
        w = w_a[:, None, :] + t * (w_b - w_a)[:, None, :]  # [N, steps, latent]
        images = self.decode(ops.reshape(w, (-1, self.latent_dim)), use_ema)
        return ops.reshape(images, (-1, num_steps, *images.shape[1:]))

    # ------------------------------------------------------------------ training

    def _step_seed(self, salt):
        return tf.stack([tf.constant(self.seed, tf.int64), self.step * _SALTS_PER_STEP + salt])

    def _replica_rows(self, global_batch, shape, seed):
        """This replica's rows of a global [global_batch, *shape] draw of N(0, 1).

        Every replica draws the whole global batch from the same stateless seed and keeps its
        own slice, so N replicas see exactly the numbers that one replica would.
        """
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        local_batch = global_batch // replicas
        values = tf.random.stateless_normal((global_batch, *shape), seed=seed)
        return values[replica * local_batch:(replica + 1) * local_batch]

    def _sample_z(self, global_batch, salt):
        """This replica's share of a global batch of z ~ N(0, 1) for step ``salt``."""
        return self._replica_rows(global_batch, (self.latent_dim,), self._step_seed(salt))

    def _training_noise(self, global_batch, salt):
        """Per-pixel noise inputs of the generator, drawn from the model's seed (or None)."""
        if not hasattr(self.generator, "noise_shapes"):
            return None
        seed = self._step_seed(_SALT_NOISE[salt])
        return [
            self._replica_rows(global_batch, (h, w, 1),
                               tf.random.experimental.stateless_fold_in(seed, i))
            for i, (h, w) in enumerate(self.generator.noise_shapes(self.current_lod))
        ]

    def _map(self, z):
        """w = F(z), and the running average w moves toward this batch's mean w."""
        w = self.mapping_f(z)
        batch_mean = tf.reduce_mean(tf.stop_gradient(w), axis=0)
        context = tf.distribute.get_replica_context()
        if context is not None:
            batch_mean = context.all_reduce(tf.distribute.ReduceOp.MEAN, batch_mean)
        # lerp(batch_mean, w_avg, decay)
        new_avg = batch_mean + self.w_avg_decay * (self.w_avg - batch_mean)
        _assign_synced([self.w_avg], [new_avg])
        return w

    def _mixed_styles(self, w, global_batch):
        """Style mixing: with probability p, slots from a random crossover on take a second w.

        w [N, latent] -> [N, slots, latent]. The crossover is drawn uniformly from
        [1, 2 * (lod + 1)] as a tensor, so one traced step serves every draw.
        """
        w2 = tf.stop_gradient(self._map(self._sample_z(global_batch, _SALT_MIX_Z)))
        draws = tf.random.stateless_uniform((2,), seed=self._step_seed(_SALT_MIX_DRAW))
        active = 2 * (self.current_lod + 1)
        crossover = 1 + tf.cast(draws[1] * active, tf.int32)  # draws in [0, 1)
        crossover = tf.where(draws[0] < self.style_mixing_prob, crossover, self.num_styles)
        slots = tf.range(self.num_styles)[None, :, None]
        return tf.where(slots < crossover, w[:, None], w2[:, None])

    def _generate_for_training(self, w, global_batch, salt, mixing=True):
        if mixing and self.num_styles and self.style_mixing_prob > 0:
            w = self._mixed_styles(w, global_batch)
        noise = self._training_noise(global_batch, salt)
        kwargs = {"noise": noise} if noise is not None else {}
        return self.generator(w, **self._grow_kwargs(), **kwargs)

    def _discriminate(self, x):
        return self.mapping_d(self._run_encoder(self.encoder, x))

    def real_logits_and_r1(self, x):
        """D(E(x)) for real images and the per-example R1 penalty (gamma/2) ||dD(E(x))/dx||^2."""
        with tf.GradientTape() as r1_tape:
            r1_tape.watch(x)
            real_logits = self._discriminate(x)
            real_logit_sum = tf.reduce_sum(real_logits)  # inside the tape, so it is recorded
        r1 = losses.r1_penalty(r1_tape.gradient(real_logit_sum, x), self.r1_gamma)
        return real_logits, r1

    def discriminator_step(self, x, global_batch):
        """Step 1: E and D learn to tell E(x) from E(G(F(z))), with R1 on the real images.

        Returns the per-example adversarial loss and R1 penalty of this replica's batch.
        """
        w_fake = tf.stop_gradient(self._map(self._sample_z(global_batch, _SALT_D_STEP)))
        x_fake = tf.stop_gradient(self._generate_for_training(w_fake, global_batch, _SALT_D_STEP))
        with tf.GradientTape() as tape:
            real_logits, r1 = self.real_logits_and_r1(x)
            adversarial = losses.discriminator_loss(real_logits, self._discriminate(x_fake))
            loss = _global_mean(adversarial + r1, global_batch)
        grads = tape.gradient(loss, self.encoder_variables)
        _apply(self.encoder_optimizer, grads, self.encoder_variables)
        return adversarial, r1

    def generator_step(self, global_batch):
        """Step 2: F and G learn to fool D o E, which stay fixed. Returns per-example losses."""
        with tf.GradientTape() as tape:
            w = self._map(self._sample_z(global_batch, _SALT_G_STEP))
            fake = self._generate_for_training(w, global_batch, _SALT_G_STEP)
            per_example = losses.generator_loss(self._discriminate(fake))
            loss = _global_mean(per_example, global_batch)
        grads = tape.gradient(loss, self.decoder_variables)
        _apply(self.decoder_optimizer, grads, self.decoder_variables)
        return per_example

    def latent_step(self, global_batch):
        """Step 3: E learns to invert G in W, ||w - E(G(w))||^2, w = F(z) held as the target.

        Updates E, G and, as in the reference, F through the w fed to G; D gets no gradient.
        Returns per-example losses.
        """
        encoder_variables = self.encoder.trainable_variables
        variables = encoder_variables + self.decoder_variables
        with tf.GradientTape() as tape:
            w = self._map(self._sample_z(global_batch, _SALT_LATENT_STEP))
            # No style mixing here: the target is the one w that made the image.
            fake = self._generate_for_training(w, global_batch, _SALT_LATENT_STEP, mixing=False)
            w_rec = self._run_encoder(self.encoder, fake)
            per_example = losses.latent_reconstruction_loss(tf.stop_gradient(w), w_rec)
            loss = _global_mean(per_example, global_batch)
        grads = tape.gradient(loss, variables)
        _apply(self.encoder_optimizer, grads[: len(encoder_variables)], encoder_variables)
        _apply(self.decoder_optimizer, grads[len(encoder_variables):], self.decoder_variables)
        return per_example

    def train_step(self, data):
        """One ALAE iteration (Algorithm 1 of the paper): the three updates, then EMA."""
        x = data[0] if isinstance(data, (tuple, list)) else data  # [N, H, W, C]; labels unused
        x = self.real_at_lod(x)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = tf.shape(x)[0] * replicas

        d_loss, r1 = self.discriminator_step(x, global_batch)
        g_loss = self.generator_step(global_batch)
        latent_loss = self.latent_step(global_batch)
        self._update_ema(tf.cast(global_batch, tf.float32))
        self.step.assign_add(1)

        for name, per_example in (
            ("loss/d", d_loss), ("loss/r1", r1), ("loss/g", g_loss), ("loss/latent", latent_loss)
        ):
            self.loss_trackers[name].update_state(tf.reduce_mean(per_example))
        return self.get_metrics_result()

    def _ema_pairs(self):
        return (
            (self.mapping_f, self.mapping_f_ema),
            (self.generator, self.generator_ema),
            (self.encoder, self.encoder_ema),
        )

    def _update_ema(self, global_batch):
        beta = tf.pow(0.5, global_batch / self.ema_half_life)
        targets, values = [], []
        for source, ema in self._ema_pairs():
            for src, dst in zip(source.weights, ema.weights, strict=True):
                targets.append(dst)
                values.append(src + beta * (dst - src))  # lerp(src, ema, beta)
        _assign_synced(targets, values)



def _apply(optimizer, grads, variables):
    # Blocks above the current level of detail get no gradient: leave them out, quietly.
    pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])


def _global_mean(per_example, global_batch):
    # Each replica divides its sum by the GLOBAL batch; the optimizer's all-reduce SUM of the
    # gradients then yields the gradient of the global-batch mean.
    return tf.reduce_sum(per_example) / tf.cast(global_batch, per_example.dtype)


def _default_adam(learning_rate, name):
    # Reference optimizer: Adam(beta_1 0, beta_2 0.99, eps 1e-8), no weight decay.
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=0.0, beta_2=0.99, epsilon=1e-8, name=name
    )
