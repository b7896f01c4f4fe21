"""Opening a data source by its name, without building a pipeline."""

from alae_tf.data.base import Source, check_split, is_int
from alae_tf.data.folders import DEFAULT_MAX_IMAGE_PIXELS, open_folder
from alae_tf.data.mnist import open_mnist
from alae_tf.data.tfds import open_tfds
from alae_tf.errors import DataError


def open_source(
    spec: str = "mnist",
    *,
    resolution: int,
    channels: int,
    split: str = "train",
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Source:
    """Opens and checks one split of a data source; builds no ``tf.data`` pipeline.

    Cheap next to a pipeline, and what ``make_dataset`` does first: a tfds dataset is
    downloaded and prepared, a folder's files are checked (see ``make_dataset``). The
    returned ``Source.num_examples`` is the number of usable images.

    Args:
        spec: ``"mnist"``, ``"tfds:NAME"`` (e.g. ``"tfds:celeb_a"``) or ``"folder:PATH"``.
        resolution: side H = W of the images the source will decode to, at least 4.
        channels: 1 (grey) or 3 (RGB).
        split: ``"train"`` or ``"test"``; folders have only ``"train"``.
        max_image_pixels: folder images with more pixels (width x height) are skipped.

    Returns:
        The ``Source``.

    Raises:
        DataError: for bad settings, an unknown source, or data that cannot be read.
    """
    check_geometry(resolution, channels)
    check_split(split)
    if not isinstance(spec, str):
        raise DataError(f"data source must be a string, got {spec!r}")
    if spec == "mnist":
        return open_mnist(split, resolution, channels)
    if spec.startswith("tfds:"):
        return open_tfds(spec[len("tfds:") :], split, resolution, channels)
    if spec.startswith("folder:"):
        if not is_int(max_image_pixels) or max_image_pixels < 1:
            raise DataError(f"max_image_pixels must be a positive integer, got "
                            f"{max_image_pixels!r}")
        return open_folder(spec[len("folder:") :], split, resolution, channels,
                           int(max_image_pixels))
    raise DataError(
        f"unknown data source {spec!r}; use 'mnist', 'tfds:NAME' (e.g. 'tfds:celeb_a') "
        "or 'folder:PATH'"
    )


def check_geometry(resolution, channels):
    """Raises DataError for a resolution below 4 or channels other than 1 and 3."""
    if not is_int(resolution) or resolution < 4:
        raise DataError(f"resolution must be an integer >= 4, got {resolution!r}")
    if not is_int(channels) or channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")


def check_batch_size(source: Source, batch_size: int, num_shards: int = 1) -> None:
    """Checks that ``source`` has enough usable images for full batches of ``batch_size``
    in each of ``num_shards`` shards (what ``make_dataset`` with ``drop_remainder`` needs).

    Args:
        source: an opened ``Source``.
        batch_size: the batch size of one shard (the global batch without sharding).
        num_shards: the number of input pipelines sharing the examples.

    Raises:
        DataError: when a full batch needs more images than the source has.
    """
    if not is_int(batch_size) or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size > source.num_examples:
        raise DataError(
            f"a batch of {batch_size} needs more than the {source.num_examples} usable images "
            f"of {source.spec!r} (split {source.split!r}); add images or lower the batch size",
            setting="batch_size",
        )
    if batch_size * num_shards > source.num_examples:
        raise DataError(
            f"{num_shards} shards of {batch_size} images need more than the "
            f"{source.num_examples} usable images of {source.spec!r}; add images or lower the "
            "batch size", setting="batch_size",
        )
