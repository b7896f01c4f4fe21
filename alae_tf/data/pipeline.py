"""The input pipeline: float image batches from an opened source.

Every source ends in the same steps: shuffle, repeat, shard, batch, map to the pixel range,
optional flip and shift, prefetch. Images leave it as ``[B, H, W, C]`` float32, no labels.
"""

import tensorflow as tf

from alae_tf.data.base import Source, check_split, is_int
from alae_tf.data.folders import DEFAULT_MAX_IMAGE_PIXELS
from alae_tf.data.sources import check_batch_size, check_geometry, open_source
from alae_tf.errors import DataError
from alae_tf.images import PixelRange

_MAX_SHUFFLE_BUFFER = 10_000


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
    To learn the number of images, or check the settings, without building a pipeline,
    use ``open_source`` and ``check_batch_size``.

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
    if not is_int(translate) or not 0 <= translate < resolution:
        raise DataError(f"translate must be a whole number of pixels from 0 to "
                        f"{resolution - 1}, got {translate!r}")
    num_shards, shard_index = _check_shard(shard)
    opened = open_source(source, resolution=resolution, channels=channels, split=split,
                         max_image_pixels=max_image_pixels)
    if drop_remainder:
        check_batch_size(opened, batch_size, num_shards)
    batches = _batches(opened, batch_size, shuffle=shuffle, seed=seed, repeat=repeat,
                       drop_remainder=drop_remainder, shard=(num_shards, shard_index))

    pixels = PixelRange(low, high)

    def to_pixel_range(images):
        if opened.decode_batch is not None:
            images = opened.decode_batch(images)
        return pixels.from_uint8(images)

    dataset = batches.map(to_pixel_range, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = _augment(dataset, seed, shard, flip=flip, translate=translate, fill=low)
    return dataset.prefetch(tf.data.AUTOTUNE), opened.num_examples


def _batches(source: Source, batch_size, *, shuffle, seed, repeat, drop_remainder, shard):
    """Batches of ``source``'s examples, before ``decode_batch``; ``shard`` is
    ``(num_shards, index)``."""
    num_shards, shard_index = shard
    if source.read_stream is not None:  # a stream, shuffled in a buffer
        dataset = source.read_stream(shuffle, seed)
        if shuffle:
            dataset = dataset.shuffle(min(source.num_examples, _MAX_SHUFFLE_BUFFER), seed=seed,
                                      reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        if num_shards > 1:
            dataset = dataset.shard(num_shards, shard_index)
        dataset = dataset.map(source.decode_example, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.batch(batch_size, drop_remainder=drop_remainder)
    # A table (in-memory digits, file paths): each pass is a full permutation.
    table = tf.constant(source.table)
    positions = _positions(int(table.shape[0]), shuffle, repeat, seed)
    if num_shards > 1:
        positions = positions.shard(num_shards, shard_index)
    if source.decode_example is None:  # one gather per batch rather than per example
        return positions.batch(batch_size, drop_remainder=drop_remainder).map(
            lambda rows: tf.gather(table, rows), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = positions.map(lambda row: source.decode_example(tf.gather(table, row)),
                            num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def _augment(dataset, seed, shard, *, flip, translate, fill):
    """Random flips and shifts of the batches, keyed per (seed, batch index, shard)."""
    def batch_key(step):
        # A stateless key per batch: reproducible, and new flips and shifts each epoch.
        return _shard_key(tf.stack([tf.constant(seed, tf.int64), step]), shard)

    if flip:
        def random_flip(step, images):
            return tf.image.stateless_random_flip_left_right(images, seed=batch_key(step))

        dataset = dataset.enumerate().map(random_flip, num_parallel_calls=tf.data.AUTOTUNE)
    if translate:
        def random_shift(step, images):
            # Folded with 1: a key of its own, apart from the flips'.
            key = tf.random.experimental.stateless_fold_in(batch_key(step), 1)
            return shift_images(images, translate, key, fill=fill)

        dataset = dataset.enumerate().map(random_shift, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset


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


def _check_settings(resolution, channels, batch_size, pixel_range, split):
    """Validates the arguments shared by all sources; returns ``(low, high)`` as floats."""
    check_geometry(resolution, channels)
    if not is_int(batch_size) or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    try:
        low, high = (float(v) for v in pixel_range)
    except (TypeError, ValueError):
        raise DataError(
            f"pixel_range must be two numbers (low, high), got {pixel_range!r}"
        ) from None
    if not high > low:
        raise DataError(f"pixel_range must be increasing (low < high), got {pixel_range!r}")
    check_split(split)
    return low, high


def _check_shard(shard):
    """``(num_shards, index)`` of a ``shard`` argument (``(1, 0)`` for None)."""
    if shard is None:
        return 1, 0
    if (not isinstance(shard, tuple | list) or len(shard) != 2 or not all(map(is_int, shard))
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
