"""alae-train: trains an ALAE with Keras fit(), resumably, into a run directory."""

import json
import sys

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    early_flags,
    non_negative_int,
    positive_float,
    positive_int,
    quiet_tensorflow,
    run_main,
    seed_int,
    stderr_captured,
)
from alae_tf.errors import TrainingDiverged

# What alae-train adds to the library's errors: the flag that sets the thing they are about.
HINTS = {
    TrainingDiverged: "lower --learning-rate (in a new --run-dir if this one has checkpoints)",
    "batch_size": "--batch-size sets it",
    "max_image_pixels": "--max-image-pixels sets it",
}


def build_parser():
    from alae_tf.data import DEFAULT_MAX_IMAGE_PIXELS
    from alae_tf.models.precision import PRECISIONS
    from alae_tf.models.presets import PRESETS
    from alae_tf.trainer import DEFAULT_PRESET

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


def preset_fields(args):
    """{preset field: value} the flags set: --dataset, --epochs, --max-image-pixels,
    --batch-size and --learning-rate (each replacing a per-level schedule with one value for
    every level), then the --set items, which the preset's types check later."""
    fields = {"dataset": args.dataset, "epochs": args.epochs,
              "max_image_pixels": args.max_image_pixels}
    if args.batch_size is not None:
        fields.update(batch_size=args.batch_size, lod_batch_sizes=())
    if args.learning_rate is not None:
        fields.update(learning_rate=args.learning_rate, lod_learning_rates=())
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.update(_set_items(args.set))
    return fields


def _set_items(items):
    """{field: value} from --set FIELD=VALUE items: JSON values, a bare word a string."""
    from alae_tf.trainer import settable_fields

    fields = settable_fields()
    values = {}
    for item in items:
        key, (_, sep, text) = _field_name(item), item.partition("=")
        if not sep or key not in fields:
            raise UsageError(f"--set {item!r}: give FIELD=VALUE with FIELD one of "
                             f"{', '.join(fields)}")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text  # a bare word: a string field such as g_output=sigmoid
    return values


def _field_name(item):
    """The field of a --set item: ``latent-dim=32`` sets latent_dim."""
    return item.partition("=")[0].strip().replace("-", "_")


def resolve_settings(args):
    """(settings, recorded): ``alae_tf.trainer.resolve_settings`` of the flags (a flag left
    out keeps a resumed run's recorded value), with the library's refusals of a preset, a
    --set item or a run directory said in flags."""
    from alae_tf.trainer import FieldError, OtherPreset
    from alae_tf.trainer import resolve_settings as resolve

    verbose = args.verbose if args.verbose is not None else 1 if sys.stdout.isatty() else 2
    try:
        return resolve(
            args.run_dir, args.preset, preset_fields(args), seed=args.seed,
            steps_per_epoch=args.steps_per_epoch, keep_checkpoints=args.keep_checkpoints,
            precision=args.precision, jit_compile=args.jit_compile == "on",
            strategy=args.strategy, checkpoint_every=args.checkpoint_every,
            grid_every=args.grid_every, time_budget=args.time_budget, verbose=verbose)
    except OtherPreset as e:
        raise UsageError(f"{e}; resume it with --preset {e.recorded} (or without --preset), "
                         "or pick a new --run-dir") from None
    except FieldError as e:  # the flags have the fields' types: the last --set of the field
        items = [item for item in args.set if _field_name(item) == e.field]
        if not items:
            raise
        raise UsageError(f"--set {items[-1]!r}: {e}") from None


def train(args, quiet=False):
    """alae-train's work: the flags' settings, then the dry-run report or the run."""
    from alae_tf.distribute import ClusterError
    from alae_tf.runs import RunDirNotWritable, SettingChanged
    from alae_tf.trainer import (
        BatchDoesNotSplit,
        EpochsGoBack,
        Trainer,
        UnbuildablePreset,
        architecture_lines,
    )

    try:
        settings, _ = resolve_settings(args)
        if args.dry_run:
            for line in architecture_lines(settings):
                print(line)
            return 0
        result = Trainer(settings, join_quietly=stderr_captured if quiet else None).run()
    except SettingChanged as e:
        raise UsageError(f"{e}, or pick a new --run-dir") from None
    except EpochsGoBack as e:
        raise UsageError(f"{e.run_dir!r} is trained to epoch {e.reached}; --epochs {e.epochs} "
                         f"would go back: give --epochs above {e.reached} to train on (nothing "
                         "was changed)") from None
    except RunDirNotWritable as e:
        raise UsageError(f"{e}; choose another --run-dir") from None
    except BatchDoesNotSplit as e:
        raise UsageError(f"{e}; give --batch-size a multiple of {e.replicas}") from None
    except UnbuildablePreset as e:
        raise UsageError(f"{e}; check the --set values") from None
    except ClusterError as e:
        raise UsageError(f"--strategy multi_worker: {e}") from None
    _print_closing_line(result, settings.preset.epochs)
    return 0


def _print_closing_line(result, epochs):
    run_dir = result.run_dir
    if result.already_trained:
        print(f"{run_dir}: already trained to epoch {result.epoch} of {epochs}; nothing to do "
              "(raise --epochs to train longer)")
        return
    speed = f"{result.seconds:.0f} s ({result.images_per_second:.0f} images/s)"
    if result.model_path is None:
        print(f"done: epoch {result.epoch}, step {result.step}, {speed}; {result.worker}: "
              f"the chief wrote the run's files in {run_dir}")
    else:
        print(f"done: epoch {result.epoch}, step {result.step}, {speed}. Next: alae-eval "
              f"{run_dir}; alae-sample {run_dir}")


def main(argv=None):
    verbose, strategy = early_flags(argv)
    quiet = quiet_tensorflow(verbose, first_op=strategy != "multi_worker")
    args = build_parser().parse_args(argv)
    return run_main("alae-train", lambda: train(args, quiet), hints=HINTS)


if __name__ == "__main__":
    raise SystemExit(main())

