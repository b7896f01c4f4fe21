"""alae-train: trains an ALAE with Keras fit(), resumably, into a run directory."""

import contextlib
import math
import os
import shutil
import sys
import time

from alae_tf.cli import (
    ArgumentParser,
    TrainingDiverged,
    UsageError,
    WorkerLost,
    early_flags,
    ensure_writable_dir,
    non_negative_int,
    positive_float,
    positive_int,
    quiet_tensorflow,
    run_main,
    seed_int,
)
from alae_tf.errors import clean_message, write_error_reason

DEFAULT_PRESET = "mnist_mlp"


def build_parser():
    from alae_tf.data import DEFAULT_MAX_IMAGE_PIXELS
    from alae_tf.models.precision import PRECISIONS
    from alae_tf.models.presets import PRESETS

    parser = ArgumentParser(
        prog="alae-train",
        description="Train an Adversarial Latent Autoencoder. Re-running the same command "
        "resumes from the run directory's latest checkpoint.",
    )
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS),
                        help=f"named experiment configuration (default: {DEFAULT_PRESET}, or the "
                        "run's own when resuming)")
    parser.add_argument("--dataset", default=None,
                        help="data source: 'mnist' (the embedded real digits, the default), "
                        "'tfds:NAME' (needs a network) or 'folder:PATH' (png/jpg, nested)")
    parser.add_argument("--max-image-pixels", type=positive_int, default=None,
                        help="folder images with more pixels (width x height) are skipped "
                        f"(default: {DEFAULT_MAX_IMAGE_PIXELS:,}, or the run's own when "
                        "resuming)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="train until this epoch (default: the preset's)")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None,
                        help="training steps per epoch (default: one pass over the data)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="global batch size, split across replicas, at every level of detail "
                        "(default: the preset's, per level for StyleALAE)")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="learning rate of both Adam optimizers at every level of detail "
                        "(default: the preset's)")
    parser.add_argument("--run-dir", default=None,
                        help="where config, checkpoints, logs and samples go "
                        "(default: runs/PRESET)")
    parser.add_argument("--seed", type=seed_int, default=None,
                        help="seed of weights, data order and training noise (default: 0, or "
                        "the run's own when resuming)")
    parser.add_argument("--jit-compile", choices=("on", "off"), default="off",
                        help="compile the training step with XLA (default: off; see the "
                        "figures in docs/performance.md)")
    parser.add_argument("--precision", default=None, choices=("auto", *PRECISIONS),
                        help="compute precision: mixed_* compute the networks in 16 bits with "
                        "float32 variables, losses and EMA; auto is mixed_bfloat16 on a CPU "
                        "with native bfloat16 (AVX512_BF16 or AMX) and no GPU, else float32 "
                        "(default: auto for a new run, the run's own when resuming)")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"),
                        default="default",
                        help="tf.distribute strategy: 'mirrored' uses every local GPU; "
                        "'multi_worker' trains on several machines, each started with the same "
                        "command and its own TF_CONFIG, the run directory on storage they "
                        "share (docs/distributed.md) (default: 'default', one device)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=1,
                        help="epochs between checkpoints (default: 1)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any preset field, e.g. --set r1_gamma=5 --set "
                        "adam_betas=[0.5,0.99] --set g_output=sigmoid (JSON values; "
                        "repeatable; recorded with the run; see alae_tf.models.presets.Preset)")
    parser.add_argument("--time-budget", type=positive_float, default=None, metavar="MINUTES",
                        help="stop after the epoch in which this many minutes of training "
                        "have passed, with a checkpoint and model.keras (the run can be "
                        "resumed later)")
    parser.add_argument("--keep-checkpoints", type=non_negative_int, default=None,
                        help="newest checkpoints kept; 0 keeps every one, for learning curves "
                        "(alae-eval --all-checkpoints) (default: 3, or the run's own when "
                        "resuming)")
    parser.add_argument("--grid-every", type=positive_int, default=5,
                        help="epochs between sample/reconstruction grids (default: 5)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="Keras fit() verbosity: 1 progress bar, 2 one line per epoch "
                        "(default: 1 on a terminal, else 2); given at all, it also shows "
                        "TensorFlow's C++ log lines, hidden otherwise")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the model, print parameter counts per network, and exit")
    return parser


def _preset_from_args(args, recorded=None):
    """The preset the flags ask for. Resuming (``recorded`` = the run's preset), a flag left
    out keeps the run's value rather than the preset's default."""
    import dataclasses

    from alae_tf.models.presets import get_preset

    overrides = {"dataset": args.dataset, "epochs": args.epochs,
                 "max_image_pixels": args.max_image_pixels}
    # A flag replaces the preset's per-level schedule with one value for every level.
    if args.batch_size is not None:
        overrides.update(batch_size=args.batch_size, lod_batch_sizes=())
    if args.learning_rate is not None:
        overrides.update(learning_rate=args.learning_rate, lod_learning_rates=())
    given = {k: v for k, v in overrides.items() if v is not None}
    base = recorded or get_preset(args.preset or DEFAULT_PRESET)
    given.update(_field_overrides(args.set, base))
    return dataclasses.replace(base, **given)


def _field_overrides(items, preset):
    """{field: value} from --set FIELD=VALUE items, checked against ``preset``'s fields."""
    import dataclasses
    import json

    fields = {f.name for f in dataclasses.fields(preset)} - {"name", "family"}
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise UsageError(f"--set {item!r}: give FIELD=VALUE with FIELD one of "
                             f"{', '.join(sorted(fields))}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # a bare word: a string field such as g_output=sigmoid
        default = getattr(preset, key)
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            kind = {int: "an integer", float: "a number", bool: "true or false",
                    str: "a string", tuple: "a JSON list"}.get(type(default), "another type")
            raise UsageError(f"--set {item!r}: {key} takes {kind} (now {default!r}), not "
                             f"{text!r}")
        overrides[key] = value
    return overrides


def resolve_settings(args):
    """(settings, recorded): the run's ``RunSettings`` from the flags, taking a flag left out
    from the recorded config when resuming (else from the preset and the defaults), and the
    recorded ``RunSettings`` that bind a resumed run (None for a new one).

    Raises:
        UsageError: ``--preset`` names another preset than the run's.
    """
    from alae_tf.runs import RunSettings, recorded_run

    run_dir = args.run_dir or os.path.join("runs", args.preset or DEFAULT_PRESET)
    recorded = recorded_run(run_dir)
    if recorded is not None and args.preset not in (None, recorded.preset.name):
        raise UsageError(f"{run_dir!r} holds a {recorded.preset.name} run, not {args.preset}; "
                         f"resume it with --preset {recorded.preset.name} (or without "
                         "--preset), or pick a new --run-dir")
    preset = _preset_from_args(args, recorded and recorded.preset)
    previous = recorded or RunSettings(preset, precision="auto")
    precision = args.precision or previous.precision
    settings = RunSettings(
        preset, run_dir=run_dir,
        seed=_given(args.seed, previous.seed),
        steps_per_epoch=_given(args.steps_per_epoch, previous.steps_per_epoch),
        keep_checkpoints=_given(args.keep_checkpoints, previous.keep_checkpoints),
        precision=_auto_precision(preset.family) if precision == "auto" else precision,
        jit_compile=args.jit_compile == "on", strategy=args.strategy,
        checkpoint_every=args.checkpoint_every, grid_every=args.grid_every,
        time_budget=args.time_budget,
        verbose=_given(args.verbose, 1 if sys.stdout.isatty() else 2))
    return settings, recorded


def _given(flag, default):
    return default if flag is None else flag


def _build_model(preset, seed):
    from alae_tf.models.presets import build_model

    try:
        return build_model(preset, seed=seed)
    except ValueError as e:  # a preset field out of range, most likely from --set
        raise UsageError(f"cannot build preset {preset.name} ({e}); check the --set values"
                         ) from None


def _auto_precision(family):
    import tensorflow as tf

    from alae_tf.models.precision import default_precision

    return default_precision(bool(tf.config.list_physical_devices("GPU")), family)


class _Role:
    """What this process writes: everything (the chief, or a single process), or, as one
    of a multi-worker run's other workers, checkpoints to a temporary directory only."""

    def __init__(self, chief=True, write_dir=None, label=""):
        self.chief, self.write_dir, self.label = chief, write_dir, label


def _make_strategy(name, run_dir, quiet=False):
    """(strategy, role) for --strategy ``name``. A multi-worker strategy must exist before
    TensorFlow runs any op, so this comes before the data and the model."""
    import tempfile

    import tensorflow as tf

    from alae_tf.cli import stderr_captured
    from alae_tf.distribute import ClusterError, cluster_from_tf_config, is_chief_task

    if name == "mirrored":
        return tf.distribute.MirroredStrategy(), _Role(write_dir=run_dir)
    if name != "multi_worker":
        return tf.distribute.get_strategy(), _Role(write_dir=run_dir)
    try:
        task_type, index, cluster = cluster_from_tf_config()
    except ClusterError as e:
        raise UsageError(f"--strategy multi_worker: {e}") from None
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    label = f"{task_type} {index} of {workers} workers"
    print(f"{label}: joining the cluster (this waits until every worker has started)",
          flush=True)
    with stderr_captured() if quiet else contextlib.nullcontext():
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        tf.constant(0)  # device set-up and the cluster's connection logs happen here
    if is_chief_task(task_type, index, cluster):
        return strategy, _Role(write_dir=run_dir, label=label)
    # Keras's convention: the other workers save too (a checkpoint save is a collective
    # step), to a temporary directory removed at the end.
    temp = tempfile.mkdtemp(prefix=f"alae-train-{task_type}{index}-")
    return strategy, _Role(chief=False, write_dir=temp, label=label)


def _save_final_model(model, run_dir, preset):
    """Writes run_dir/model.keras through a temporary file; a failed write leaves none.

    A model trained in mixed precision is saved as its float32 twin (the same weights,
    which are float32 anyway), so that loading model.keras anywhere computes in float32.
    """
    import tensorflow as tf

    from alae_tf.models.precision import policy_scope

    if model.compute_precision != "float32":
        with policy_scope("float32"):
            twin = _build_model(preset, model.seed)
        twin.set_weights(model.get_weights())
        twin.sync_level()
        model = twin

    final_path = os.path.join(run_dir, "model.keras")
    tmp_path = os.path.join(run_dir, f"model.tmp{os.getpid()}.keras")
    try:
        model.save(tmp_path)
        os.replace(tmp_path, final_path)
    except (OSError, tf.errors.OpError) as e:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise UsageError(f"cannot write {final_path} ({write_error_reason(e)}); the checkpoints "
                         "are saved: free some space and re-run the same command to write it"
                         ) from None


def train(args, quiet=False):
    settings, recorded = resolve_settings(args)
    if args.dry_run:
        _print_architecture(settings)
        return 0
    if recorded is not None:  # refuses a settings change before anything is built or written
        settings.check_resumes(recorded)
    strategy, role = _make_strategy(settings.strategy, settings.run_dir, quiet)
    lost_workers_reported = (_worker_losses_reported(settings.run_dir, role) if role.label
                             else contextlib.nullcontext())  # role.label: a multi-worker run
    with lost_workers_reported:
        if role.chief:
            return _train_as_chief(settings, strategy, role)
        # Another worker: it reads the chief's run directory (which the chief creates)
        # and writes only to its temporary directory.
        try:
            return _train_in(settings, strategy, role)
        finally:
            shutil.rmtree(role.write_dir, ignore_errors=True)


def _print_architecture(settings):
    """--dry-run: the image and latent sizes, and the parameter count of each network."""
    from alae_tf.models.alae import NETWORK_NAMES

    preset = settings.preset
    print(f"preset {preset.name}: {preset.resolution}x{preset.resolution}x"
          f"{preset.channels}, latent {preset.latent_dim}")
    model = _build_model(preset, settings.seed)
    counts = {name: sum(math.prod(v.shape) for v in model.network(name).trainable_weights)
              for name in NETWORK_NAMES}
    for name, count in counts.items():
        print(f"{name:<10} {count:>12,d} parameters")
    print(f"{'total':<10} {sum(counts.values()):>12,d} trainable parameters (EMA copies and "
          "the average w not counted)")


@contextlib.contextmanager
def _worker_losses_reported(run_dir, role):
    """A multi-worker run whose peer died or hung: one line, exit 4, checkpoints kept."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.DeadlineExceededError, tf.errors.InternalError) as e:
        if isinstance(e, tf.errors.InternalError) and "Collective" not in str(e):
            raise
        detail = clean_message(e) or type(e).__name__
        raise WorkerLost(
            f"{role.label}: lost contact with the other workers ({detail[:160]}); the "
            f"checkpoints in {run_dir} are kept: restart every worker with the same "
            "command to resume from the newest") from None


def _train_as_chief(settings, strategy, role):
    """Trains as the process that writes the run: it creates the run directory, and a
    first try that fails before writing anything leaves none."""
    created = not os.path.isdir(settings.run_dir)
    ensure_writable_dir(settings.run_dir)
    try:
        return _train_in(settings, strategy, role)
    except BaseException:
        if created:  # os.rmdir removes it only while empty: a failed first try leaves nothing
            with contextlib.suppress(OSError):
                os.rmdir(settings.run_dir)
        raise


def _training_data(strategy, preset, batch_size, seed):
    """The training batches of one fit() segment: a dataset of global batches, which Keras
    splits across local replicas, or for a multi-worker run one input pipeline per worker,
    each batching its own shard of the examples (``make_dataset``'s ``shard``)."""
    from alae_tf.data import make_dataset
    from alae_tf.distribute import is_multi_worker

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


def _check_workers_agree(strategy, run_dir, newest):
    """Every worker must see the chief's checkpoints: compares each one's newest."""
    from alae_tf.distribute import gather_from_workers, is_multi_worker

    if not is_multi_worker(strategy):
        return
    epochs = gather_from_workers(strategy, newest)
    if len(set(epochs)) > 1:
        raise UsageError(
            f"the workers see different checkpoints in {run_dir!r} (newest epoch by worker: "
            f"{', '.join(map(str, epochs))}; 0 means none): every worker must see the chief's "
            "run directory, on a shared filesystem or GCS, at the same path")


def _train_in(settings, strategy, role):
    """train() once the run directory exists and is writable (by the chief)."""
    from alae_tf.runs import record_config

    num_examples = _count_examples(settings)
    _check_batches_split(settings.preset, strategy)
    model, checkpoint, initial_epoch = _restore_model(settings, strategy, role)
    _check_epochs_go_on(settings, initial_epoch)
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
    return _finish(model, settings, role, reached, tally.seen_here(reached), time.time() - start)


def _count_examples(settings):
    """Opens the data source before anything is written to the run directory, so that bad
    data settings fail first; returns the number of training examples."""
    from alae_tf.data import check_batch_size, open_source

    preset = settings.preset
    source = open_source(preset.dataset, resolution=preset.resolution, channels=preset.channels,
                         max_image_pixels=preset.max_image_pixels)
    check_batch_size(source, preset.schedule.largest_batch_size)
    return source.num_examples


def _check_batches_split(preset, strategy):
    replicas = strategy.num_replicas_in_sync
    bad_batch = [b for b in preset.schedule.batch_sizes if b % replicas]
    if bad_batch:
        raise UsageError(f"a global batch of {bad_batch[0]} does not split evenly across "
                         f"{replicas} replicas; give --batch-size a multiple of {replicas}")


def _restore_model(settings, strategy, role):
    """(model, checkpoint, epoch): the compiled model, restored from the run's newest
    readable checkpoint (epoch 0: none, a new run)."""
    import keras

    from alae_tf.models.precision import policy_scope
    from alae_tf.runs import RunCheckpoint

    preset = settings.preset
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope(), policy_scope(settings.precision):
        model = _build_model(preset, settings.seed)
        model.compile(learning_rate=preset.learning_rate, adam_betas=preset.adam_betas,
                      jit_compile=settings.jit_compile)
        checkpoint = RunCheckpoint(model, role.write_dir,
                                   max_to_keep=settings.keep_checkpoints or None,
                                   read_dir=settings.run_dir)
        # Before restoring: every worker must restore the same checkpoint, the chief's.
        _check_workers_agree(strategy, settings.run_dir, checkpoint.newest_number())
        initial_epoch = checkpoint.restore_latest(quarantine=role.chief)
        checkpoint.remove_stale_temps()
    return model, checkpoint, initial_epoch


def _check_epochs_go_on(settings, initial_epoch):
    epochs = settings.preset.epochs
    if epochs < initial_epoch:
        raise UsageError(f"{settings.run_dir!r} is trained to epoch {initial_epoch}; --epochs "
                         f"{epochs} would go back: give --epochs above {initial_epoch} to "
                         "train on (nothing was changed)")


def _already_trained(model, settings, role, initial_epoch):
    run_dir = settings.run_dir
    if role.chief and not os.path.isfile(os.path.join(run_dir, "model.keras")):
        _save_final_model(model, run_dir, settings.preset)  # a previous run stopped first
        print(f"wrote {os.path.join(run_dir, 'model.keras')}")
    print(f"{run_dir}: already trained to epoch {initial_epoch} of {settings.preset.epochs}; "
          "nothing to do (raise --epochs to train longer)")
    return 0


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
        role: what this process writes (``_Role``).
        checkpoint: the run's ``RunCheckpoint``.
        tally: the ``_ImageTally`` that records each checkpoint's progress.
    """

    def __init__(self, settings, strategy, role, checkpoint, tally):
        import keras

        from alae_tf.distribute import is_multi_worker
        from alae_tf.runs import held_out_images
        from alae_tf.training.callbacks import OverallProgress

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
        import keras

        from alae_tf.training.callbacks import (
            CheckpointCallback,
            EpochLearningRate,
            ImageGridCallback,
            NonFiniteGuard,
            TimeBudget,
        )

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
        f"without saving ({kept}); lower --learning-rate (in a new --run-dir if this "
        "one has checkpoints)")


def _finish(model, settings, role, reached, images_seen, elapsed):
    """Writes model.keras (the chief) and prints the closing lines."""
    run_dir = settings.run_dir
    if role.chief:
        _save_final_model(model, run_dir, settings.preset)
    speed = f"{elapsed:.0f} s ({images_seen / max(elapsed, 1e-9):.0f} images/s)"
    if role.label:  # a multi-worker run: every worker must print the same fingerprint
        from alae_tf.distribute import weights_fingerprint

        print(f"{role.label}: weights fingerprint {weights_fingerprint(model.weights)}")
    if not role.chief:
        print(f"done: epoch {reached}, step {int(model.step.numpy())}, {speed}; {role.label}: "
              f"the chief wrote the run's files in {run_dir}")
        return 0
    print(f"done: epoch {reached}, step {int(model.step.numpy())}, {speed}. Next: alae-eval "
          f"{run_dir}; alae-sample {run_dir}")
    return 0


def main(argv=None):
    verbose, strategy = early_flags(argv)
    quiet = quiet_tensorflow(verbose, first_op=strategy != "multi_worker")
    args = build_parser().parse_args(argv)
    return run_main("alae-train", lambda: train(args, quiet))


if __name__ == "__main__":
    raise SystemExit(main())

