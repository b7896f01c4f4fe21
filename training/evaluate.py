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
"""

import os
import time

from alae_tf.training.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    non_negative_int,
    positive_int,
    run_main,
    seed_int,
)


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


def evaluate(args):
    from alae_tf.training.runs import load_trained_model, write_json_atomic

    model, preset, _, epoch = load_trained_model(args.run_dir)
    if preset.channels != 1 or preset.resolution not in (28, 32):
        raise UsageError(
            f"alae-eval scores MNIST models (28 or 32 px, 1 channel); {args.run_dir!r} is "
            f"{preset.resolution} px with {preset.channels} channels"
        )

    if model.level != model.max_level:
        raise UsageError(
            f"{args.run_dir!r} is at level of detail {model.level} of {model.max_level} "
            f"({model.level_resolution} px); alae-eval scores full-resolution models: "
            "train longer"
        )

    import numpy as np
    import tensorflow as tf

    from alae_tf import evaluation
    from alae_tf.data import load_embedded_mnist

    start = time.time()
    x_train_u8, y_train = load_embedded_mnist("train")
    x_test_u8, y_test = load_embedded_mnist("test")
    if args.max_train:  # a seeded subset: the embedded split is ordered by class
        keep = np.random.default_rng(args.seed).permutation(len(y_train))[: args.max_train]
        x_train_u8, y_train = x_train_u8[np.sort(keep)], y_train[np.sort(keep)]
    x_train, x_test = _to_model_range(x_train_u8, preset), _to_model_range(x_test_u8, preset)

    from alae_tf.mlp import MLPEncoder

    metrics = {"run_dir": args.run_dir, "epoch": epoch, "step": int(model.step.numpy()),
               "num_train": len(x_train), "num_test": len(x_test), "representation": {}}
    features = {}
    for which, use_ema in (("ema", True), ("raw", False)):
        features[f"w/{which}"] = (_batched(lambda x, e=use_ema: model.encode(x, e), x_train),
                                  _batched(lambda x, e=use_ema: model.encode(x, e), x_test))
        encoder = model.encoder_ema if use_ema else model.encoder
        if isinstance(encoder, MLPEncoder):  # the "long" features of the paper
            features[f"features/{which}"] = (_batched(encoder.features, x_train),
                                             _batched(encoder.features, x_test))
    raw = (x_train_u8.reshape(len(x_train_u8), -1) / 255.0,
           x_test_u8.reshape(len(x_test_u8), -1) / 255.0)
    features["pixels"] = raw
    features["pca50"] = evaluation.pca_features(*raw, n_components=50, seed=args.seed)
    for name, (train_f, test_f) in features.items():
        print(f"scoring {name} ({train_f.shape[1]}-D) ...", flush=True)
        scores = evaluation.representation_scores(train_f, y_train, test_f, y_test, seed=args.seed)
        metrics["representation"][name] = {"dim": int(train_f.shape[1]), **scores}

    reconstructions = _to_unit_range(_batched(model.reconstruct, x_test), preset)
    originals = x_test_u8[..., None].astype(np.float32) / 255.0
    metrics["reconstruction_mse"] = float(np.mean((reconstructions - originals) ** 2))

    print("training the digit classifier ...", flush=True)
    digits, labels = load_embedded_mnist("train")
    classifier = evaluation.train_digit_classifier(
        digits[..., None].astype(np.float32) / 255.0, labels, epochs=args.classifier_epochs,
        seed=args.seed)
    classifier_accuracy = float(np.mean(
        np.argmax(classifier.predict(originals, verbose=0), axis=1) == y_test))
    z = tf.random.stateless_normal((args.num_samples, model.latent_dim), seed=(args.seed, 7))
    generated = _to_unit_range(_batched(model.generate, np.asarray(z)), preset)
    metrics["samples"] = evaluation.classifier_scores(
        classifier, generated, originals=originals, reconstructions=reconstructions)
    metrics["samples"]["classifier_test_accuracy"] = classifier_accuracy
    metrics["samples"]["num_generated"] = args.num_samples
    metrics["seconds"] = round(time.time() - start, 1)

    path = os.path.join(args.run_dir, "metrics.json")
    write_json_atomic(path, metrics)
    _print_report(metrics, path)
    return 0


def _print_report(metrics, path):
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
    print(f"written to {path} in {metrics['seconds']} s")


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_main("alae-eval", lambda: evaluate(args))


if __name__ == "__main__":
    raise SystemExit(main())
