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
of generations and of reconstructions, and perceptual path length in W
(``alae_tf.training.image_metrics``, docs/metrics.md).
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
    run_main,
    seed_int,
)
from alae_tf.training import image_metrics


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
    image_metrics.add_flags(parser)
    add_verbose_flag(parser)
    return parser


def _to_model_range(images_uint8, preset):
    """uint8 [N, 28, 28] digits -> float [N, R, R, 1] in the model's range (zero-padded)."""
    import numpy as np

    low, high = preset.pixel_range
    x = images_uint8.astype(np.float32)[..., None] / 255.0
    pad = (preset.resolution - 28) // 2
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return low + (high - low) * x


def _to_unit_range(images, preset):
    """Model outputs [N, R, R, 1] -> [N, 28, 28, 1] in [0, 1] units (the digit area)."""
    low, high = preset.pixel_range
    pad = (preset.resolution - 28) // 2
    if pad:
        images = images[:, pad:-pad, pad:-pad]
    return (images - low) / (high - low)


def _batched(fn, x, batch=500):
    import numpy as np

    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


def _codes(model, x, use_ema):
    """w = E(x) in batches, from the EMA or the raw encoder."""
    return _batched(lambda batch: model.encode(batch, use_ema), x)


def _check_scorable(preset, run_dir):
    if preset.channels != 1 or preset.resolution not in (28, 32):
        raise UsageError(
            f"alae-eval scores MNIST models (28 or 32 px, 1 channel); {run_dir!r} is "
            f"{preset.resolution} px with {preset.channels} channels; give --fid or --ppl "
            "for the image metrics of any model"
        )


def _digits(args, preset):
    """The train and held-out digits: uint8, labels, and in the model's range."""
    import numpy as np

    from alae_tf.data import load_embedded_mnist

    x_train_u8, y_train = load_embedded_mnist("train")
    x_test_u8, y_test = load_embedded_mnist("test")
    if args.max_train:  # a seeded subset: the embedded split is ordered by class
        keep = np.random.default_rng(args.seed).permutation(len(y_train))[: args.max_train]
        x_train_u8, y_train = x_train_u8[np.sort(keep)], y_train[np.sort(keep)]
    return (x_train_u8, y_train, x_test_u8, y_test,
            _to_model_range(x_train_u8, preset), _to_model_range(x_test_u8, preset))


def _digit_classifier(args, x_test_u8, y_test):
    """The sample-quality classifier, trained on all 7,996 train digits; and its accuracy."""
    import numpy as np

    from alae_tf.data import load_embedded_mnist
    from alae_tf.metrics import representation

    print("training the digit classifier ...", flush=True)
    digits, labels = load_embedded_mnist("train")
    classifier = representation.train_digit_classifier(
        digits[..., None].astype(np.float32) / 255.0, labels, epochs=args.classifier_epochs,
        seed=args.seed)
    originals = x_test_u8[..., None].astype(np.float32) / 255.0
    accuracy = float(np.mean(
        np.argmax(classifier.predict(originals, verbose=0), axis=1) == y_test))
    return classifier, accuracy


def _generation_scores(model, preset, args, x_test, x_test_u8, classifier):
    """(reconstruction MSE, classifier scores of samples and reconstructions), EMA networks."""
    import numpy as np
    import tensorflow as tf

    from alae_tf.metrics import representation

    reconstructions = _to_unit_range(_batched(model.reconstruct, x_test), preset)
    originals = x_test_u8[..., None].astype(np.float32) / 255.0
    mse = float(np.mean((reconstructions - originals) ** 2))
    z = tf.random.stateless_normal((args.num_samples, model.latent_dim), seed=(args.seed, 7))
    generated = _to_unit_range(_batched(model.generate, np.asarray(z)), preset)
    samples = representation.classifier_scores(
        classifier, generated, originals=originals, reconstructions=reconstructions)
    return mse, samples


def evaluate(args):
    if args.all_checkpoints:
        return evaluate_checkpoints(args)
    from alae_tf.runs import load_trained_model, write_json_atomic

    model, preset, _, epoch = load_trained_model(args.run_dir)
    image_metrics_only = not image_metrics.is_mnist(preset) and (args.fid or args.ppl)
    if not image_metrics_only:
        _check_scorable(preset, args.run_dir)
    if model.level != model.max_level:
        raise UsageError(
            f"{args.run_dir!r} is at level of detail {model.level} of {model.max_level} "
            f"({model.level_resolution} px); alae-eval scores full-resolution models: "
            "train longer"
        )
    start = time.time()
    metrics = {"run_dir": args.run_dir, "epoch": epoch, "step": int(model.step.numpy())}
    classifier = _ClassifierOnce(args)
    if not image_metrics_only:
        metrics.update(_mnist_metrics(args, model, preset, classifier))
    metrics.update(image_metrics.image_metrics(args, model, preset, classifier))
    metrics["seconds"] = round(time.time() - start, 1)

    path = os.path.join(args.run_dir, "metrics.json")
    write_json_atomic(path, metrics)
    if not image_metrics_only:
        _print_report(metrics)
    image_metrics.print_report(metrics)
    print(f"written to {path} in {metrics['seconds']} s")
    return 0


class _ClassifierOnce:
    """The digit classifier, trained on first use and kept: the MNIST scores, the digits-FID
    and the digit-feature PPL share it. Calling it returns the classifier."""

    def __init__(self, args):
        self.args, self.classifier, self.accuracy = args, None, None

    def __call__(self):
        if self.classifier is None:
            from alae_tf.data import load_embedded_mnist

            x_test_u8, y_test = load_embedded_mnist("test")
            self.classifier, self.accuracy = _digit_classifier(self.args, x_test_u8, y_test)
        return self.classifier


def _mnist_metrics(args, model, preset, classifier):
    """The paper's MNIST scores: representation, reconstruction MSE, classifier scores."""
    from alae_tf.metrics import representation
    from alae_tf.models.mlp.networks import MLPEncoder

    x_train_u8, y_train, x_test_u8, y_test, x_train, x_test = _digits(args, preset)
    metrics = {"num_train": len(x_train), "num_test": len(x_test), "representation": {}}
    features = {}
    for which, use_ema in (("ema", True), ("raw", False)):
        features[f"w/{which}"] = (_codes(model, x_train, use_ema), _codes(model, x_test, use_ema))
        encoder = model.encoder_ema if use_ema else model.encoder
        if isinstance(encoder, MLPEncoder):  # the "long" features of the paper
            features[f"features/{which}"] = (_batched(encoder.features, x_train),
                                             _batched(encoder.features, x_test))
    raw = (x_train_u8.reshape(len(x_train_u8), -1) / 255.0,
           x_test_u8.reshape(len(x_test_u8), -1) / 255.0)
    features["pixels"] = raw
    features["pca50"] = representation.pca_features(*raw, n_components=50, seed=args.seed)
    for name, (train_f, test_f) in features.items():
        print(f"scoring {name} ({train_f.shape[1]}-D) ...", flush=True)
        scores = representation.representation_scores(train_f, y_train, test_f, y_test,
                                                      seed=args.seed)
        metrics["representation"][name] = {"dim": int(train_f.shape[1]), **scores}

    metrics["reconstruction_mse"], metrics["samples"] = _generation_scores(
        model, preset, args, x_test, x_test_u8, classifier())
    metrics["samples"]["classifier_test_accuracy"] = classifier.accuracy
    metrics["samples"]["num_generated"] = args.num_samples
    return metrics


CURVE_KEYS = {  # curves.json key -> label
    "w_ema_knn1": "w = E(x) 1-NN (EMA E)",
    "w_ema_svm": "w = E(x) linear SVM (EMA E)",
    "w_raw_knn1": "w = E(x) 1-NN (raw E)",
    "w_raw_svm": "w = E(x) linear SVM (raw E)",
    "label_agreement": "same label for x and G(E(x))",
    "confident_fraction": "samples classified with confidence > 0.9",
    "reconstruction_mse": "reconstruction MSE",
}


def evaluate_checkpoints(args):
    """alae-eval --all-checkpoints: the learning curves of a run, one point per checkpoint."""
    from alae_tf.metrics import representation
    from alae_tf.models.presets import build_model
    from alae_tf.runs import RunCheckpoint, read_config, write_json_atomic

    settings = read_config(args.run_dir)
    preset = settings.preset
    _check_scorable(preset, args.run_dir)
    model = build_model(preset, seed=settings.seed)
    checkpoint = RunCheckpoint(model, args.run_dir)
    if not checkpoint.candidates():
        raise UsageError(f"{args.run_dir!r} has no checkpoint yet; train at least one epoch "
                         "first")
    progress = checkpoint.progress.read()
    start = time.time()
    digits = _digits(args, preset)
    x_train_u8, y_train, x_test_u8, y_test, _, x_test = digits
    classifier, classifier_accuracy = _digit_classifier(args, x_test_u8, y_test)
    print("scoring the PCA-50 baseline ...", flush=True)
    pca = representation.pca_features(x_train_u8.reshape(len(x_train_u8), -1) / 255.0,
                                  x_test_u8.reshape(len(x_test_u8), -1) / 255.0,
                                  n_components=50, seed=args.seed)
    baseline = representation.representation_scores(pca[0], y_train, pca[1], y_test, seed=args.seed)
    points, low_resolution = [], []
    for epoch in checkpoint.restore_each():
        if model.level != model.max_level:
            low_resolution.append(epoch)
            continue
        points.append(_curve_point(model, preset, args, digits, classifier,
                                   epoch, progress.get(epoch, {})))
    if not points:
        raise UsageError(f"no checkpoint of {args.run_dir!r} is at full resolution (epochs "
                         f"{low_resolution}); train longer")
    curves = {"run_dir": args.run_dir, "preset": preset.name, "num_test": len(x_test),
              "points": points, "skipped_low_resolution_epochs": low_resolution,
              "pca50": {"knn1": baseline["knn1"], "svm": baseline["svm"]},
              "classifier_test_accuracy": classifier_accuracy, "labels": CURVE_KEYS,
              "seconds": round(time.time() - start, 1)}
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


def _curve_point(model, preset, args, digits, classifier, epoch, record):
    """The scores of checkpoint ``epoch`` (restored in ``model``), with its ``progress.json``
    ``record``; printed as one line."""
    from alae_tf.metrics import representation

    _, y_train, x_test_u8, y_test, x_train, x_test = digits
    point = {"epoch": epoch, "step": int(model.step.numpy()),
             "images_seen": record.get("images_seen"),
             "train_seconds": record.get("train_seconds")}
    for which, use_ema in (("ema", True), ("raw", False)):
        scores = representation.representation_scores(
            _codes(model, x_train, use_ema), y_train, _codes(model, x_test, use_ema), y_test,
            seed=args.seed)
        point[f"w_{which}_knn1"], point[f"w_{which}_svm"] = scores["knn1"], scores["svm"]
    point["reconstruction_mse"], samples = _generation_scores(
        model, preset, args, x_test, x_test_u8, classifier)
    point["label_agreement"] = samples["label_agreement"]
    point["confident_fraction"] = samples["confident_fraction"]
    print(f"epoch {epoch:>4} step {point['step']:>7}: w 1-NN {point['w_ema_knn1']:.4f} "
          f"SVM {point['w_ema_svm']:.4f}, MSE {point['reconstruction_mse']:.4f}, "
          f"agreement {point['label_agreement']:.3f}, confident "
          f"{point['confident_fraction']:.3f}", flush=True)
    return point


def _write_curve_scalars(points, log_dir):
    import tensorflow as tf

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


def main(argv=None):
    quiet_tensorflow(early_flags(argv)[0])
    args = build_parser().parse_args(argv)
    return run_main("alae-eval", lambda: evaluate(args))


if __name__ == "__main__":
    raise SystemExit(main())
