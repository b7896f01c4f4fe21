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
import contextlib
import hashlib
import importlib.resources
import json
import logging
import numbers
import os
import pathlib
import sys
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image

from alae_tf.errors import DataError, DataWarning, short_reason

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

# Images above this many pixels are skipped (make_dataset's max_image_pixels, alae-train
# --max-image-pixels): 40 megapixels decode to 120 MB of uint8 and about 0.5 GB of float32
# before the resize, per image in flight.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# Folders with at least this many images not yet checked say so on stderr first.
_REPORT_CHECKS_FROM = 500
_REPORTED = set()

_log = logging.getLogger(__name__)


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
    translate: int = 0,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    shard: tuple[int, int] | None = None,
) -> tuple[tf.data.Dataset, int]:
    """Builds the input pipeline of a data source.

    Geometry per source: ``"mnist"`` keeps 28 px, zero-pads centrally above it (32 px gives
    2 px each side, the StyleALAE MNIST preset) and area-resizes below it. ``"tfds:NAME"``
    and ``"folder:PATH"`` center-crop each image to a square and resize it (bilinear with
    antialiasing, so shrinking does not alias). Channels: grey becomes RGB by repetition,
    RGB becomes grey by BT.601 luminance, alpha is dropped.

    Folders have a single split, ``"train"``; ``split="test"`` raises DataError. Before the
    pipeline is built, every file is read by the decoder training uses
    (``tf.io.decode_image``), so no file can fail mid-training. Files that do not decode,
    and images above ``max_image_pixels``, are skipped and counted in one DataWarning per
    process; other extensions are ignored. The checks are remembered per file (path, size
    and mtime) under ``$ALAE_TF_CACHE_DIR`` or ``~/.cache/alae_tf``, so a resumed run over
    a large folder does not decode it again.

    The same arguments (and the same TF global seed) give the same sequence of batches.

    Args:
        source: ``"mnist"``, ``"tfds:NAME"`` (e.g. ``"tfds:celeb_a"``) or ``"folder:PATH"``.
        resolution: side H = W of the output images, at least 4.
        channels: 1 (grey) or 3 (RGB).
        batch_size: global batch size; under ``tf.distribute`` Keras splits it across
            replicas.
        pixel_range: ``(low, high)``; pixel values 0..255 map linearly onto it.
        split: ``"train"`` or ``"test"``.
        shuffle: shuffle the examples, seeded by ``seed``: MNIST and folders take each pass
            over the data in a full permutation of its own, the same from every iterator;
            tfds streams are shuffled in a buffer of up to 10,000, anew per iterator.
        seed: seed of the shuffle, the flips and the shifts.
        repeat: repeat forever (before batching, so batches run across epoch boundaries).
        drop_remainder: drop a last partial batch.
        flip: flip each image horizontally with probability 1/2.
        translate: shift each image by a random whole number of pixels in [-translate,
            translate], in x and y independently; the uncovered border takes the low end of
            ``pixel_range`` (the background of dark-ground data such as MNIST).
        max_image_pixels: folder images with more pixels (width x height) are skipped.
        shard: ``(num_shards, index)``: keep only every ``num_shards``-th example of the
            shuffled, repeated stream, from position ``index`` on, before any decoding. Each
            multi-worker input pipeline takes one shard, with the same ``seed``: one global
            batch of the shards together is then exactly the examples one pipeline would
            batch (``batch_size`` is the shard's part of it). A folder's shard decodes only
            its own files, MNIST's its own in-memory digits. Flips and shifts are keyed by
            the index too, so that shards do not repeat each other's draws.

    Returns:
        ``(dataset, num_examples)``: a ``tf.data.Dataset`` of float32 ``[B, H, W, C]`` and
        the number of images in the split.

    Raises:
        DataError: for bad settings, an unknown source, or data that cannot be read.
    """
    low, high = _check_settings(resolution, channels, batch_size, pixel_range, split)
    if not _is_int(translate) or not 0 <= translate < resolution:
        raise DataError(f"translate must be a whole number of pixels from 0 to "
                        f"{resolution - 1}, got {translate!r}")
    if not isinstance(source, str):
        raise DataError(f"data source must be a string, got {source!r}")
    if source == "mnist":
        examples, num_examples, per_example, per_batch = _mnist_source(split, resolution, channels)
    elif source.startswith("tfds:"):
        examples, num_examples, per_example, per_batch = _tfds_source(
            source[len("tfds:") :], split, resolution, channels, shuffle, seed
        )
    elif source.startswith("folder:"):
        if not _is_int(max_image_pixels) or max_image_pixels < 1:
            raise DataError(f"max_image_pixels must be a positive integer, got "
                            f"{max_image_pixels!r}")
        examples, num_examples, per_example, per_batch = _folder_source(
            source[len("folder:") :], split, resolution, channels, int(max_image_pixels)
        )
    else:
        raise DataError(
            f"unknown data source {source!r}; use 'mnist', 'tfds:NAME' (e.g. 'tfds:celeb_a') "
            "or 'folder:PATH'"
        )
    if drop_remainder and batch_size > num_examples:
        raise DataError(
            f"a batch of {batch_size} needs more than the {num_examples} usable images of "
            f"{source!r} (split {split!r}); add images or lower the batch size "
            "(alae-train --batch-size)"
        )

    num_shards, shard_index = _check_shard(shard)
    if drop_remainder and batch_size * num_shards > num_examples:
        raise DataError(
            f"{num_shards} shards of {batch_size} images need more than the {num_examples} "
            f"usable images of {source!r}; add images or lower the batch size"
        )

    if isinstance(examples, tf.data.Dataset):  # tfds: a stream, shuffled in a buffer
        dataset = examples
        if shuffle:
            dataset = dataset.shuffle(min(num_examples, _MAX_SHUFFLE_BUFFER), seed=seed,
                                      reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        if num_shards > 1:
            dataset = dataset.shard(num_shards, shard_index)
        dataset = dataset.map(per_example, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:  # a table (in-memory digits, file paths): each pass is a full permutation
        table = tf.constant(examples)
        positions = _positions(int(table.shape[0]), shuffle, repeat, seed)
        if num_shards > 1:
            positions = positions.shard(num_shards, shard_index)
        if per_example is None:  # one gather per batch rather than per example
            dataset = positions.batch(batch_size, drop_remainder=drop_remainder).map(
                lambda rows: tf.gather(table, rows), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            dataset = positions.map(lambda row: per_example(tf.gather(table, row)),
                                    num_parallel_calls=tf.data.AUTOTUNE)
            dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def to_pixel_range(images):
        # x / 255 first, so that 0 and 255 land exactly on low and high.
        return per_batch(images) / 255.0 * (high - low) + low

    dataset = dataset.map(to_pixel_range, num_parallel_calls=tf.data.AUTOTUNE)
    if flip:
        # A stateless op keyed by (seed, batch index): reproducible, and new flips each epoch.
        def random_flip(step, images):
            key = _shard_key(tf.stack([tf.constant(seed, tf.int64), step]), shard)
            return tf.image.stateless_random_flip_left_right(images, seed=key)

        dataset = dataset.enumerate().map(random_flip, num_parallel_calls=tf.data.AUTOTUNE)
    if translate:
        def random_shift(step, images):
            key = _shard_key(tf.stack([tf.constant(seed, tf.int64), step]), shard)
            # Folded with 1: a key of its own, apart from the flips'.
            key = tf.random.experimental.stateless_fold_in(key, 1)
            return shift_images(images, translate, key, fill=low)

        dataset = dataset.enumerate().map(random_shift, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), num_examples


def _positions(size, shuffle, repeat, seed):
    """Row numbers of a table of ``size`` examples, pass after pass; pass k is the
    permutation seeded (seed, k).

    Stateless: every iterator of the dataset gives the same stream. Under a tf.distribute
    strategy Keras's fit() draws a batch from an iterator of its own before training; a
    shuffle reseeded per iterator (``Dataset.shuffle``'s reshuffling) would then train on
    another order than one device does.
    """
    def one_pass(index):
        rows = tf.range(size, dtype=tf.int64)
        if shuffle:
            key = tf.stack([tf.constant(seed, tf.int64), index])
            rows = tf.random.experimental.stateless_shuffle(rows, seed=key)
        return tf.data.Dataset.from_tensor_slices(rows)

    passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    return passes.flat_map(one_pass)


def _check_shard(shard):
    """``(num_shards, index)`` of a ``shard`` argument (``(1, 0)`` for None)."""
    if shard is None:
        return 1, 0
    if (not isinstance(shard, tuple | list) or len(shard) != 2 or not all(map(_is_int, shard))
            or shard[0] < 1 or not 0 <= shard[1] < shard[0]):
        raise DataError(f"shard must be (num_shards, index) with 0 <= index < num_shards, got "
                        f"{shard!r}")
    return int(shard[0]), int(shard[1])


def _shard_key(key, shard):
    """A per-batch random key, made distinct per shard (unchanged without sharding)."""
    if shard is None or shard[0] == 1:
        return key
    return tf.random.experimental.stateless_fold_in(key, 1000 + shard[1])


def shift_images(images, max_shift, seed, fill=0.0):
    """Shifts each image of a batch [B, H, W, C] by its own random offset.

    Offsets are whole pixels, drawn uniformly from [-max_shift, max_shift] in y and x
    independently from the stateless ``seed``; pixels shifted in take the value ``fill``.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    pad = [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]]
    padded = tf.pad(images, pad, constant_values=fill)
    # Offset 0..2 max_shift into the padded image; max_shift is no shift.
    offsets = tf.random.stateless_uniform((batch, 2), seed=seed, minval=0,
                                          maxval=2 * max_shift + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]  # [B, H]
    cols = offsets[:, 1:] + tf.range(width)[None, :]  # [B, W]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


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
    examples = images[..., np.newaxis]  # a table of [28, 28, 1] digits

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


def _cache_dir():
    """Where folder checks are remembered: $ALAE_TF_CACHE_DIR, else the XDG cache."""
    if os.environ.get("ALAE_TF_CACHE_DIR"):
        return pathlib.Path(os.environ["ALAE_TF_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "alae_tf"


def _cache_file(root):
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:20]
    return _cache_dir() / "image_checks" / f"{digest}.json"


def _load_checks(root):
    try:
        with open(_cache_file(root)) as f:
            data = json.load(f)
        return data["files"] if data.get("root") == str(root) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no cache yet, or a damaged one: check again


def _save_checks(root, checks):
    # Only a cache: a failed write costs a re-check next time, nothing else.
    path = _cache_file(root)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            json.dump({"root": str(root), "files": checks}, f)
        os.replace(tmp, path)
    except OSError as e:
        _log.debug("could not cache image checks in %s: %s", path, e)
        with contextlib.suppress(OSError):
            tmp.unlink()


def _read_header(path):
    """``{"size": [W, H], "error": None}``, or an error naming why the file is no image."""
    try:
        with Image.open(path) as image:
            if image.format not in _TF_FORMATS:
                return {"size": None, "error": f"{image.format} is not PNG, JPEG, BMP or GIF"}
            return {"size": list(image.size), "error": None}
    except Image.UnidentifiedImageError:
        return {"size": None, "error": "not an image file"}
    except Exception as e:  # PIL's format plugins raise many types (OSError, SyntaxError, ...)
        return {"size": None, "error": f"not an image ({short_reason(e, with_type=False)})"}


def _decode_errors(paths):
    """Decodes ``paths`` with training's own decoder; ``{index: reason}`` of the failures."""
    def decode(index, file):
        image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False)
        return index, tf.shape(image)

    dataset = tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), paths))
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    decoded = {int(index) for index, _ in dataset.ignore_errors().as_numpy_iterator()}
    errors = {}
    for index in sorted(set(range(len(paths))) - decoded):
        try:  # again, alone, for TensorFlow's own words
            tf.io.decode_image(tf.io.read_file(paths[index]), channels=3,
                               expand_animations=False)
            errors[index] = "could not be decoded"
        except (tf.errors.OpError, ValueError) as e:
            errors[index] = f"damaged ({short_reason(e, with_type=False)})"
    return errors


def _check_images(root, candidates):
    """Header and full-decode checks of ``candidates``, remembered per file size and mtime.

    Returns ``{path: {"size": [W, H] | None, "error": str | None, "decoded": bool}}``.
    Files too large for the caller's limit are left undecoded here (``decoded`` False) and
    decoded on a later call that allows them.
    """
    cached = _load_checks(root)
    checks, stamps, fresh = {}, {}, []
    for p in candidates:
        key = str(p)
        try:
            st = p.stat()
            stamps[key] = [st.st_size, st.st_mtime_ns]
        except OSError as e:
            checks[key] = {"size": None, "error": f"unreadable ({e.strerror})", "decoded": False}
            continue
        entry = cached.get(key)
        if entry and entry.get("stamp") == stamps[key]:
            checks[key] = entry
        else:
            fresh.append(p)
    if fresh:
        # Headers only (no pixels), so PIL's decompression-bomb guard does not apply: the
        # caller's pixel limit decides. Reading headers is I/O bound: threads overlap waits.
        bomb_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with concurrent.futures.ThreadPoolExecutor() as pool:
                headers = list(pool.map(_read_header, fresh))
        finally:
            Image.MAX_IMAGE_PIXELS = bomb_limit
        for p, header in zip(fresh, headers, strict=True):
            checks[str(p)] = {"stamp": stamps[str(p)], **header, "decoded": False}
    return checks, stamps


def _decode_new(root, checks, stamps, files, label):
    """Runs the decoder over those of ``files`` not yet decoded; records the results."""
    todo = [f for f in files if not checks[f]["decoded"]]
    if not todo:
        return
    if len(todo) >= _REPORT_CHECKS_FROM:
        print(f"checking {len(todo)} images in {label} with TensorFlow's decoder (once; the "
              f"results are cached in {_cache_dir()})", file=sys.stderr, flush=True)
    errors = _decode_errors(todo)
    for index, file in enumerate(todo):
        checks[file]["decoded"] = True
        checks[file]["error"] = errors.get(index)
    _save_checks(root, {k: v for k, v in checks.items() if k in stamps})


def _skip_summary(bad, too_large, max_image_pixels, root):
    def first(paths):
        return os.path.relpath(paths[0][0], root) + f": {paths[0][1]}"

    parts = []
    if bad:
        parts.append(f"{len(bad)} damaged or not images (first: {first(bad)})")
    if too_large:
        parts.append(
            f"{len(too_large)} above the limit of {max_image_pixels:,} pixels (first: "
            f"{first(too_large)}; raise it with alae-train --max-image-pixels, or "
            "max_image_pixels= in Python)"
        )
    return "; ".join(parts)


def _folder_source(path, split, resolution, channels, max_image_pixels):
    if split != "train":
        raise DataError(
            f"folder sources have only a 'train' split, got split={split!r}; put test images "
            "in a folder of their own"
        )
    root = pathlib.Path(path).expanduser()
    # An empty path would silently mean the working directory.
    if not path or not root.is_dir():
        raise DataError(f"image folder {path!r} does not exist or is not a directory")
    root = root.resolve()
    candidates = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not candidates:
        raise DataError(
            f"image folder {path!r} has no image files ({', '.join(IMAGE_SUFFIXES)}); "
            "point folder: at the directory that holds them"
        )
    checks, stamps = _check_images(root, candidates)
    bad, too_large, within = [], [], []
    for p in candidates:
        check = checks[str(p)]
        if check["error"]:
            bad.append((str(p), check["error"]))
        elif check["size"][0] * check["size"][1] > max_image_pixels:
            width, height = check["size"]
            too_large.append((str(p), f"{width}x{height}"))
        else:
            within.append(str(p))
    _decode_new(root, checks, stamps, within, path)
    files = []
    for file in within:
        if checks[file]["error"]:
            bad.append((file, checks[file]["error"]))
        else:
            files.append(file)
    bad.sort()
    summary = _skip_summary(bad, too_large, max_image_pixels, root)
    if not files:
        raise DataError(
            f"none of the {len(candidates)} image files in folder {path!r} can be used: "
            f"{summary}"
        )
    if summary:
        report = (path, len(files), len(candidates), summary)
        if report not in _REPORTED:  # once per process, however often the folder is read
            _REPORTED.add(report)
            warnings.warn(
                f"folder {path}: using {len(files)} of {len(candidates)} image files; skipped "
                f"{summary}",
                DataWarning,
                stacklevel=3,
            )

    examples = np.array(files)  # a table of paths

    def per_example(file):
        return _decode_square(tf.io.read_file(file), resolution, channels)

    return examples, len(files), per_example, _identity
