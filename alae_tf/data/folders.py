"""Image folders: every PNG, JPEG, BMP and GIF file below a directory, checked before use."""

import functools
import os
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from alae_tf.data.base import Source, decode_square
from alae_tf.data.image_checks import check_images, decode_new
from alae_tf.errors import DataError, DataWarning

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# Images above this many pixels are skipped (make_dataset's max_image_pixels, alae-train
# --max-image-pixels): 40 megapixels decode to 120 MB of uint8 and about 0.5 GB of float32
# before the resize, per image in flight.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


def open_folder(path, split, resolution, channels, max_image_pixels):
    """The usable images below ``path`` as a table source of file paths, center-cropped and
    resized when read.

    Every file is checked first (``alae_tf.data.image_checks``). Files that do not decode,
    and images above ``max_image_pixels``, are skipped and counted in one DataWarning per
    process; other extensions are ignored. A folder has a single split, ``"train"``.
    """
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
    files, summary, setting = _usable_files(root, candidates, max_image_pixels, path)
    if not files:
        raise DataError(
            f"none of the {len(candidates)} image files in folder {path!r} can be used: "
            f"{summary}", setting=setting,
        )
    if summary:
        _warn_once(f"folder {path}: using {len(files)} of {len(candidates)} image files; "
                   f"skipped {summary}", setting)

    def decode_example(file):
        return decode_square(tf.io.read_file(file), resolution, channels)

    return Source(spec=f"folder:{path}", split=split, num_examples=len(files),
                  table=np.array(files), decode_example=decode_example)


def _usable_files(root, candidates, max_image_pixels, label):
    """``(files, summary, setting)``: the paths of the usable ``candidates`` in order, one
    phrase counting the skipped ones ("" when none are), and "max_image_pixels" when the
    limit skipped some (else None)."""
    checks, stamps = check_images(root, candidates)
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
    # Only the files within the limit are decoded: a huge one is never loaded.
    decode_new(root, checks, stamps, within, label)
    files = []
    for file in within:
        if checks[file]["error"]:
            bad.append((file, checks[file]["error"]))
        else:
            files.append(file)
    bad.sort()
    return (files, _skip_summary(bad, too_large, max_image_pixels, root),
            "max_image_pixels" if too_large else None)


def _skip_summary(bad, too_large, max_image_pixels, root):
    def first(paths):
        return os.path.relpath(paths[0][0], root) + f": {paths[0][1]}"

    parts = []
    if bad:
        parts.append(f"{len(bad)} damaged or not images (first: {first(bad)})")
    if too_large:
        parts.append(
            f"{len(too_large)} above the limit of {max_image_pixels:,} pixels (first: "
            f"{first(too_large)}; raise max_image_pixels to use them)"
        )
    return "; ".join(parts)


@functools.cache
def _warn_once(message, setting=None):
    """Warns of skipped files once per process, however often the folder is opened
    (training, the held-out images and the image grids each open it); the cache of this
    function is the memory of the warnings given."""
    # stacklevel 5 names the caller of make_dataset (through open_folder and open_source).
    warnings.warn(DataWarning(message, setting=setting), stacklevel=5)
