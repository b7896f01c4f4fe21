"""Keras callbacks of a training run: checkpoints, image grids and overall progress.

The progressive-growing schedule is not a callback: the fade-in weight is computed inside the
training step from the step counter (``alae_tf.models.schedule``).
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from alae_tf import images
from alae_tf.progress import format_duration


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose logged losses are not finite.

    Keras's logs are running means over the epoch, so one NaN step makes every later value of
    the epoch NaN: the first one is where the run diverged. Put this callback first; the
    checkpoint and grid callbacks skip their epoch-end work once it has tripped, so the last
    good checkpoint stays the newest.
    """

    def __init__(self):
        super().__init__()
        self.tripped = None  # (step, epoch, name, value) once tripped

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.tripped:
            return
        for name, value in (logs or {}).items():
            try:
                number = float(np.asarray(value).reshape(-1)[0])
            except (TypeError, ValueError, IndexError):
                continue
            if not np.isfinite(number):
                self.tripped = (int(self.model.step.numpy()), self.epoch + 1, name, number)
                self.model.stop_training = True
                return


class EpochLearningRate(keras.callbacks.Callback):
    """Sets both optimizers' learning rate at the start of every epoch from the schedule
    (``ProgressiveSchedule.learning_rate_at_epoch``: the level's rate times the decay), and
    logs it as ``learning_rate``. Put it before the TensorBoard callback."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_learning_rate(self.schedule.learning_rate_at_epoch(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.schedule.learning_rate_at_epoch(epoch))


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the epoch in which ``deadline`` (a ``time.time()``)
    passes; ``stopped_at`` is then that epoch (1-based). Put it before the checkpoint
    callback, which saves the epoch a stop ends on. With a multi-worker ``strategy`` the
    workers decide together (a collective: every worker must have this callback)."""

    def __init__(self, deadline, strategy=None):
        super().__init__()
        self.deadline = deadline
        self.strategy = strategy
        self.stopped_at = None

    def on_epoch_end(self, epoch, logs=None):
        due = time.time() >= self.deadline
        if self.strategy is not None:
            # Multi-worker: all stop when any one is due (their clocks differ a little); a
            # worker that stopped alone would leave the others waiting in the next step.
            from alae_tf.distribute import gather_from_workers

            due = any(gather_from_workers(self.strategy, int(due)))
        if due:
            self.stopped_at = epoch + 1
            self.model.stop_training = True


class OverallProgress(keras.callbacks.Callback):
    """Prints the run's progress after each epoch: ``epoch 12/150, 1m20s elapsed, about 9m
    left``.

    The time left is the epochs left times the mean measured epoch time of the current
    fit() (a StyleALAE trains each level in its own fit(), and its epochs grow slower level by
    level). Pass the same instance to every fit() of the run.

    Args:
        total_epochs: the run's last epoch.
        start: when training started (a ``time.time()``); elapsed time counts from here.
    """

    def __init__(self, total_epochs, start=None):
        super().__init__()
        self.total_epochs = total_epochs
        self.start = time.time() if start is None else start
        self.epoch_seconds = []
        self.epoch_start = None

    def on_train_begin(self, logs=None):
        self.epoch_seconds = []  # a new level: its epochs take their own time

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        self.epoch_seconds.append(now - self.epoch_start)
        done, line = epoch + 1, f"epoch {epoch + 1}/{self.total_epochs}, "
        line += f"{format_duration(now - self.start)} elapsed"
        if done < self.total_epochs:
            left = np.mean(self.epoch_seconds) * (self.total_epochs - done)
            line += f", about {format_duration(left, coarse=True)} left"
        print(line, flush=True)


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the full training state at the end of every ``every``-th epoch and the last one.

    Args:
        run_checkpoint: a ``RunCheckpoint`` of the run.
        every: epochs between checkpoints.
        final_epoch: the last epoch of this ``fit()`` (always checkpointed).
        guard: a ``NonFiniteGuard``; once it has tripped, nothing is saved.
        after_save: called with the epoch after each save (the run's progress record).
    """

    def __init__(self, run_checkpoint, every=1, final_epoch=None, guard=None, after_save=None):
        super().__init__()
        self.after_save = after_save
        self.run_checkpoint = run_checkpoint
        self.every = every
        self.final_epoch = final_epoch
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.tripped:
            return  # never overwrite good checkpoints with a diverged model
        done = epoch + 1
        # A stop (time budget) ends the run here: save it, whatever the interval.
        if done % self.every == 0 or done == self.final_epoch or self.model.stop_training:
            self.run_checkpoint.save(done)
            if self.after_save is not None:
                self.after_save(done)


class ImageGridCallback(keras.callbacks.Callback):
    """Writes grids of samples and reconstructions (EMA networks) as PNG and to TensorBoard.

    Samples come from a fixed set of z, so successive grids show the same latent points
    improving. Reconstructions put each real image beside G(E(x)).

    Args:
        real_images: float [N, H, W, C] real images in the model's pixel range.
        run_dir: the run directory (PNGs go to ``samples/``, TensorBoard to ``logs/images``).
        pixel_range: the data range, for conversion to uint8.
        num_samples: size of the sample grid.
        every: epochs between grids (the last epoch always gets one).
        final_epoch: the last epoch of this ``fit()``.
        seed: seed of the fixed z.
    """

    def __init__(self, real_images, run_dir, pixel_range, num_samples=64, every=1,
                 final_epoch=None, seed=0, guard=None):
        super().__init__()
        self.guard = guard
        self.real_images = real_images
        self.run_dir = run_dir
        self.pixel_range = tuple(pixel_range)
        self.num_samples = num_samples
        self.every = every
        self.final_epoch = final_epoch
        self.seed = seed
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs", "images"))

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if self.guard is not None and self.guard.tripped:
            return
        if done % self.every and done != self.final_epoch and not self.model.stop_training:
            return
        z = tf.random.stateless_normal(
            (self.num_samples, self.model.latent_dim), seed=(self.seed, 12345)
        )
        samples = np.asarray(self.model.generate(z))
        real = np.asarray(self.model.images_at_level(self.real_images, fade=True))
        recon = np.asarray(self.model.reconstruct(real))
        grids = {
            "samples": images.make_grid(samples, ncols=8, pixel_range=self.pixel_range),
            "reconstructions": images.make_grid(
                images.side_by_side(real, recon), ncols=8, pixel_range=self.pixel_range
            ),
        }
        for name, grid in grids.items():
            images.save_png(
                os.path.join(self.run_dir, "samples", f"epoch_{done:04d}_{name}.png"), grid
            )
        with self.writer.as_default(step=done):
            for name, grid in grids.items():
                tf.summary.image(name, images.PixelRange(0.0, 1.0).from_uint8(grid[None]))
        self.writer.flush()
