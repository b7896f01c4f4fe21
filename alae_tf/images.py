"""Image grids and PNG files: the uint8 edge of the library.

Networks produce float images in the data range ([0, 1] for MNIST, [-1, 1] for the
StyleALAE datasets); everything here converts at the edge and leaves the tensors alone.
"""

import os
import pathlib
import uuid

import numpy as np
from PIL import Image


def to_uint8(images, pixel_range=(0.0, 1.0)):
    """Maps float images linearly from ``pixel_range`` to 0..255, clipping what falls outside.

    uint8 = round(clip((x - low) / (high - low), 0, 1) * 255)

    Args:
        images: float array of any shape, e.g. ``[N, H, W, C]``.
        pixel_range: ``(low, high)``, the values that become 0 and 255.

    Returns:
        A uint8 array of the same shape.
    """
    low, high = (float(v) for v in pixel_range)
    if not high > low:
        raise ValueError(f"pixel_range must be increasing, got {pixel_range}")
    unit = np.clip((np.asarray(images, dtype=np.float32) - low) / (high - low), 0.0, 1.0)
    return np.rint(unit * 255.0).astype(np.uint8)


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
