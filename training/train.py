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
DEFAULT_KEEP_CHECKPOINTS = 3


def build_parser():
    from alae_tf.data import DEFAULT_MAX_IMAGE_PIXELS
    from alae_tf.precision import PRECISIONS
    from alae_tf.presets import PRESETS

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
                        "README's benchmark figures)")
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
                        "share (see the README) (default: 'default', one device)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=1,
                        help="epochs between checkpoints (default: 1)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any preset field, e.g. --set r1_gamma=5 --set "
                        "adam_betas=[0.5,0.99] --set g_output=sigmoid (JSON values; "
                        "repeatable; recorded with the run; see alae_tf.presets.Preset)")
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

    from alae_tf.presets import get_preset

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


def _recorded_run(run_dir):
    """(preset, settings) of the run in ``run_dir`` once it has a checkpoint, else None."""
    from alae_tf.runs import has_checkpoints, read_config

    if not os.path.isfile(os.path.join(run_dir, "config.json")) or not has_checkpoints(run_dir):
        return None
    return read_config(run_dir)


def _build_model(preset, seed):
    from alae_tf.presets import build_model

    try:
        return build_model(preset, seed=seed)
    except ValueError as e:  # a preset field out of range, most likely from --set
        raise UsageError(f"cannot build preset {preset.name} ({e}); check the --set values"
                         ) from None


def _print_parameter_counts(model):
    from alae_tf.model import NETWORK_NAMES

    counts = {name: sum(math.prod(v.shape) for v in model.network(name).trainable_weights)
              for name in NETWORK_NAMES}
    for name, count in counts.items():
        print(f"{name:<10} {count:>12,d} parameters")
    print(f"{'total':<10} {sum(counts.values()):>12,d} trainable parameters (EMA copies and "
          "the average w not counted)")


def _auto_precision(family):
    import tensorflow as tf

    from alae_tf.precision import default_precision

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

    from alae_tf.precision import policy_scope

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
    run_dir = args.run_dir or os.path.join("runs", args.preset or DEFAULT_PRESET)
    recorded_preset, recorded_settings = _recorded_run(run_dir) or (None, {})
    if recorded_preset is not None and args.preset not in (None, recorded_preset.name):
        raise UsageError(f"{run_dir!r} holds a {recorded_preset.name} run, not {args.preset}; "
                         f"resume it with --preset {recorded_preset.name} (or without "
                         "--preset), or pick a new --run-dir")
    preset = _preset_from_args(args, recorded_preset)
    seed = args.seed if args.seed is not None else recorded_settings.get("seed", 0)
    steps = (args.steps_per_epoch if args.steps_per_epoch is not None
             else recorded_settings.get("steps_per_epoch"))
    keep = (args.keep_checkpoints if args.keep_checkpoints is not None
            else recorded_settings.get("keep_checkpoints", DEFAULT_KEEP_CHECKPOINTS))
    if args.precision is None and recorded_preset is not None:
        precision = recorded_settings.get("precision", "float32")  # older runs: float32
    else:
        precision = args.precision or "auto"
    if precision == "auto":
        precision = _auto_precision(preset.family)
    args.seed, args.steps_per_epoch, args.keep_checkpoints = seed, steps, keep
    args.precision = precision
    if args.dry_run:

        print(f"preset {preset.name}: {preset.resolution}x{preset.resolution}x"
              f"{preset.channels}, latent {preset.latent_dim}")
        _print_parameter_counts(_build_model(preset, args.seed))
        return 0

    strategy, role = _make_strategy(args.strategy, run_dir, quiet)
    multi_worker = bool(role.label)
    with _worker_losses_reported(run_dir, role) if multi_worker else contextlib.nullcontext():
        if role.chief:
            return _train_as_chief(run_dir, preset, args, strategy, role)
        # Another worker: it reads the chief's run directory (which the chief creates)
        # and writes only to its temporary directory.
        try:
            return _train_in(run_dir, preset, args, strategy, role)
        finally:
            shutil.rmtree(role.write_dir, ignore_errors=True)


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


def _train_as_chief(run_dir, preset, args, strategy, role):
    """Trains as the process that writes the run: it creates the run directory, and a
    first try that fails before writing anything leaves none."""
    created = not os.path.isdir(run_dir)
    ensure_writable_dir(run_dir)
    try:
        return _train_in(run_dir, preset, args, strategy, role)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(run_dir)  # only while still empty: a failed first try leaves nothing
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


def _train_in(run_dir, preset, args, strategy, role):
    """train() once the run directory exists and is writable (by the chief)."""
    import keras

    from alae_tf.data import make_dataset
    from alae_tf.distribute import is_multi_worker
    from alae_tf.precision import policy_scope
    from alae_tf.runs import RunCheckpoint, held_out_images, record_config
    from alae_tf.training.callbacks import (
        CheckpointCallback,
        EpochLearningRate,
        ImageGridCallback,
        NonFiniteGuard,
        TimeBudget,
    )

    # Checks the data settings before anything is written to the run directory.
    _, num_examples = make_dataset(
        preset.dataset, resolution=preset.resolution, channels=preset.channels,
        batch_size=preset.schedule.largest_batch_size,
        pixel_range=preset.pixel_range, seed=args.seed, max_image_pixels=preset.max_image_pixels,
    )
    settings = {"seed": args.seed, "steps_per_epoch": args.steps_per_epoch,
                "keep_checkpoints": args.keep_checkpoints, "precision": args.precision}
    record_config(run_dir, preset, settings, write=False)  # refuses a settings change now

    replicas = strategy.num_replicas_in_sync
    bad_batch = [b for b in preset.schedule.batch_sizes if b % replicas]
    if bad_batch:
        raise UsageError(f"a global batch of {bad_batch[0]} does not split evenly across "
                         f"{replicas} replicas; give --batch-size a multiple of {replicas}")

    keras.utils.set_random_seed(args.seed)
    with strategy.scope(), policy_scope(args.precision):
        model = _build_model(preset, args.seed)
        model.compile(learning_rate=preset.learning_rate, adam_betas=preset.adam_betas,
                      jit_compile=args.jit_compile == "on")
        checkpoint = RunCheckpoint(model, role.write_dir,
                                   max_to_keep=args.keep_checkpoints or None, read_dir=run_dir)
        # Before restoring: every worker must restore the same checkpoint, the chief's.
        _check_workers_agree(strategy, run_dir, checkpoint.newest_number())
        initial_epoch = checkpoint.restore_latest(quarantine=role.chief)
        checkpoint.remove_stale_temps()

    if args.epochs is not None and args.epochs < initial_epoch:
        raise UsageError(f"{run_dir!r} is trained to epoch {initial_epoch}; --epochs "
                         f"{args.epochs} would go back: give --epochs above {initial_epoch} to "
                         "train on (nothing was changed)")
    if role.chief:
        record_config(run_dir, preset, settings)
    if initial_epoch >= preset.epochs:
        if role.chief and not os.path.isfile(os.path.join(run_dir, "model.keras")):
            _save_final_model(model, run_dir, preset)  # a previous run stopped before writing it
            print(f"wrote {os.path.join(run_dir, 'model.keras')}")
        print(f"{run_dir}: already trained to epoch {initial_epoch} of {preset.epochs}; "
              "nothing to do (raise --epochs to train longer)")
        return 0
    if initial_epoch:
        print(f"resuming {run_dir} from epoch {initial_epoch} (step {int(model.step.numpy())})")

    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    grid_images = held_out_images(preset, 16)
    tensorboard = (keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False)
                   if role.chief else None)
    schedule = preset.schedule
    start, images_seen = time.time(), 0
    # Images seen and training seconds before this process, for the learning curves (a run
    # from before progress.json existed starts its record here).
    past = checkpoint.progress.read().get(initial_epoch, {"images_seen": 0, "train_seconds": 0})
    for level, first, last in schedule.segments(initial_epoch):
        batch_size = schedule.batch_size_at(level)
        steps_per_epoch = args.steps_per_epoch or num_examples // batch_size
        if schedule.starts_level(first):
            # A new level: a new fade-in from this step on, and fresh optimizer state (as in
            # the reference).
            model.set_level(level, fade_steps=schedule.fade_steps(level, steps_per_epoch))
            model.reset_optimizers(schedule.learning_rate_at_epoch(first))
        else:
            # Resumed mid-level: the checkpoint restored the level, its fade and the optimizers.
            model.set_learning_rate(schedule.learning_rate_at_epoch(first))
        # A resumed run draws a fresh, seeded data order: the seed depends on the epoch.
        dataset = _training_data(strategy, preset, batch_size, args.seed + first)
        guard = NonFiniteGuard()
        budget = TimeBudget(start + args.time_budget * 60 if args.time_budget else float("inf"),
                            strategy=strategy if is_multi_worker(strategy) else None)
        callbacks = [
            guard,
            budget,
            EpochLearningRate(schedule),
            CheckpointCallback(
                checkpoint, args.checkpoint_every, final_epoch=last, guard=guard,
                after_save=lambda done, first=first, seen=images_seen, size=batch_size,
                steps=steps_per_epoch: checkpoint.progress.record(
                    done, model.step.numpy(),
                    past["images_seen"] + seen + (done - first) * steps * size,
                    past["train_seconds"] + time.time() - start)),
        ]
        if role.chief:  # the other workers of a multi-worker run write no grids or logs
            callbacks += [
                ImageGridCallback(grid_images, run_dir, preset.pixel_range,
                                  every=args.grid_every, final_epoch=last, seed=args.seed,
                                  guard=guard),
                tensorboard,
            ]
        growth = (f"level {level} ({model.level_resolution} px), "
                  if schedule.num_levels > 1 else "")
        print(f"training {preset.name} on {preset.dataset} ({num_examples} images): "
              f"{growth}epochs {first + 1}..{last}, {steps_per_epoch} steps of {batch_size} "
              f"images, {strategy.num_replicas_in_sync} replica(s)"
              f"{' (' + role.label + ')' if role.label else ''}, {args.precision}; run dir "
              f"{run_dir}")
        # shuffle=False: the tf.data pipeline shuffles (Keras would warn that it ignores it).
        model.fit(dataset, epochs=last, initial_epoch=first, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, verbose=verbose, shuffle=False)
        if guard.tripped:
            step, epoch, name, value = guard.tripped
            last_good = checkpoint.latest
            kept = (f"the newest checkpoint is still {os.path.basename(last_good)}"
                    if last_good else "no checkpoint was written")
            raise TrainingDiverged(
                f"training diverged at step {step} (epoch {epoch}): {name} = {value}; stopped "
                f"without saving ({kept}); lower --learning-rate (in a new --run-dir if this "
                "one has checkpoints)")
        reached = budget.stopped_at or last
        images_seen += (reached - first) * steps_per_epoch * batch_size
        if budget.stopped_at:
            print(f"time budget of {args.time_budget:g} minutes used: stopped after epoch "
                  f"{reached} of {preset.epochs} (the same command trains on from there)")
            break
    elapsed = time.time() - start

    if role.chief:
        _save_final_model(model, run_dir, preset)
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

