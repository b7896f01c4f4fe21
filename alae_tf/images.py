"""Pixels: the one owner of the pixel range, and image grids and PNG files.

Networks produce float images in their model's pixel range ([0, 1] for MNIST, [-1, 1] for the
StyleALAE datasets). ``PixelRange`` is the one conversion between that range, [0, 1] units and
uint8, used by the data pipeline, sampling, metrics and export; it works on NumPy arrays and on
TensorFlow tensors alike (a tensor in, a tensor out).
"""

import dataclasses
import os
import pathlib
import uuid

import numpy as np
from PIL import Image


def _is_tensor(x):
    return type(x).__module__.startswith(("tensorflow", "keras"))


@dataclasses.dataclass(frozen=True)
class PixelRange:
    """The float range ``[low, high]`` a model's images live in: uint8 0 and 255, and units 0
    and 1, land exactly on ``low`` and ``high``.

    Args:
        low: the value of black (uint8 0).
        high: the value of white (uint8 255).
    """

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if not self.high > self.low:
            raise ValueError(f"pixel_range must be increasing, got {(self.low, self.high)}")

    @classmethod
    def of(cls, thing):
        """The range of ``thing``: a ``PixelRange``, a ``(low, high)`` pair, or anything with a
        ``pixel_range`` attribute (a model, a preset)."""
        if isinstance(thing, PixelRange):
            return thing
        thing = getattr(thing, "pixel_range", thing)
        return thing if isinstance(thing, PixelRange) else cls(*thing)

    def __iter__(self):  # unpacks as (low, high)
        return iter((self.low, self.high))

    def to_unit(self, images, clip=True):
        """Images in this range -> [0, 1], clipped (as a saved image would be) unless ``clip``
        is False (an error measured on a generator's own output)."""
        unit = (images - self.low) / (self.high - self.low)
        if not clip:
            return unit if _is_tensor(images) else np.asarray(unit, dtype=np.float32)
        if _is_tensor(images):
            import tensorflow as tf

            return tf.clip_by_value(unit, 0.0, 1.0)
        return np.clip(np.asarray(unit, dtype=np.float32), 0.0, 1.0)

    def from_unit(self, unit):
        """[0, 1] images (not clipped) -> this range."""
        return self.low + (self.high - self.low) * unit

    def to_uint8(self, images):
        """Images in this range -> uint8, ``round(clip((x - low) / (high - low), 0, 1) * 255)``."""
        if _is_tensor(images):
            import tensorflow as tf

            return tf.cast(tf.round(self.to_unit(images) * 255.0), tf.uint8)
        unit = self.to_unit(np.asarray(images, dtype=np.float32))
        return np.rint(unit * 255.0).astype(np.uint8)

    def from_uint8(self, images):
        """uint8 (or uint8-valued float) images -> this range; x / 255 first, so that 0 and 255
        land exactly on ``low`` and ``high``."""
        if _is_tensor(images):
            import tensorflow as tf

            images = tf.cast(images, tf.float32)
        else:
            images = np.asarray(images, dtype=np.float32)
        return images / 255.0 * (self.high - self.low) + self.low


def to_uint8(images, pixel_range=(0.0, 1.0)):
    """Maps float images linearly from ``pixel_range`` to 0..255, clipping what falls outside
    (``PixelRange.to_uint8``).

    Args:
        images: float array of any shape, e.g. ``[N, H, W, C]``.
        pixel_range: ``(low, high)``, the values that become 0 and 255, or a ``PixelRange``.

    Returns:
        A uint8 array of the same shape.
    """
    return PixelRange.of(pixel_range).to_uint8(np.asarray(images, dtype=np.float32))


def make_grid(images, *, ncols, pixel_range=(0.0, 1.0), padding=2, pad_value=0):
    """Tiles images row by row into one uint8 image, with a border of ``padding`` pixels.

    Image ``i`` goes to row ``i // ncols``, column ``i % ncols``; cells of the last row past
    the final image stay ``pad_value``.

    Args:
        images: float ``[N, H, W, C]`` with C 1 or 3, in ``pixel_range``.
        ncols: images per row.
        pixel_range: ``(low, high)`` passed to ``to_uint8``.
        padding: pixels between neighbouring images and around the grid.
        pad_value: uint8 value of the padding.

    Returns:
        uint8 ``[rows * (H + padding) + padding, ncols * (W + padding) + padding, C]`` with
        ``rows = ceil(N / ncols)``.
    """
    images = to_uint8(images, pixel_range)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected images [N, H, W, 1 or 3], got shape {images.shape}")
    if ncols < 1 or padding < 0:
        raise ValueError(f"need ncols >= 1 and padding >= 0, got {ncols} and {padding}")
    n, height, width, channels = images.shape
    rows = -(-n // ncols)  # ceil
    step_y, step_x = height + padding, width + padding
    grid = np.full(
        (rows * step_y + padding, ncols * step_x + padding, channels), pad_value, dtype=np.uint8
    )
    for i, image in enumerate(images):
        top = padding + (i // ncols) * step_y
        left = padding + (i % ncols) * step_x
        grid[top : top + height, left : left + width] = image
    return grid


def save_png(path, grid):
    """Writes a uint8 image as PNG atomically, creating the parent directories.

    The PNG goes to a hidden temporary file beside ``path`` and is renamed over it, so a
    reader (a TensorBoard plugin, a web page polling samples) never sees a partial file.

    Args:
        path: destination file.
        grid: uint8 ``[H, W, 1]`` (greyscale) or ``[H, W, 3]`` (RGB).
    """
    grid = np.asarray(grid)
    if grid.dtype != np.uint8 or grid.ndim != 3 or grid.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 [H, W, 1 or 3], got {grid.dtype} {grid.shape}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    # Same directory, so os.replace is a rename within one file system and atomic.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def side_by_side(originals, reconstructions):
    """Interleaves originals and reconstructions as ``[x0, r0, x1, r1, ...]`` along N.

    With an even ``ncols`` in ``make_grid`` each original sits just left of its
    reconstruction.

    Args:
        originals: ``[N, H, W, C]``.
        reconstructions: ``[N, H, W, C]``, in the same order as ``originals``.

    Returns:
        ``[2N, H, W, C]``.
    """
    originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} differ"
        )
    return np.stack([originals, reconstructions], axis=1).reshape(-1, *originals.shape[1:])
