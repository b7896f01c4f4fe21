"""Training data as tf.data pipelines of float image batches.

Three sources, named by a string (the ``dataset`` field of a preset):

- ``"mnist"``: the 10,000 MNIST digits embedded in the package (``assets/mnist.npz``, see
  ``assets/MNIST_PROVENANCE.md``), split 7,996 train / 2,004 test. Works offline.
- ``"tfds:NAME"``: the ``image`` feature of a TensorFlow Datasets dataset, downloaded and
  prepared on first use (needs a network).
- ``"folder:PATH"``: every PNG, JPEG, BMP and GIF file below ``PATH``.

Every source ends in the same pipeline: shuffle, repeat, batch, map to the pixel range,
optional flip, prefetch. Images leave it as ``[B, H, W, C]`` float32 with no labels.
"""

import concurrent.futures
import importlib.resources
import logging
import numbers
import pathlib
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

_MNIST_SIDE = 28
_MAX_SHUFFLE_BUFFER = 10_000
# The formats tf.io.decode_image reads; a file PIL opens in any other format would fail in
# the middle of training.
_TF_FORMATS = frozenset({"PNG", "JPEG", "BMP", "GIF"})
# ITU-R BT.601 luma, as in PIL's convert("L") and JPEG's Y; the weights sum to 1, so a grey
# image stored as RGB keeps its grey levels.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_log = logging.getLogger(__name__)


class DataError(ValueError):
    """Bad data or data settings. ``str(e)`` is one line naming the problem and what to do."""


def load_embedded_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Reads one split of the embedded MNIST digits.

    The file is found through ``importlib.resources``, so this works from a source checkout
    and from an installed package alike.

    Args:
        split: ``"train"`` (7,996 digits) or ``"test"`` (2,004 digits).

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28]`` with 0 the background, and uint8 ``[N]``.

    Raises:
        DataError: for an unknown split.
    """
    _check_split(split)
    resource = importlib.resources.files("alae_tf").joinpath("assets", "mnist.npz")
    with resource.open("rb") as f, np.load(f) as arrays:
        return arrays[f"x_{split}"], arrays[f"y_{split}"]


def make_dataset(
    source: str = "mnist",
    *,
    resolution: int,
    channels: int,
    batch_size: int,
    pixel_range: tuple[float, float] = (0.0, 1.0),
    split: str = "train",
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = True,
    drop_remainder: bool = True,
    flip: bool = False,
) -> tuple[tf.data.Dataset, int]:
    """Builds the input pipeline of a data source.

    Geometry per source: ``"mnist"`` keeps 28 px, zero-pads centrally above it (32 px gives
    2 px each side, the StyleALAE MNIST preset) and area-resizes below it. ``"tfds:NAME"``
    and ``"folder:PATH"`` center-crop each image to a square and resize it (bilinear with
    antialiasing, so shrinking does not alias). Channels: grey becomes RGB by repetition,
    RGB becomes grey by BT.601 luminance, alpha is dropped.

    Folders have a single split, ``"train"``; ``split="test"`` raises DataError. Their files
    are checked with PIL before the pipeline is built: unreadable ones are skipped with one
    warning, non-image extensions are ignored.

    The same arguments (and the same TF global seed) give the same sequence of batches.

    Args:
        source: ``"mnist"``, ``"tfds:NAME"`` (e.g. ``"tfds:celeb_a"``) or ``"folder:PATH"``.
        resolution: side H = W of the output images, at least 4.
        channels: 1 (grey) or 3 (RGB).
        batch_size: global batch size; under ``tf.distribute`` Keras splits it across
            replicas.
        pixel_range: ``(low, high)``; pixel values 0..255 map linearly onto it.
        split: ``"train"`` or ``"test"``.
        shuffle: shuffle the examples, seeded by ``seed``, in a new order every epoch.
        seed: seed of the shuffle and of the flips.
        repeat: repeat forever (before batching, so batches run across epoch boundaries).
        drop_remainder: drop a last partial batch.
        flip: flip each image horizontally with probability 1/2.

    Returns:
        ``(dataset, num_examples)``: a ``tf.data.Dataset`` of float32 ``[B, H, W, C]`` and
        the number of images in the split.

    Raises:
        DataError: for bad settings, an unknown source, or data that cannot be read.
    """
    low, high = _check_settings(resolution, channels, batch_size, pixel_range, split)
    if not isinstance(source, str):
        raise DataError(f"data source must be a string, got {source!r}")
    if source == "mnist":
        examples, num_examples, per_example, per_batch = _mnist_source(split, resolution, channels)
    elif source.startswith("tfds:"):
        examples, num_examples, per_example, per_batch = _tfds_source(
            source[len("tfds:") :], split, resolution, channels, shuffle, seed
        )
    elif source.startswith("folder:"):
        examples, num_examples, per_example, per_batch = _folder_source(
            source[len("folder:") :], split, resolution, channels
        )
    else:
        raise DataError(
            f"unknown data source {source!r}; use 'mnist', 'tfds:NAME' (e.g. 'tfds:celeb_a') "
            "or 'folder:PATH'"
        )
    if drop_remainder and batch_size > num_examples:
        raise DataError(
            f"batch_size {batch_size} is larger than the {num_examples} images of {source!r} "
            f"split {split!r}; lower batch_size or pass drop_remainder=False"
        )

    dataset = examples
    if shuffle:
        dataset = dataset.shuffle(
            min(num_examples, _MAX_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    if per_example is not None:
        dataset = dataset.map(per_example, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def to_pixel_range(images):
        # x / 255 first, so that 0 and 255 land exactly on low and high.
        return per_batch(images) / 255.0 * (high - low) + low

    dataset = dataset.map(to_pixel_range, num_parallel_calls=tf.data.AUTOTUNE)
    if flip:
        # A stateless op keyed by (seed, batch index): reproducible, and new flips each epoch.
        def random_flip(step, images):
            key = tf.stack([tf.constant(seed, tf.int64), step])
            return tf.image.stateless_random_flip_left_right(images, seed=key)

        dataset = dataset.enumerate().map(random_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), num_examples


def _check_split(split):
    if split not in SPLITS:
        raise DataError(f"split must be 'train' or 'test', got {split!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_settings(resolution, channels, batch_size, pixel_range, split):
    """Validates the arguments shared by all sources; returns ``(low, high)`` as floats."""
    if not _is_int(resolution) or resolution < 4:
        raise DataError(f"resolution must be an integer >= 4, got {resolution!r}")
    if not _is_int(channels) or channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if not _is_int(batch_size) or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    try:
        low, high = (float(v) for v in pixel_range)
    except (TypeError, ValueError):
        raise DataError(
            f"pixel_range must be two numbers (low, high), got {pixel_range!r}"
        ) from None
    if not high > low:
        raise DataError(f"pixel_range must be increasing (low < high), got {pixel_range!r}")
    _check_split(split)
    return low, high


def _mnist_source(split, resolution, channels):
    images, _ = load_embedded_mnist(split)
    # uint8 until after batching: a quarter of the float32 bytes through shuffle and batch.
    examples = tf.data.Dataset.from_tensor_slices(images[..., np.newaxis])  # [28, 28, 1]

    def per_batch(batch):  # uint8 [B, 28, 28, 1] -> float32 [B, R, R, C] in 0..255
        batch = tf.cast(batch, tf.float32)
        if resolution > _MNIST_SIDE:
            before = (resolution - _MNIST_SIDE) // 2
            after = resolution - _MNIST_SIDE - before
            # Zero is the digits' background, so the padded border is background too.
            batch = tf.pad(batch, [[0, 0], [before, after], [before, after], [0, 0]])
        elif resolution < _MNIST_SIDE:
            batch = tf.image.resize(batch, [resolution, resolution], method="area")
        return tf.repeat(batch, channels, axis=-1)

    return examples, len(images), None, per_batch


def _decode_square(encoded, resolution, channels):
    """Encoded PNG/JPEG/BMP/GIF bytes -> float32 ``[R, R, C]`` in 0..255, center-cropped."""
    # channels=3 makes every format and mode (grey, palette, grey+alpha, RGBA) come out RGB;
    # expand_animations=False keeps the first frame of a GIF.
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)  # [H, W, 3]
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    image = tf.image.resize(image, [resolution, resolution], method="bilinear", antialias=True)
    if channels == 1:
        image = tf.reduce_sum(image * tf.constant(_LUMA_WEIGHTS), axis=-1, keepdims=True)
    return image


def _identity(batch):
    return batch


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(
            f"'tfds:' sources need tensorflow-datasets, which does not import ({e}); "
            "pip install tensorflow-datasets"
        ) from None
    # tensorflow_datasets/__init__.py catches and logs its own import errors (for example a
    # protobuf / tensorflow-metadata version mismatch), leaving a module without its API.
    if not hasattr(tfds, "builder"):
        raise DataError(
            "tensorflow-datasets failed to initialise (its error is logged above); install "
            "versions of tensorflow-datasets, tensorflow-metadata and protobuf that match"
        )
    return tfds


def short_reason(error, with_type=True):
    """The first line of an exception's message (a TensorFlow error's own message, without
    its op details), for one-line errors; prefixed with the exception's type by default."""
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    reason = f"{type(error).__name__}: {lines[0]}" if with_type else lines[0]
    return reason if len(reason) <= 160 else reason[:157] + "..."


def _tfds_source(name, split, resolution, channels, shuffle, seed):
    tfds = _import_tfds()
    # A name may carry a config and a version ("celeb_a/2.0.1", "mnist:3.*.*"); the registry
    # lists bare names. list_builders reads the installed package only: no network.
    base_name = name.split("/")[0].split(":")[0]
    if base_name not in tfds.list_builders(with_community_datasets=False):
        raise DataError(
            f"unknown tfds dataset {name!r}; see https://www.tensorflow.org/datasets/catalog "
            "for the names, or use 'folder:PATH'"
        )

    def check_split(splits):
        if split not in splits:
            raise DataError(
                f"tfds dataset {name!r} has no {split!r} split (it has: "
                f"{', '.join(sorted(splits)) or 'none'}); use one of those"
            )

    try:
        builder = tfds.builder(name)
        # Split names are known before the download for datasets with stored metadata: fail
        # before fetching gigabytes.
        if builder.info.splits:
            check_split(builder.info.splits)
        builder.download_and_prepare()
    except DataError:
        raise
    except Exception as e:  # network, disk, checksum and parsing errors have many types
        _log.debug("preparing tfds dataset %r failed", name, exc_info=True)
        raise DataError(
            f"could not download/prepare tfds dataset {name!r} ({short_reason(e)}); check "
            "the network and disk space, or use 'folder:PATH' with the images on disk"
        ) from None
    check_split(builder.info.splits)
    features = builder.info.features
    if "image" not in features or not isinstance(features["image"], tfds.features.Image):
        raise DataError(
            f"tfds dataset {name!r} has no 'image' feature (it has: "
            f"{', '.join(features.keys())}); pick an image dataset"
        )

    examples = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        # Encoded bytes are far smaller than pixels in the shuffle buffer; decoding happens
        # after the shuffle, in parallel.
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    num_examples = builder.info.splits[split].num_examples

    def per_example(features):
        return _decode_square(features["image"], resolution, channels)

    return examples, num_examples, per_example, _identity


def _is_decodable_image(path):
    """True when PIL reads the file's header as a format that tf.io.decode_image supports."""
    try:
        with Image.open(path) as image:
            # verify() checks the structure (PNG chunk checksums, for instance) without
            # decoding the pixels.
            image.verify()
            return image.format in _TF_FORMATS
    except Exception:  # PIL's format plugins raise many types (OSError, SyntaxError, ...)
        return False


def _folder_source(path, split, resolution, channels):
    if split != "train":
        raise DataError(
            f"folder sources have only a 'train' split, got split={split!r}; put test images "
            "in a folder of their own"
        )
    root = pathlib.Path(path).expanduser()
    # An empty path would silently mean the working directory.
    if not path or not root.is_dir():
        raise DataError(f"image folder {path!r} does not exist or is not a directory")
    candidates = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not candidates:
        raise DataError(
            f"image folder {path!r} has no image files ({', '.join(IMAGE_SUFFIXES)}); "
            "point folder: at the directory that holds them"
        )
    # Reading headers is I/O bound: threads overlap the waits.
    with concurrent.futures.ThreadPoolExecutor() as pool:
        readable = list(pool.map(_is_decodable_image, candidates))
    files = [str(p) for p, ok in zip(candidates, readable, strict=True) if ok]
    if not files:
        raise DataError(
            f"none of the {len(candidates)} image files in folder {path!r} is a readable "
            f"image (first: {candidates[0]}); check the files"
        )
    if len(files) < len(candidates):
        first_bad = candidates[readable.index(False)]
        warnings.warn(
            f"skipped {len(candidates) - len(files)} of {len(candidates)} files in {path} that "
            f"are not readable images (first: {first_bad})",
            UserWarning,
            stacklevel=3,
        )

    examples = tf.data.Dataset.from_tensor_slices(files)

    def per_example(file):
        return _decode_square(tf.io.read_file(file), resolution, channels)

    return examples, len(files), per_example, _identity
