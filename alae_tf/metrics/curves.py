"""Learning curves of an MNIST run: the digit protocol (``alae_tf.metrics.digits``) scored at
every kept checkpoint, one point per checkpoint, with the PCA-50 baseline and the digit
classifier's accuracy for scale."""

import time

from alae_tf.errors import CheckpointError, MetricError
from alae_tf.metrics import digits
from alae_tf.metrics.registry import MetricOptions

CURVE_KEYS = {  # curves.json key -> label
    "w_ema_knn1": "w = E(x) 1-NN (EMA E)",
    "w_ema_svm": "w = E(x) linear SVM (EMA E)",
    "w_raw_knn1": "w = E(x) 1-NN (raw E)",
    "w_raw_svm": "w = E(x) linear SVM (raw E)",
    "label_agreement": "same label for x and G(E(x))",
    "confident_fraction": "samples classified with confidence > 0.9",
    "reconstruction_mse": "reconstruction MSE",
}


def learning_curves(run_dir, options=None):
    """Scores every kept checkpoint of the run in ``run_dir`` (those below full resolution are
    skipped and listed; damaged ones are skipped with a warning).

    Args:
        run_dir: a run directory of an MNIST model.
        options: a ``MetricOptions`` (seed, num_samples, max_train, classifier_epochs, out).

    Returns:
        The curves.json dict: {"run_dir", "preset", "num_test", "points",
        "skipped_low_resolution_epochs", "pca50", "classifier_test_accuracy", "labels",
        "seconds"}; each point holds the ``CURVE_KEYS`` with its epoch, step, images seen and
        training seconds (None when ``progress.json`` has no record of the epoch).

    Raises:
        MetricError: not an MNIST model, or no checkpoint at full resolution.
        CheckpointError: no checkpoint yet.
    """
    from alae_tf.metrics import representation
    from alae_tf.models.presets import build_model
    from alae_tf.runs import RunCheckpoint, read_config

    options = options or MetricOptions()
    out = options.out
    settings = read_config(run_dir)
    preset = settings.preset
    digits.check_mnist(preset)
    model = build_model(preset, seed=settings.seed)
    checkpoint = RunCheckpoint(model, run_dir)
    if not checkpoint.candidates():
        raise CheckpointError(f"{run_dir!r} has no checkpoint yet; train at least one epoch "
                              "first")
    progress = checkpoint.progress.read()
    start = time.time()
    splits = digits.DigitSplits.load(preset, options.max_train, options.seed)
    classifier, classifier_accuracy = digits.train_classifier(
        options.classifier_epochs, options.seed, out=out)
    out("scoring the PCA-50 baseline ...", flush=True)
    pca = representation.pca_features(*splits.pixels(), n_components=50, seed=options.seed)
    baseline = representation.representation_scores(
        pca[0], splits.train_labels, pca[1], splits.test_labels, seed=options.seed)
    points, low_resolution = [], []
    for epoch in checkpoint.restore_each():
        if model.level != model.max_level:
            low_resolution.append(epoch)
            continue
        points.append(curve_point(model, preset, splits, classifier, epoch,
                                  progress.get(epoch, {}), options))
    if not points:
        raise MetricError(f"no checkpoint of {run_dir!r} is at full resolution (epochs "
                          f"{low_resolution}); train longer")
    return {"run_dir": run_dir, "preset": preset.name, "num_test": len(splits.test),
            "points": points, "skipped_low_resolution_epochs": low_resolution,
            "pca50": {"knn1": baseline["knn1"], "svm": baseline["svm"]},
            "classifier_test_accuracy": classifier_accuracy, "labels": CURVE_KEYS,
            "seconds": round(time.time() - start, 1)}


def curve_point(model, preset, splits, classifier, epoch, record, options):
    """The scores of checkpoint ``epoch`` (restored in ``model``), with its ``progress.json``
    ``record``; reported as one line to ``options.out``."""
    point = {"epoch": epoch, "step": int(model.step.numpy()),
             "images_seen": record.get("images_seen"),
             "train_seconds": record.get("train_seconds")}
    for which, use_ema in (("ema", True), ("raw", False)):
        point[f"w_{which}_knn1"], point[f"w_{which}_svm"] = digits.code_scores(
            model, splits, use_ema, seed=options.seed)
    point["reconstruction_mse"], samples = digits.generation_scores(
        model, preset, splits, classifier, options.num_samples, seed=options.seed)
    point["label_agreement"] = samples["label_agreement"]
    point["confident_fraction"] = samples["confident_fraction"]
    options.out(f"epoch {epoch:>4} step {point['step']:>7}: w 1-NN {point['w_ema_knn1']:.4f} "
                f"SVM {point['w_ema_svm']:.4f}, MSE {point['reconstruction_mse']:.4f}, "
                f"agreement {point['label_agreement']:.3f}, confident "
                f"{point['confident_fraction']:.3f}", flush=True)
    return point
