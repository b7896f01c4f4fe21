"""alae-eval: the paper's MNIST evaluation of a trained run, printed and written to metrics.json.

Scores, on the embedded held-out split (2,004 digits; train = the 7,996 training digits):
- representation: 1-NN and linear-SVM accuracy of the 50-D code w = E(x) ("short") and of the
  1,024-D last hidden layer of E ("long"), each for the EMA encoder (``/ema``) and for the raw
  training encoder (``/raw``, the one the reference evaluates), with raw pixels and PCA-50 as
  baselines;
- reconstruction: mean squared error of G(E(x)) in [0, 1] pixel units;
- sample quality: a small CNN digit classifier trained on the train split scores generated
  digits (fraction classified with confidence > 0.9) and checks that x and G(E(x)) get the
  same label.
Reconstructions and samples come from the EMA networks, without truncation.

With --fid and --ppl, any run (not only MNIST models) also gets the paper's image metrics: FID
of generations and of reconstructions, and perceptual path length in W (docs/metrics.md).
The scores are the library's (``alae_tf.metrics``, asked for by name); this application turns
flags into metric names and options, and prints, plots and writes what comes back.
"""

import os
import time

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    early_flags,
    non_negative_int,
    positive_int,
    quiet_tensorflow,
    refuse_a_missing_run,
    run_main,
    seed_int,
)

DEFAULT_IMAGES = 50_000
# The flag that sets each MetricOptions field an OptionError can be about.
_OPTION_FLAGS = {"fid_network": "--fid-network", "ppl_distance": "--ppl-distance"}


def build_parser():
    parser = ArgumentParser(prog="alae-eval", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory written by alae-train")
    parser.add_argument("--num-samples", type=positive_int, default=2000,
                        help="generated digits scored by the classifier (default: 2000)")
    parser.add_argument("--max-train", type=non_negative_int, default=0,
                        help="fit 1-NN/SVM on a seeded random subset of N training digits "
                        "(default: 0 = all 7,996)")
    parser.add_argument("--classifier-epochs", type=positive_int, default=6,
                        help="epochs of the digit classifier (default: 6)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of z and classifier")
    parser.add_argument("--all-checkpoints", action="store_true",
                        help="learning curves: score every kept checkpoint (w = E(x) 1-NN and "
                        "SVM, reconstruction MSE, label agreement, confident samples) and write "
                        "curves.json, curves.png and TensorBoard scalars (logs/eval); train "
                        "with alae-train --keep-checkpoints 0 to keep them all")
    _add_image_metric_flags(parser)
    add_verbose_flag(parser)
    return parser


def _add_image_metric_flags(parser):
    group = parser.add_argument_group("the paper's image metrics (docs/metrics.md)")
    group.add_argument("--fid", action="store_true",
                       help="FID of generations (no truncation, style mixing as the reference) "
                       "and of reconstructions of real training images")
    group.add_argument("--fid-images", type=positive_int, default=DEFAULT_IMAGES,
                       help=f"images per set (default: {DEFAULT_IMAGES:,}, as the paper; fewer "
                       "when the data has fewer)")
    group.add_argument("--fid-network", default=None,
                       help="features: 'digits' (the digit classifier: a digits-FID, not "
                       "comparable with published FIDs), 'inception-hub' or "
                       "'inception-hub:PATH' (TF-Hub's 2015-12-05 Inception, needs a network "
                       "or a local copy), a classify_image_graph_def.pb, or any .keras/.h5 "
                       "model (default: digits for MNIST models, else inception-hub)")
    group.add_argument("--fid-input-range", default="-1,1", metavar="LOW,HIGH",
                       help="pixel range a .keras/.h5 feature network expects (default: -1,1, "
                       "as keras.applications' InceptionV3)")
    group.add_argument("--ppl", action="store_true",
                       help="perceptual path length in W, full and end (epsilon 1e-4)")
    group.add_argument("--ppl-samples", type=positive_int, default=DEFAULT_IMAGES,
                       help=f"path samples (default: {DEFAULT_IMAGES:,}, as the paper)")
    group.add_argument("--ppl-distance", default=None,
                       help="'lpips:FILE.npz' (LPIPS VGG16, the published distance; weights "
                       "from the lpips package, see docs/metrics.md), 'digits' or 'pixels' "
                       "(stand-ins, not comparable with published PPLs) (default: digits for "
                       "MNIST models, else pixels)")
    group.add_argument("--dataset", default=None,
                       help="real images for FID: 'folder:PATH', 'tfds:NAME' or 'mnist' "
                       "(default: the run's data source)")
    group.add_argument("--metrics-batch-size", type=positive_int, default=64,
                       help="images per batch for FID and PPL (default: 64)")


def _input_range(text):
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--fid-input-range takes LOW,HIGH, got {text!r}") from None
    if not high > low:
        raise UsageError(f"--fid-input-range must be increasing, got {text!r}")
    return low, high


def metric_options(args):
    """The library's ``MetricOptions`` from the flags; a flag naming no known feature network,
    distance or range is a usage error."""
    from alae_tf.metrics import MetricOptions, generative

    input_range = (-1.0, 1.0)
    if args.fid and args.fid_network is not None:
        if not generative.is_feature_network(args.fid_network):
            raise UsageError(f"--fid-network {args.fid_network!r}: give "
                             f"{generative.FEATURE_NETWORKS}")
        if args.fid_network.endswith((".keras", ".h5")):
            input_range = _input_range(args.fid_input_range)
    if args.ppl and args.ppl_distance is not None:
        if not generative.is_path_distance(args.ppl_distance):
            raise UsageError(f"--ppl-distance {args.ppl_distance!r}: give "
                             f"{generative.PATH_DISTANCES}")
    return MetricOptions(
        seed=args.seed, num_samples=args.num_samples, max_train=args.max_train,
        classifier_epochs=args.classifier_epochs, fid_images=args.fid_images,
        fid_network=args.fid_network, fid_input_range=input_range,
        ppl_samples=args.ppl_samples, ppl_distance=args.ppl_distance, dataset=args.dataset,
        batch_size=args.metrics_batch_size)


def metric_names(args, preset):
    """The library's metric names the flags ask for ``preset``'s model: the MNIST protocol for
    an MNIST model, then FID and PPL when asked."""
    from alae_tf.metrics import MNIST_PROTOCOL
    from alae_tf.metrics.digits import is_mnist

    names = []
    if is_mnist(preset):
        names.extend(MNIST_PROTOCOL)
    elif not (args.fid or args.ppl):
        raise UsageError(
            f"alae-eval scores MNIST models (28 or 32 px, 1 channel); {args.run_dir!r} is "
            f"{preset.resolution} px with {preset.channels} channels; give --fid or --ppl "
            "for the image metrics of any model"
        )
    if args.fid:
        names.append("fid")
    if args.ppl:
        names.append("ppl")
    return names


def evaluate(args):
    if args.all_checkpoints:
        return evaluate_checkpoints(args)
    from alae_tf import metrics as library
    from alae_tf.runs import load_trained_model, write_json_atomic

    model, preset, _, epoch = load_trained_model(args.run_dir)
    names = metric_names(args, preset)
    options = metric_options(args)
    start = time.time()
    metrics = {"run_dir": args.run_dir, "epoch": epoch, "step": int(model.step.numpy())}
    try:
        metrics.update(library.compute(names, model, preset, options))
    except library.OptionError as e:
        raise UsageError(f"{_OPTION_FLAGS[e.option]}: {e}") from None
    metrics["seconds"] = round(time.time() - start, 1)

    path = os.path.join(args.run_dir, "metrics.json")
    write_json_atomic(path, metrics)
    if "representation" in metrics:
        _print_report(metrics)
    _print_image_metrics(metrics)
    print(f"written to {path} in {metrics['seconds']} s")
    return 0


def evaluate_checkpoints(args):
    """alae-eval --all-checkpoints: the learning curves of a run, one point per checkpoint."""
    from alae_tf.metrics.curves import learning_curves
    from alae_tf.runs import write_json_atomic

    curves = learning_curves(args.run_dir, metric_options(args))
    points, low_resolution = curves["points"], curves["skipped_low_resolution_epochs"]
    json_path = os.path.join(args.run_dir, "curves.json")
    write_json_atomic(json_path, curves)
    png_path = os.path.join(args.run_dir, "curves.png")
    plot_curves(curves, png_path)
    _write_curve_scalars(points, os.path.join(args.run_dir, "logs", "eval"))
    skipped = (f"; {len(low_resolution)} checkpoint(s) below full resolution skipped"
               if low_resolution else "")
    print(f"{len(points)} checkpoint(s) scored{skipped}: wrote {json_path}, {png_path} and "
          f"TensorBoard scalars in {os.path.join(args.run_dir, 'logs', 'eval')} "
          f"({curves['seconds']} s)")
    if len(points) == 1:
        print("only one checkpoint: train with alae-train --keep-checkpoints 0 to keep every "
              "epoch's")
    return 0


def _write_curve_scalars(points, log_dir):
    import tensorflow as tf

    from alae_tf.metrics.curves import CURVE_KEYS

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for point in points:
            for key in CURVE_KEYS:
                tf.summary.scalar(f"eval/{key}", point[key], step=point["step"])
    writer.close()


def plot_curves(curves, path):
    """Writes the learning-curve figure: scores against images seen and training time."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    from alae_tf.metrics.curves import CURVE_KEYS

    points = curves["points"]
    timed = all(p["train_seconds"] is not None for p in points)
    counted = all(p["images_seen"] is not None for p in points)
    axes_x = [("images_seen", "images seen", 1.0) if counted else ("step", "training step", 1.0)]
    if timed:
        axes_x.append(("train_seconds", "training wall time (minutes)", 1 / 60))
    figure, axes = plt.subplots(2, len(axes_x), figsize=(6.5 * len(axes_x), 8), squeeze=False)
    for column, (key, label, scale) in enumerate(axes_x):
        xs = [p[key] * scale for p in points]
        top, bottom = axes[0][column], axes[1][column]
        for name in ("w_ema_knn1", "w_ema_svm", "label_agreement", "confident_fraction"):
            top.plot(xs, [p[name] for p in points], marker="o", markersize=3,
                     label=CURVE_KEYS[name])
        top.axhline(curves["pca50"]["knn1"], color="grey", linestyle="--",
                    label="PCA-50 of pixels, 1-NN")
        top.set_ylabel("accuracy / fraction (held-out digits)")
        top.set_ylim(0, 1)
        bottom.plot(xs, [p["reconstruction_mse"] for p in points], marker="o", markersize=3,
                    color="tab:red")
        bottom.set_ylabel("reconstruction MSE (pixels in [0, 1])")
        for ax in (top, bottom):
            ax.set_xlabel(label)
            ax.grid(alpha=0.3)
        top.legend(fontsize=8, loc="lower right")
    figure.suptitle(f"{curves['preset']}: {curves['run_dir']}")
    figure.tight_layout()
    tmp = f"{path}.tmp{os.getpid()}.png"
    try:
        figure.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(figure)
        if os.path.exists(tmp):
            os.remove(tmp)


def _print_report(metrics):
    print(f"\n{metrics['run_dir']} (epoch {metrics['epoch']}, step {metrics['step']}): "
          f"{metrics['num_test']} held-out digits")
    print("features: w = E(x); features = E's last hidden layer; /ema = EMA encoder, "
          "/raw = training encoder (as the reference)")
    print(f"{'features':<18}{'dim':>6}{'1-NN':>9}{'lin. SVM':>10}")
    for name, scores in metrics["representation"].items():
        print(f"{name:<18}{scores['dim']:>6}{scores['knn1']:>9.4f}{scores['svm']:>10.4f}")
    samples = metrics["samples"]
    print(f"reconstruction MSE (pixels in [0, 1]): {metrics['reconstruction_mse']:.4f}")
    print(f"generated digits classified with confidence > 0.9: "
          f"{samples['confident_fraction']:.3f} (classifier test accuracy "
          f"{samples['classifier_test_accuracy']:.4f})")
    print(f"same label for x and G(E(x)): {samples['label_agreement']:.3f}")


def _print_image_metrics(scores):
    if "fid_generations" in scores:
        count = scores["fid_real_images"]
        print(f"{scores['fid_features']} of generations: {scores['fid_generations']:.3f}; of "
              f"reconstructions: {scores['fid_reconstructions']:.3f} ({count:,} images each)")
    if "ppl_full" in scores:
        print(f"PPL in W ({scores['ppl_distance']}): full {scores['ppl_full']:.2f}, end "
              f"{scores['ppl_end']:.2f} ({scores['ppl_samples']:,} samples)")


def main(argv=None):
    from alae_tf.errors import DataError

    args = build_parser().parse_args(argv)
    if code := refuse_a_missing_run("alae-eval", args.run_dir):
        return code
    quiet_tensorflow(early_flags(argv)[0])
    hints = {"batch_size": "--metrics-batch-size sets it"}
    if args.fid and not args.dataset:  # the run's own data source failed
        hints[DataError] = "give FID's real images with --dataset"
    return run_main("alae-eval", lambda: evaluate(args), hints=hints)


if __name__ == "__main__":
    raise SystemExit(main())
