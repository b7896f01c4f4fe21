"""The ``Source`` type every data source returns, and what the sources share."""

import dataclasses
import numbers
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from alae_tf.errors import DataError

SPLITS = ("train", "test")

# ITU-R BT.601 luma, as in PIL's convert("L") and JPEG's Y; the weights sum to 1, so a grey
# image stored as RGB keeps its grey levels.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclasses.dataclass(frozen=True, eq=False)
class Source:
    """One split of a data source, opened and checked, before any ``tf.data`` pipeline.

    A source is either a table (``table``: every example in memory, each pass over it a
    permutation of its rows) or a stream (``read_stream``: examples read in file order and
    shuffled in a buffer). Exactly one of the two is given.

    Args:
        spec: the source as named: ``"mnist"``, ``"tfds:NAME"`` or ``"folder:PATH"``.
        split: ``"train"`` or ``"test"``.
        num_examples: the number of usable images in the split.
        table: the rows of a table source: uint8 digits ``[N, 28, 28, 1]`` or the file paths
            ``[N]`` of a folder.
        read_stream: ``read_stream(shuffle, seed)`` gives the ``tf.data.Dataset`` of a stream
            source's encoded examples, shuffling the file order when ``shuffle``.
        decode_example: one row or stream element -> float32 ``[R, R, C]`` in 0..255; None
            when whole batches of rows are gathered and converted by ``decode_batch``.
        decode_batch: a batch of rows -> float32 ``[B, R, R, C]`` in 0..255; None when the
            examples are decoded one by one.
    """

    spec: str
    split: str
    num_examples: int
    table: np.ndarray | None = None
    read_stream: Callable[[bool, int], tf.data.Dataset] | None = None
    decode_example: Callable[[tf.Tensor], tf.Tensor] | None = None
    decode_batch: Callable[[tf.Tensor], tf.Tensor] | None = None

    def __post_init__(self):
        if (self.table is None) == (self.read_stream is None):
            raise ValueError("a Source has either a table or a read_stream, not both")


def check_split(split):
    """Raises DataError unless ``split`` is one of ``SPLITS``."""
    if split not in SPLITS:
        raise DataError(f"split must be 'train' or 'test', got {split!r}")


def is_int(value):
    """Whether ``value`` is an integer of any type, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def decode_square(encoded, resolution, channels):
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
