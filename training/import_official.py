"""alae-import: turns an official ALAE checkpoint (podgorskiy/ALAE) into a run directory.

The run directory is like one ``alae-train`` finished: config.json (a preset built from the
official YAML config), a checkpoint at the last level of detail with the trained and EMA
networks and fresh optimizer state, and model.keras. ``alae-eval``, ``alae-sample``,
``alae-export``, ``alae-serve`` and ``alae-demo`` use it as any run; ``alae-train --run-dir DIR
--epochs N`` fine-tunes it on the data source given here.
"""

import contextlib
import dataclasses
import os
import shutil
import time

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    positive_float,
    positive_int,
    quiet_tensorflow,
    run_main,
)


def build_parser():
    parser = ArgumentParser(
        prog="alae-import",
        description="Import a checkpoint of the authors' ALAE code (podgorskiy/ALAE, e.g. "
        "training_artifacts/ffhq/model_submitted.pth) with its YAML config into a run "
        "directory. The file is read without PyTorch and without running code from it.")
    parser.add_argument("checkpoint", help="the official .pth file (zip or legacy layout)")
    parser.add_argument("--config", required=True,
                        help="the official YAML config it was trained with (configs/*.yaml)")
    parser.add_argument("--run-dir", default=None,
                        help="the run directory to create; it must not exist or be empty "
                        "(default: runs/official_NAME, NAME from the config)")
    parser.add_argument("--dataset", default=None,
                        help="the data source a fine-tuning run (alae-train --run-dir DIR "
                        "--epochs N) trains on: 'folder:PATH' or 'tfds:NAME' "
                        "(default: folder:data/NAME)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="global batch size of a fine-tuning run at every level (default: "
                        "the config's LOD_2_BATCH_8GPU, sized for 8 GPUs)")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="learning rate of a fine-tuning run (default: the config's)")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None,
                        help="training steps per epoch of a fine-tuning run (default: one pass "
                        "over the data)")
    parser.add_argument("--max-checkpoint-mb", type=positive_int, default=None,
                        help="the most memory reading the file may take, in MB (default: "
                        "2048, about 2.4 times what the largest published file needs); a "
                        "file that asks for more is refused before it is allocated")
    parser.add_argument("--directions", default=None, metavar="FOLDER",
                        help="also keep the authors' attribute directions in the run (their "
                        "principal_directions folder: direction_N.npy, made for the FFHQ "
                        "model), for alae-photo --edit")
    add_verbose_flag(parser)
    return parser


def _check_target(run_dir):
    if os.path.exists(run_dir) and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
        raise UsageError(f"{run_dir!r} exists and is not an empty directory; give a new "
                         "--run-dir (nothing was written)")


def _write_run(model, preset, run_dir, steps_per_epoch):
    """Writes the run into a temporary sibling directory, then renames it into place: a run
    directory is complete or absent, even if the process dies or the disk fills."""
    import tensorflow as tf

    from alae_tf.errors import write_error_reason
    from alae_tf.runs import RunCheckpoint, RunSettings, record_config

    parent = os.path.dirname(os.path.abspath(run_dir))
    prefix = os.path.join(parent, f".{os.path.basename(run_dir)}.importing")
    _remove_dead_imports(prefix)
    staging = f"{prefix}{os.getpid()}"
    try:
        os.makedirs(staging)
        settings = RunSettings(preset, run_dir=staging, precision="float32",
                               steps_per_epoch=steps_per_epoch)
        record_config(settings)
        checkpoint = RunCheckpoint(model, staging, max_to_keep=settings.keep_checkpoints)
        checkpoint.epoch.assign(preset.epochs)
        checkpoint.manager.save(checkpoint_number=preset.epochs)
        model.save(os.path.join(staging, "model.keras"))
        if os.path.isdir(run_dir):
            os.rmdir(run_dir)  # empty (checked): the rename needs it gone
        os.rename(staging, run_dir)
    except (OSError, tf.errors.OpError) as e:
        raise UsageError(f"cannot write {run_dir!r} ({write_error_reason(e)}); nothing was "
                         "left there: free some space and run alae-import again") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)


def _remove_dead_imports(prefix):
    """Removes the staging directories of imports that were killed (their process is gone)."""
    import glob

    for path in glob.glob(f"{glob.escape(prefix)}*"):
        pid = path[len(prefix):]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # alive, under another user


def import_checkpoint(args):
    from alae_tf.official.config import preset_from_config, read_official_config
    from alae_tf.official.torch_file import TorchFileError, read_torch_file
    from alae_tf.official.weights import check_sizes, checked_models

    config = read_official_config(args.config)
    run_dir = args.run_dir or os.path.join("runs", f"official_{config.name}")
    _check_target(run_dir)
    directions = None
    if args.directions is not None:  # read first: a wrong folder costs no import
        from alae_tf.faces.directions import read_author_directions

        directions = read_author_directions(args.directions, config.latent_dim)
    start = time.perf_counter()
    limit = {} if args.max_checkpoint_mb is None else {"max_bytes": args.max_checkpoint_mb << 20}
    try:
        checkpoint = read_torch_file(args.checkpoint, **limit)
    except OSError as e:
        raise UsageError(f"cannot read {args.checkpoint!r} ({e.strerror or e})") from None
    except TorchFileError as e:
        hint = "; --max-checkpoint-mb raises it" if e.setting == "max_bytes" else ""
        raise UsageError(f"{args.checkpoint}: {e}{hint}") from None
    read_seconds = time.perf_counter() - start
    models = checked_models(checkpoint, os.path.basename(args.checkpoint))

    # TensorFlow loads only now (presets import it): a file refused above costs no TensorFlow
    # start-up.
    quiet_tensorflow(args.verbose)
    preset = preset_from_config(config, args.dataset or f"folder:data/{config.name}")
    check_sizes(preset, models, os.path.basename(args.checkpoint))  # before building anything
    import keras

    from alae_tf.models.presets import build_model
    from alae_tf.official.weights import EMA_NAMES, TRAINED_NAMES, load_official_weights

    # The fine-tuning recipe is part of the run, as alae-train's flags are of a new run.
    if args.batch_size is not None:
        preset = dataclasses.replace(preset, batch_size=args.batch_size, lod_batch_sizes=())
    if args.learning_rate is not None:
        preset = dataclasses.replace(preset, learning_rate=args.learning_rate,
                                     lod_learning_rates=())
    keras.utils.set_random_seed(0)
    model = build_model(preset)
    model.compile(learning_rate=preset.learning_rate, adam_betas=preset.adam_betas)
    report = load_official_weights(model, checkpoint, os.path.basename(args.checkpoint))
    model.set_level(model.max_level)
    _write_run(model, preset, run_dir, args.steps_per_epoch)
    if directions:
        from alae_tf.faces.directions import save_directions

        save_directions(run_dir, directions, source=f"the authors' {args.directions}")
        print(f"kept {len(directions)} attribute directions ({', '.join(directions)}) in "
              f"{run_dir}/directions")
    for note in report.notes:
        print(f"note: {note}")
    if config.z_regression:
        print("note: the config trains E against z (Z_REGRESSION); alae-train's latent loss "
              "compares with w, so fine-tuning uses the paper's loss")
    usual = {**TRAINED_NAMES, **{f"{k}_ema": v for k, v in EMA_NAMES.items()}}
    copies = ("the trained networks and their EMA (_s) copies" if report.sources == usual else
              ", ".join(f"{k} from {v}" for k, v in report.sources.items()))
    print(f"imported {report.tensors} tensors ({report.parameters:,} numbers) from "
          f"{args.checkpoint} in {read_seconds:.1f} s: StyleALAE {preset.resolution} px, "
          f"{preset.channels} channel(s), latent {preset.latent_dim}; {copies}")
    print(f"wrote {run_dir}: try alae-sample {run_dir}, or alae-export {run_dir} OUT; the "
          f"reference samples with --truncation-psi {config.truncation_psi:g}")
    if preset.face_alignment != "none":
        print(f"photos: alae-photo {run_dir} PHOTO --out DIR crops them as the model's "
              f"training faces were ({preset.face_alignment} alignment)")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_main("alae-import", lambda: import_checkpoint(args))


if __name__ == "__main__":
    raise SystemExit(main())
