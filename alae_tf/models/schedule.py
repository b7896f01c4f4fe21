"""Progressive growing in one place: levels of detail, epochs, batch sizes, rates, fade-in.

A StyleALAE of L blocks trains L levels of detail (lod 0 .. L-1, output side 4 * 2^lod), each
for ``epochs_per_level`` epochs of the data (the last level until training ends). The first
half of every level after the first fades the new block in: its weight alpha rises as
0.5 - 0.5 cos(pi t), t going from 0 to 1 over those steps. Each level has its own global batch
size and learning rate, and starts with fresh optimizer state.

An MLP-ALAE is the one-level case: lod 0 for every epoch, alpha always 1.

Reference: podgorskiy/ALAE lod_driver.py (LODDriver) and train_alae.py (per-level batch
sizes and learning rates from the config).
"""

import dataclasses
import math

import tensorflow as tf

LR_DECAYS = ("none", "cosine", "linear")


def fade_in_alpha(step, fade_start, fade_steps):
    """The fade-in weight at training step ``step``, computed in the graph.

    alpha = 0.5 - 0.5 cos(pi t) with t = clip((step - fade_start) / fade_steps, 0, 1); 1 when
    ``fade_steps`` is 0 (no fade). All three arguments may be tensors.
    """
    step = tf.cast(step, tf.float32)
    fade_start = tf.cast(fade_start, tf.float32)
    fade_steps = tf.cast(fade_steps, tf.float32)
    t = tf.clip_by_value((step - fade_start) / tf.maximum(fade_steps, 1.0), 0.0, 1.0)
    alpha = 0.5 - 0.5 * tf.cos(math.pi * t)
    return tf.where(fade_steps > 0, alpha, 1.0)


@dataclasses.dataclass(frozen=True)
class ProgressiveSchedule:
    """Which level of detail, batch size and learning rate each epoch trains with.

    Args:
        num_levels: levels of detail (the generator's blocks; 1 for an MLP-ALAE).
        epochs_per_level: epochs of every level but the last, which trains to ``epochs``.
        epochs: total epochs of the run.
        batch_sizes: global batch size per level, padded with its last value.
        learning_rates: learning rate per level, padded with its last value.
        lr_decay: "none", "cosine" or "linear": each epoch's learning rate is its level's
            times a factor that falls from 1 at epoch 0 toward 0 at ``epochs``
            (``decay_factor``).
    """

    num_levels: int
    epochs_per_level: int
    epochs: int
    batch_sizes: tuple
    learning_rates: tuple
    lr_decay: str = "none"

    def __post_init__(self):
        if self.num_levels < 1:
            raise ValueError(f"num_levels must be at least 1, got {self.num_levels}")
        if self.num_levels > 1 and self.epochs_per_level < 1:
            raise ValueError("a schedule of several levels needs epochs_per_level >= 1")
        if not self.batch_sizes or not self.learning_rates:
            raise ValueError("a schedule needs at least one batch size and learning rate")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {', '.join(LR_DECAYS)}, got "
                             f"{self.lr_decay!r}")

    @property
    def max_level(self):
        return self.num_levels - 1

    def level_at_epoch(self, epoch):
        """Level trained during ``epoch`` (0-based): epoch // epochs_per_level, capped."""
        if self.num_levels == 1:
            return 0
        return min(epoch // self.epochs_per_level, self.max_level)

    def first_epoch(self, level):
        """The epoch at which ``level`` starts."""
        return level * self.epochs_per_level if level else 0

    def starts_level(self, epoch):
        """True when ``epoch`` is the first of its level (fresh optimizers, a new fade)."""
        return epoch == self.first_epoch(self.level_at_epoch(epoch))

    def batch_size_at(self, level):
        return self.batch_sizes[min(level, len(self.batch_sizes) - 1)]

    def learning_rate_at(self, level):
        return self.learning_rates[min(level, len(self.learning_rates) - 1)]

    def decay_factor(self, epoch):
        """The learning-rate factor of ``epoch`` (0-based): 1 without decay; cosine:
        0.5 (1 + cos(pi t)), linear: 1 - t, with t = epoch / epochs."""
        t = min(max(epoch / self.epochs, 0.0), 1.0) if self.epochs else 0.0
        if self.lr_decay == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if self.lr_decay == "linear":
            return 1.0 - t
        return 1.0

    def learning_rate_at_epoch(self, epoch):
        """The learning rate ``epoch`` trains with: its level's, times ``decay_factor``."""
        return self.learning_rate_at(self.level_at_epoch(epoch)) * self.decay_factor(epoch)

    @property
    def largest_batch_size(self):
        return max(self.batch_size_at(level) for level in range(self.num_levels))

    def fade_steps(self, level, steps_per_epoch):
        """Training steps over which ``level`` fades in: half its epochs; 0 for level 0."""
        if level == 0:
            return 0
        return round(self.epochs_per_level / 2 * steps_per_epoch)

    def segments(self, initial_epoch=0):
        """(level, first_epoch, end_epoch) runs of epochs from ``initial_epoch`` to the end.

        Each segment is one ``fit()`` call: the level fixes the tensor shapes of the step.
        """
        segments = []
        for epoch in range(initial_epoch, self.epochs):
            level = self.level_at_epoch(epoch)
            if segments and segments[-1][0] == level:
                segments[-1][2] = epoch + 1
            else:
                segments.append([level, epoch, epoch + 1])
        return [tuple(s) for s in segments]
