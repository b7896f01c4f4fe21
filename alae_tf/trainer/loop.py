"""The training run: one Keras fit() per level of detail, resumable from the run directory's
newest checkpoint, with a time budget, the multi-worker roles and an atomic final
``model.keras``."""

import contextlib
import dataclasses
import math
import os
import shutil
import time

import keras
import tensorflow as tf

from alae_tf.data import check_batch_size, make_dataset, open_source
from alae_tf.distribute import is_multi_worker, weights_fingerprint
from alae_tf.errors import ConfigError, RunDirError, TrainingDiverged, write_error_reason
from alae_tf.models.alae import NETWORK_NAMES
from alae_tf.models.precision import policy_scope
from alae_tf.models.presets import build_model
from alae_tf.runs import (
    RunCheckpoint,
    ensure_writable_dir,
    held_out_images,
    record_config,
    recorded_run,
)
from alae_tf.trainer.callbacks import (
    CheckpointCallback,
    EpochLearningRate,
    ImageGridCallback,
    NonFiniteGuard,
    OverallProgress,
    TimeBudget,
)
from alae_tf.trainer.roles import (
    check_workers_agree,
    make_strategy,
    worker_losses_reported,
)
from alae_tf.trainer.settings import resolve_settings

MODEL_NAME = "model.keras"
# resolve_settings's keyword arguments; train() passes every other one on as a preset field.
_SETTING_ARGS = ("seed", "steps_per_epoch", "keep_checkpoints", "precision", "jit_compile",
                 "strategy", "checkpoint_every", "grid_every", "time_budget", "verbose")


class EpochsGoBack(RunDirError):
    """A run trained further than the number of epochs asked for.

    Args:
        run_dir: the run directory.
        reached: the epoch its newest checkpoint is at.
        epochs: the epochs asked for.
    """

    def __init__(self, run_dir, reached, epochs):
        super().__init__(f"{run_dir!r} is trained to epoch {reached}; training to epoch "
                         f"{epochs} would go back: ask for more than {reached} epochs to train "
                         "on (nothing was changed)")
        self.run_dir, self.reached, self.epochs = run_dir, reached, epochs


class BatchDoesNotSplit(ConfigError):
    """A global batch size that the replicas cannot share evenly.

    Args:
        batch_size: the global batch size.
        replicas: the replicas in sync.
    """

    def __init__(self, batch_size, replicas):
        super().__init__(f"a global batch of {batch_size} does not split evenly across "
                         f"{replicas} replicas")
        self.batch_size, self.replicas = batch_size, replicas


class UnbuildablePreset(ConfigError):
    """A preset whose model cannot be built, most likely for an overridden field out of
    range."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a ``Trainer.run`` did.

    Args:
        run_dir: the run directory.
        epoch: the epoch reached (earlier than the preset's when the time budget stopped it).
        step: the training step reached.
        images_seen: training images this process took.
        seconds: seconds this process trained.
        model_path: the ``model.keras`` written, or None (a multi-worker run's other workers
            write nothing in the run directory).
        worker: "worker 1 of 2 workers" in a multi-worker run, else empty.
        already_trained: the run was trained to its epochs already; nothing was trained.
        stopped_early: the time budget stopped the run before its last epoch.
    """

    run_dir: str
    epoch: int
    step: int
    images_seen: int = 0
    seconds: float = 0.0
    model_path: str | None = None
    worker: str = ""
    already_trained: bool = False
    stopped_early: bool = False

    @property
    def images_per_second(self):
        return self.images_seen / max(self.seconds, 1e-9)


class Trainer:
    """A training run of an ``ALAE`` into its run directory, resumable: a run directory that
    holds checkpoints trains on from the newest one that reads completely, with the same
    recorded settings (``RunSettings.check_resumes``).

    Args:
        settings: the run's ``RunSettings`` (``resolve_settings`` makes them from plain
            arguments, taking what is left out from a recorded run).
        join_quietly: a context manager factory a multi-worker run joins its cluster inside
            (an application's capture of TensorFlow's connection logs), or None.

    Example::

        settings, _ = resolve_settings("runs/x", "mnist_mlp_fast", {"epochs": 3})
        result = Trainer(settings).run()   # result.model_path: runs/x/model.keras
    """

    def __init__(self, settings, join_quietly=None):
        self.settings = settings
        self.join_quietly = join_quietly

    def run(self):
        """Trains to the preset's epochs (or the time budget) and writes ``model.keras``.

        Progress goes to stdout: one line per fit() of a level, Keras's epoch lines and the
        run's overall progress as ``verbose`` asks.

        Returns:
            a ``TrainResult``.

        Raises:
            SettingChanged, OtherPreset, EpochsGoBack, RunDirNotWritable, RunDirError: the
                run directory cannot be used as asked (nothing was changed in it).
            ConfigError: the preset, the data or the batch size across replicas.
            TrainingDiverged: a loss went non-finite; nothing of that epoch was saved.
            WorkerLost: a multi-worker run lost a worker; the checkpoints are kept.
        """
        settings = self.settings
        recorded = recorded_run(settings.run_dir)
        if recorded is not None:  # refuses a settings change before anything is written
            settings.check_resumes(recorded)
        strategy, role = make_strategy(settings.strategy, settings.run_dir, self.join_quietly)
        reported = (worker_losses_reported(settings.run_dir, role) if role.label
                    else contextlib.nullcontext())  # role.label: a multi-worker run
        with reported:
            if role.chief:
                return self._run_as_chief(strategy, role)
            # Another worker: it reads the chief's run directory (which the chief creates)
            # and writes only to its temporary directory.
            try:
                return self._run_in(strategy, role)
            finally:
                shutil.rmtree(role.write_dir, ignore_errors=True)

    def _run_as_chief(self, strategy, role):
        """Runs as the process that writes the run: it creates the run directory, and a
        first try that fails before writing anything leaves none."""
        run_dir = self.settings.run_dir
        created = not os.path.isdir(run_dir)
        ensure_writable_dir(run_dir)
        try:
            return self._run_in(strategy, role)
        except BaseException:
            if created:  # os.rmdir removes it only while empty: a failed first try leaves nothing
                with contextlib.suppress(OSError):
                    os.rmdir(run_dir)
            raise

    def _run_in(self, strategy, role):
        """The run once the run directory exists and is writable (by the chief)."""
        settings = self.settings
        num_examples = _count_examples(settings.preset)
        _check_batches_split(settings.preset, strategy)
        model, checkpoint, initial_epoch = _restore_model(settings, strategy, role)
        if settings.preset.epochs < initial_epoch:
            raise EpochsGoBack(settings.run_dir, initial_epoch, settings.preset.epochs)
        if role.chief:
            record_config(settings)
        if initial_epoch >= settings.preset.epochs:
            return _already_trained(model, settings, role, initial_epoch)
        if initial_epoch:
            print(f"resuming {settings.run_dir} from epoch {initial_epoch} "
                  f"(step {int(model.step.numpy())})")
        start = time.time()
        tally = _ImageTally(checkpoint, initial_epoch, start)
        reached = _fit_levels(model, checkpoint, settings, strategy, role, num_examples,
                              initial_epoch, tally)
        elapsed = time.time() - start
        model_path = None
        if role.chief:
            model_path = save_final_model(model, settings.run_dir, settings.preset)
        if role.label:  # a multi-worker run: every worker must print the same fingerprint
            print(f"{role.label}: weights fingerprint {weights_fingerprint(model.weights)}")
        return TrainResult(settings.run_dir, reached, int(model.step.numpy()),
                           images_seen=tally.seen_here(reached), seconds=elapsed,
                           model_path=model_path, worker=role.label,
                           stopped_early=reached < settings.preset.epochs)


def train(preset=None, run_dir=None, join_quietly=None, **kwargs):
    """Trains (or resumes) a run from plain arguments: ``resolve_settings`` then
    ``Trainer.run``; for a notebook, e.g. ``train(preset="mnist_mlp_fast",
    run_dir="runs/x", epochs=3, r1_gamma=5.0)``.

    Args:
        preset: a preset name (default: the run's own, else ``DEFAULT_PRESET``).
        run_dir: the run directory (default: ``runs/PRESET``).
        join_quietly: as in ``Trainer``.
        **kwargs: the keyword arguments of ``resolve_settings`` (seed, steps_per_epoch,
            precision, time_budget, verbose, ...); every other one sets a preset field
            (epochs, batch_size, learning_rate, dataset, ...). A field set at all replaces
            the preset's own value only: ``batch_size`` leaves a StyleALAE's per-level
            ``lod_batch_sizes`` (give ``lod_batch_sizes=()`` to drop them).

    Returns:
        the ``TrainResult``.
    """
    options = {k: kwargs.pop(k) for k in _SETTING_ARGS if k in kwargs}
    settings, _ = resolve_settings(run_dir, preset, kwargs, **options)
    return Trainer(settings, join_quietly=join_quietly).run()


def build_run_model(preset, seed):
    """The preset's model, built with ``seed``.

    Raises:
        UnbuildablePreset: a preset field out of range.
    """
    try:
        return build_model(preset, seed=seed)
    except ValueError as e:
        raise UnbuildablePreset(f"cannot build preset {preset.name} ({e})") from None


def architecture_lines(settings):
    """The image and latent sizes and the parameter count of each network, line by line
    (the model is built after the first line)."""
    preset = settings.preset
    crop = "" if preset.face_alignment == "none" else (
        f", photos cropped: {preset.face_alignment} (alae-photo)")
    yield (f"preset {preset.name}: {preset.resolution}x{preset.resolution}x"
           f"{preset.channels}, latent {preset.latent_dim}{crop}")
    model = build_run_model(preset, settings.seed)
    counts = {name: sum(math.prod(v.shape) for v in model.network(name).trainable_weights)
              for name in NETWORK_NAMES}
    for name, count in counts.items():
        yield f"{name:<10} {count:>12,d} parameters"
    yield (f"{'total':<10} {sum(counts.values()):>12,d} trainable parameters (EMA copies and "
           "the average w not counted)")


def save_final_model(model, run_dir, preset):
    """Writes run_dir/model.keras through a temporary file; a failed write leaves none.
    Returns its path.

    A model trained in mixed precision is saved as its float32 twin (the same weights,
    which are float32 anyway), so that loading model.keras anywhere computes in float32.

    Raises:
        RunDirError: the write failed; the checkpoints are kept.
    """
    if model.compute_precision != "float32":
        with policy_scope("float32"):
            twin = build_run_model(preset, model.seed)
        twin.set_weights(model.get_weights())
        twin.sync_level()
        model = twin

    final_path = os.path.join(run_dir, MODEL_NAME)
    tmp_path = os.path.join(run_dir, f"model.tmp{os.getpid()}.keras")
    try:
        model.save(tmp_path)
        os.replace(tmp_path, final_path)
    except (OSError, tf.errors.OpError) as e:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise RunDirError(f"cannot write {final_path} ({write_error_reason(e)}); the checkpoints "
                          "are saved: free some space and re-run the same command to write it"
                          ) from None
    return final_path


def _training_data(strategy, preset, batch_size, seed):
    """The training batches of one fit() segment: a dataset of global batches, which Keras
    splits across local replicas, or for a multi-worker run one input pipeline per worker,
    each batching its own shard of the examples (``make_dataset``'s ``shard``)."""
    settings = dict(resolution=preset.resolution, channels=preset.channels,
                    pixel_range=preset.pixel_range, seed=seed, flip=preset.flip,
                    translate=preset.translate, max_image_pixels=preset.max_image_pixels)
    if not is_multi_worker(strategy):
        return make_dataset(preset.dataset, batch_size=batch_size, **settings)[0]

    def per_pipeline(context):
        shard = (context.num_input_pipelines, context.input_pipeline_id)
        return make_dataset(preset.dataset, batch_size=context.get_per_replica_batch_size(
            batch_size), shard=shard, **settings)[0]

    return strategy.distribute_datasets_from_function(per_pipeline)


def _count_examples(preset):
    """Opens the data source before anything is written to the run directory, so that bad
    data settings fail first; returns the number of training examples."""
    source = open_source(preset.dataset, resolution=preset.resolution, channels=preset.channels,
                         max_image_pixels=preset.max_image_pixels)
    check_batch_size(source, preset.schedule.largest_batch_size)
    return source.num_examples


def _check_batches_split(preset, strategy):
    replicas = strategy.num_replicas_in_sync
    bad_batch = [b for b in preset.schedule.batch_sizes if b % replicas]
    if bad_batch:
        raise BatchDoesNotSplit(bad_batch[0], replicas)


def _restore_model(settings, strategy, role):
    """(model, checkpoint, epoch): the compiled model, restored from the run's newest
    readable checkpoint (epoch 0: none, a new run)."""
    preset = settings.preset
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope(), policy_scope(settings.precision):
        model = build_run_model(preset, settings.seed)
        model.compile(learning_rate=preset.learning_rate, adam_betas=preset.adam_betas,
                      jit_compile=settings.jit_compile)
        checkpoint = RunCheckpoint(model, role.write_dir,
                                   max_to_keep=settings.keep_checkpoints or None,
                                   read_dir=settings.run_dir)
        # Before restoring: every worker must restore the same checkpoint, the chief's.
        check_workers_agree(strategy, settings.run_dir, checkpoint.newest_number())
        initial_epoch = checkpoint.restore_latest(quarantine=role.chief)
        checkpoint.remove_stale_temps()
    return model, checkpoint, initial_epoch


def _already_trained(model, settings, role, initial_epoch):
    run_dir = settings.run_dir
    model_path = os.path.join(run_dir, MODEL_NAME)
    if role.chief and not os.path.isfile(model_path):
        save_final_model(model, run_dir, settings.preset)  # a previous run stopped first
        print(f"wrote {model_path}")
    return TrainResult(run_dir, initial_epoch, int(model.step.numpy()),
                       model_path=model_path if role.chief else None, worker=role.label,
                       already_trained=True)


class _ImageTally:
    """Images seen and seconds of training of the whole run at each checkpoint, for
    checkpoints/progress.json (the learning curves); a run from before progress.json
    existed starts its record at this process.

    Args:
        checkpoint: the run's ``RunCheckpoint``.
        initial_epoch: the epoch this process starts from.
        start: when this process started training (a ``time.time()``).
    """

    def __init__(self, checkpoint, initial_epoch, start):
        past = checkpoint.progress.read().get(initial_epoch,
                                              {"images_seen": 0, "train_seconds": 0})
        self.checkpoint, self.start = checkpoint, start
        self.past_images, self.past_seconds = past["images_seen"], past["train_seconds"]
        self.before_segment = 0  # images seen by this process before the current fit()
        self.first, self.per_epoch = initial_epoch, 0

    def begin_segment(self, first, images_per_epoch):
        self.first, self.per_epoch = first, images_per_epoch

    def seen_here(self, epoch):
        """Images seen by this process until the end of ``epoch``."""
        return self.before_segment + (epoch - self.first) * self.per_epoch

    def end_segment(self, reached):
        self.before_segment = self.seen_here(reached)
        self.first, self.per_epoch = reached, 0

    def record(self, epoch):
        """Records checkpoint ``epoch`` (a ``CheckpointCallback`` after_save)."""
        self.checkpoint.progress.record(
            epoch, self.checkpoint.model.step.numpy(), self.past_images + self.seen_here(epoch),
            self.past_seconds + time.time() - self.start)


class _RunCallbacks:
    """The Keras callbacks of each fit(): per-run parts (the TensorBoard writer, the held-out
    grid images, the overall progress) made once and shared by every level's fit().

    Args:
        settings: the run's ``RunSettings``.
        strategy: the tf.distribute strategy.
        role: what this process writes (``Role``).
        checkpoint: the run's ``RunCheckpoint``.
        tally: the ``_ImageTally`` that records each checkpoint's progress.
    """

    def __init__(self, settings, strategy, role, checkpoint, tally):
        self.settings, self.role, self.checkpoint, self.tally = settings, role, checkpoint, tally
        self.budget_strategy = strategy if is_multi_worker(strategy) else None
        budget = settings.time_budget
        self.deadline = tally.start + budget * 60 if budget else float("inf")
        self.grid_images = held_out_images(settings.preset, 16)
        self.tensorboard = (keras.callbacks.TensorBoard(os.path.join(settings.run_dir, "logs"),
                                                        write_graph=False)
                            if role.chief else None)
        # One for every fit(): epoch k of n and the time left span the levels.
        self.progress = OverallProgress(settings.preset.epochs, start=tally.start)

    def for_segment(self, last):
        """(guard, budget, callbacks) of a fit() that ends at epoch ``last``; the guard and
        the time budget tell afterwards how it ended."""
        settings, preset = self.settings, self.settings.preset
        guard = NonFiniteGuard()
        budget = TimeBudget(self.deadline, strategy=self.budget_strategy)
        callbacks = [
            guard,
            budget,
            EpochLearningRate(preset.schedule),
            CheckpointCallback(self.checkpoint, settings.checkpoint_every, final_epoch=last,
                               guard=guard, after_save=self.tally.record),
        ]
        if self.role.chief:  # the other workers of a multi-worker run write no grids or logs
            callbacks += [
                ImageGridCallback(self.grid_images, settings.run_dir, preset.pixel_range,
                                  every=settings.grid_every, final_epoch=last,
                                  seed=settings.seed, guard=guard),
                self.tensorboard,
            ]
        if settings.verbose:
            # Keras's own epoch line first (Keras would add its logger after this list).
            callbacks += [keras.callbacks.ProgbarLogger(), self.progress]
        return guard, budget, callbacks


def _fit_levels(model, checkpoint, settings, strategy, role, num_examples, initial_epoch,
                tally):
    """Trains from ``initial_epoch`` on, one fit() per level of detail; returns the epoch
    reached (earlier than the preset's with a time budget).

    Raises:
        TrainingDiverged: a loss went non-finite; nothing of that epoch was saved.
    """
    preset, schedule = settings.preset, settings.preset.schedule
    run_callbacks = _RunCallbacks(settings, strategy, role, checkpoint, tally)
    reached = initial_epoch
    for level, first, last in schedule.segments(initial_epoch):
        batch_size = schedule.batch_size_at(level)
        steps_per_epoch = settings.steps_per_epoch or num_examples // batch_size
        if schedule.starts_level(first):
            # A new level: a new fade-in from this step on, and fresh optimizer state (as in
            # the reference).
            model.set_level(level, fade_steps=schedule.fade_steps(level, steps_per_epoch))
            model.reset_optimizers(schedule.learning_rate_at_epoch(first))
        else:
            # Resumed mid-level: the checkpoint restored the level, its fade and the optimizers.
            model.set_learning_rate(schedule.learning_rate_at_epoch(first))
        tally.begin_segment(first, steps_per_epoch * batch_size)
        # A resumed run draws a fresh, seeded data order: the seed depends on the epoch.
        dataset = _training_data(strategy, preset, batch_size, settings.seed + first)
        guard, budget, callbacks = run_callbacks.for_segment(last)
        growth = (f"level {level} ({model.level_resolution} px), "
                  if schedule.num_levels > 1 else "")
        print(f"training {preset.name} on {preset.dataset} ({num_examples} images): "
              f"{growth}epochs {first + 1}..{last}, {steps_per_epoch} steps of {batch_size} "
              f"images, {strategy.num_replicas_in_sync} replica(s)"
              f"{' (' + role.label + ')' if role.label else ''}, {settings.precision}; run dir "
              f"{settings.run_dir}")
        # shuffle=False: the tf.data pipeline shuffles (Keras would warn that it ignores it).
        model.fit(dataset, epochs=last, initial_epoch=first, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, verbose=settings.verbose, shuffle=False)
        if guard.tripped:
            _raise_diverged(guard, checkpoint)
        reached = budget.stopped_at or last
        tally.end_segment(reached)
        if budget.stopped_at:
            print(f"time budget of {settings.time_budget:g} minutes used: stopped after epoch "
                  f"{reached} of {preset.epochs} (the same command trains on from there)")
            break
    return reached


def _raise_diverged(guard, checkpoint):
    step, epoch, name, value = guard.tripped
    last_good = checkpoint.latest
    kept = (f"the newest checkpoint is still {os.path.basename(last_good)}"
            if last_good else "no checkpoint was written")
    raise TrainingDiverged(
        f"training diverged at step {step} (epoch {epoch}): {name} = {value}; stopped "
        f"without saving ({kept})")
