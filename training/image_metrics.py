"""alae-eval --fid / --ppl: the paper's image metrics of a run (FID of generations and of
reconstructions, PPL in W), with the feature network and distance chosen by flag.

The metrics themselves are the library's (``alae_tf.metrics.generative``, ``alae_tf.metrics.fid``,
``alae_tf.metrics.ppl``, ``alae_tf.metrics.lpips``); this module turns flags into extractors and
distances, finds the real images, and prints the results. docs/metrics.md explains every number.
"""

import dataclasses

from alae_tf.cli import UsageError, positive_int

DEFAULT_IMAGES = 50_000


def add_flags(parser):
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


def is_mnist(preset):
    return preset.channels == 1 and preset.resolution in (28, 32)


def _input_range(text):
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--fid-input-range takes LOW,HIGH, got {text!r}") from None
    if not high > low:
        raise UsageError(f"--fid-input-range must be increasing, got {text!r}")
    return low, high


def feature_extractor(args, preset, classifier):
    """The FID feature network the flags ask for. ``classifier()`` gives the digit classifier."""
    from alae_tf.metrics import fid

    choice = args.fid_network or ("digits" if is_mnist(preset) else "inception-hub")
    batch = args.metrics_batch_size
    if choice == "digits":
        return fid.digit_extractor(classifier(), crop=28)
    if choice == "inception-hub" or choice.startswith("inception-hub:"):
        url = choice.partition(":")[2] or fid.INCEPTION_HUB_URL
        return fid.inception_hub_extractor(url, batch_size=batch)
    if choice.endswith(".pb"):
        return fid.inception_graph_extractor(choice, batch_size=batch)
    if choice.endswith((".keras", ".h5")):
        return fid.keras_extractor(choice, _input_range(args.fid_input_range), batch_size=batch)
    raise UsageError(f"--fid-network {choice!r}: give digits, inception-hub[:PATH], a .pb, "
                     "or a .keras/.h5 file")


def path_distance(args, preset, classifier):
    """(distance, name) for PPL."""
    from alae_tf.metrics import fid, ppl
    from alae_tf.metrics.lpips import LPIPS

    choice = args.ppl_distance or ("digits" if is_mnist(preset) else "pixels")
    if choice.startswith("lpips:"):
        return LPIPS.from_file(choice.partition(":")[2]), "LPIPS (VGG16)"
    if choice == "digits":
        return ppl.feature_distance(fid.digit_extractor(classifier(), crop=28)), \
            "digit features (not comparable with published PPLs)"
    if choice == "pixels":
        return ppl.squared_pixel_distance, "squared pixels (not comparable with published PPLs)"
    raise UsageError(f"--ppl-distance {choice!r}: give lpips:FILE.npz, digits or pixels")


def real_batches(preset, batch_size, seed):
    """(batches, count): the training split in the model's pixel range, each image once, in a
    seeded order (a count below the split's size then samples every class: the embedded MNIST
    split is ordered by class), and the split's size."""
    from alae_tf.data import make_dataset

    dataset, count = make_dataset(
        preset.dataset, resolution=preset.resolution, channels=preset.channels,
        batch_size=batch_size, pixel_range=preset.pixel_range, shuffle=True, seed=seed,
        repeat=False, drop_remainder=False, max_image_pixels=preset.max_image_pixels)
    return (batch.numpy() for batch in dataset), count


def image_metrics(args, model, preset, classifier):
    """{metric: value} for --fid and --ppl, with progress lines while they run."""
    from alae_tf.metrics import generative

    scores = {}
    if args.fid:
        extractor = feature_extractor(args, preset, classifier)
        source = preset if args.dataset is None else dataclasses.replace(preset,
                                                                          dataset=args.dataset)
        batches, count = real_batches(source, args.metrics_batch_size, args.seed)
        scores.update(generative.fid_scores(
            model, preset.pixel_range, batches, extractor, min(args.fid_images, count),
            batch_size=args.metrics_batch_size, seed=args.seed))
    if args.ppl:
        distance, name = path_distance(args, preset, classifier)
        scores.update(generative.ppl_scores(
            model, preset.pixel_range, distance, name, args.ppl_samples,
            crop=preset.ppl_crop or generative.FACE_CROPS.get(preset.name),
            batch_size=max(1, args.metrics_batch_size // 2), seed=args.seed))
    return scores


def print_report(scores):
    if "fid_generations" in scores:
        count = scores["fid_real_images"]
        print(f"{scores['fid_features']} of generations: {scores['fid_generations']:.3f}; of "
              f"reconstructions: {scores['fid_reconstructions']:.3f} ({count:,} images each)")
    if "ppl_full" in scores:
        print(f"PPL in W ({scores['ppl_distance']}): full {scores['ppl_full']:.2f}, end "
              f"{scores['ppl_end']:.2f} ({scores['ppl_samples']:,} samples)")
