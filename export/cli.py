"""alae-export: writes a trained run's EMA networks as a TF Serving SavedModel (OUT/NAME/VERSION)
or as TF.js graph models with a manifest (OUT/NAME)."""

import contextlib
import os

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    early_flags,
    positive_int,
    quiet_tensorflow,
    refuse_a_missing_run,
    run_main,
)
from alae_tf.errors import write_error_reason


def build_parser():
    parser = ArgumentParser(
        prog="alae-export",
        description="Export a trained run's EMA networks at full resolution. saved_model: "
        "OUT/NAME/VERSION/ holds saved_model.pb and variables/ for TF Serving. tfjs: OUT/NAME/ "
        "holds manifest.json and the encoder, generator, mapping and reconstruct TF.js graph "
        "models, for the web demo (alae-demo --models OUT).")
    parser.add_argument("run_dir", help="a run directory written by alae-train")
    parser.add_argument("out", help="the model base directory (TF Serving's --model_base_path "
                        "is OUT/NAME)")
    parser.add_argument("--format", choices=("saved_model", "tfjs"), default="saved_model",
                        help="export format (default: saved_model)")
    parser.add_argument("--quantize", choices=("float16", "uint8"), default=None,
                        help="tfjs only: store weights as float16 (half the size) or uint8 "
                        "(a quarter; pixel error up to about 0.1 on the shipped mnist_mlp); "
                        "default float32")
    parser.add_argument("--name", default=None,
                        help="model name, the folder under OUT and the NAME of TF Serving's "
                        "/v1/models/NAME (default: the run's preset)")
    parser.add_argument("--version", type=positive_int, default=1,
                        help="saved_model only: version folder under OUT/NAME (default: 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing OUT/NAME/VERSION")
    add_verbose_flag(parser)
    return parser


@contextlib.contextmanager
def _export_errors(run_dir, path):
    """An export's expected failures as one-line usage errors."""
    import tensorflow as tf

    from alae_tf.export.core import ExportError

    try:
        yield
    except ExportError as e:
        raise UsageError(f"{run_dir}: {e}") from None
    except (OSError, tf.errors.OpError) as e:  # TF's own writes too: a full disk, a lost mount
        raise UsageError(f"cannot write {path} ({write_error_reason(e)})") from None


def export(args, quiet=False):
    from alae_tf.export.saved_model import export_saved_model
    from alae_tf.runs import load_trained_model

    if args.quantize and args.format != "tfjs":
        raise UsageError("--quantize applies to --format tfjs only (TF Serving loads float32)")
    model, preset, _, epoch = load_trained_model(args.run_dir)
    name = args.name or preset.name
    if not name or os.sep in name or name in (".", ".."):
        raise UsageError(f"--name {name!r} must be a plain folder name")
    if args.format == "tfjs":
        return export_browser(args, model, preset, name, epoch, quiet)
    from alae_tf.faces.directions import load_directions

    directions = load_directions(args.run_dir, model.latent_dim)
    path = os.path.join(args.out, name, str(args.version))
    with _export_errors(args.run_dir, path):
        export_saved_model(model, preset, path, overwrite=args.overwrite,
                           directions=directions)
    if directions:
        print(f"edit signatures: {len(directions)} attribute directions "
              f"({', '.join(directions)})")
    print(f"wrote {path} ({preset.name}, epoch {epoch}, EMA networks); signatures: "
          f"saved_model_cli show --dir {path} --all; serve it: alae-serve "
          f"{os.path.join(args.out, name)}")
    return 0


def export_browser(args, model, preset, name, epoch, quiet=False):
    from alae_tf.export.tfjs import export_tfjs, run_scores

    path = os.path.join(args.out, name)
    source = {"run_dir": args.run_dir, "epoch": epoch, "preset": preset.name}
    with _export_errors(args.run_dir, path):
        manifest = export_tfjs(model, preset, path, quantize=args.quantize,
                               overwrite=args.overwrite, scores=run_scores(args.run_dir),
                               source=source, quiet=quiet)
    sizes = ", ".join(f"{graph} {info['bytes'] / 1e6:.2f} MB"
                      for graph, info in manifest["graphs"].items())
    print(f"wrote {path} ({preset.name}, epoch {epoch}, EMA networks, "
          f"{manifest['quantization']} weights): {sizes}; show it: alae-demo --models "
          f"{args.out}, then open the printed URL with ?model={name}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if code := refuse_a_missing_run("alae-export", args.run_dir):
        return code
    quiet = quiet_tensorflow(early_flags(argv)[0])
    return run_main("alae-export", lambda: export(args, quiet))


if __name__ == "__main__":
    raise SystemExit(main())
