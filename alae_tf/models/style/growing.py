"""Progressive growing: the level-of-detail state of a model whose G and E grow block by block.

A mixin for an ``ALAE`` subclass (StyleALAE uses it), listed before ``ALAE`` among its bases:
it answers the level-of-detail members the training loop calls (``set_level``, ``sync_level``,
``level_resolution``, ``images_at_level``) with a checkpointed level and fade-in, where the
base ``ALAE`` has its one level 0. The model's networks take ``lod`` and ``alpha`` arguments
(``run_generator``/``run_encoder`` of the subclass pass ``level`` and ``alpha()``).

Reference: podgorskiy/ALAE lod_driver.py (``LODDriver``); Karras et al. 2018 (progressive
growing, the fade-in of a new block).
"""

import keras
import tensorflow as tf

from alae_tf.models import schedule


def downsample_to(x, side):
    """Average-pools square images [N, R, R, C] down to ``side`` (R a multiple of it)."""
    factor = x.shape[1] // side
    return x if factor == 1 else tf.nn.avg_pool2d(x, factor, factor, "VALID")


class ProgressiveGrowing:
    """The level of detail and fade-in of a growing ``ALAE``: level ``l`` has side 4 * 2^l.

    It owns the checkpointed variable ``lod`` and the Python int ``level`` that traced steps
    are built for (``set_level`` writes both; ``sync_level`` copies the variable after a
    restore), so each level is its own traced training step; and the fade-in weight, a
    function of the step counter computed in the graph (``schedule.fade_in_alpha(step,
    fade_start, fade_steps)`` with both ends checkpointed), right for any
    ``steps_per_execution`` and after a resume. The logged metric ``fade/alpha`` is the weight
    each step trained with.

    The model's ``__init__`` calls ``init_growing()`` after ``ALAE.__init__``; its generator
    has ``num_blocks``.
    """

    grows = True

    def init_growing(self):
        """Creates the level-of-detail state: the last level, no fade."""
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

    @property
    def metrics(self):
        return [*super().metrics, self.alpha_tracker]

    @property
    def max_level(self):
        """The last level of detail, the full resolution."""
        return self.generator.num_blocks - 1

    @property
    def level(self):
        """The level of detail that inference and traced training steps run at."""
        return self._level

    @property
    def level_resolution(self):
        """Side of the images at the current level of detail."""
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
        """Follows the ``lod`` variable a checkpoint restored."""
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

    def train_step(self, data):
        self.alpha_tracker.update_state(self.alpha())  # the weight this step trains with
        return super().train_step(data)
