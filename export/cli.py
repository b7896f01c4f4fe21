"""alae-export: writes a trained run's EMA networks as a TF Serving SavedModel, OUT/NAME/VERSION."""

import os

from alae_tf.training.cli import ArgumentParser, UsageError, positive_int, run_main


def build_parser():
    parser = ArgumentParser(
        prog="alae-export",
        description="Export a trained run for TF Serving: OUT/NAME/VERSION/ holds "
        "saved_model.pb and variables/ (the EMA networks at full resolution).")
    parser.add_argument("run_dir", help="a run directory written by alae-train")
    parser.add_argument("out", help="the model base directory (TF Serving's --model_base_path "
                        "is OUT/NAME)")
    parser.add_argument("--format", choices=("saved_model",), default="saved_model",
                        help="export format (default: saved_model)")
    parser.add_argument("--name", default=None,
                        help="model name, the folder under OUT and the NAME of TF Serving's "
                        "/v1/models/NAME (default: the run's preset)")
    parser.add_argument("--version", type=positive_int, default=1,
                        help="version folder under OUT/NAME (default: 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing OUT/NAME/VERSION")
    return parser


def export(args):
    from alae_tf.export.saved_model import ExportError, export_saved_model
    from alae_tf.training.runs import load_trained_model

    model, preset, _, epoch = load_trained_model(args.run_dir)
    name = args.name or preset.name
    if not name or os.sep in name or name in (".", ".."):
        raise UsageError(f"--name {name!r} must be a plain folder name")
    path = os.path.join(args.out, name, str(args.version))
    try:
        export_saved_model(model, preset, path, overwrite=args.overwrite)
    except ExportError as e:
        raise UsageError(f"{args.run_dir}: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot write {path} ({e.strerror or e})") from None
    print(f"wrote {path} ({preset.name}, epoch {epoch}, EMA networks); signatures: "
          f"saved_model_cli show --dir {path} --all; serve it: alae-serve "
          f"{os.path.join(args.out, name)}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_main("alae-export", lambda: export(args))


if __name__ == "__main__":
    raise SystemExit(main())
