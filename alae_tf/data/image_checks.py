"""Checks of image files before training, remembered per file on disk.

Each file's header is read (format and size), then the file is decoded by the decoder
training uses (``tf.io.decode_image``), so that no file can fail mid-training. The results
are kept per folder, per file path, size and mtime, under ``$ALAE_TF_CACHE_DIR`` or
``~/.cache/alae_tf``: a resumed run over a large folder does not decode it again.
"""

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import struct
import sys

import tensorflow as tf
from PIL import BmpImagePlugin, GifImagePlugin, Image, JpegImagePlugin, PngImagePlugin

from alae_tf.cache import cache_dir
from alae_tf.errors import short_reason

# The formats tf.io.decode_image reads, and PIL's readers of their headers; a file PIL opens
# in any other format would fail in the middle of training. jpeg_factory is what Image.open
# uses for JPEG: it names multi-picture files "MPO".
_TF_FORMAT_READERS = (BmpImagePlugin.BmpImageFile, GifImagePlugin.GifImageFile,
                      JpegImagePlugin.jpeg_factory, PngImagePlugin.PngImageFile)
_TF_FORMATS = frozenset({"PNG", "JPEG", "BMP", "GIF"})
# Folders with at least this many images not yet checked say so on stderr first.
_REPORT_CHECKS_FROM = 500

_log = logging.getLogger(__name__)


def check_images(root, candidates):
    """Header checks of ``candidates`` (paths below ``root``), from the cache when a file's
    size and mtime are unchanged.

    Returns:
        ``(checks, stamps)``: ``checks[path]`` is ``{"size": [W, H] | None, "error": str |
        None, "decoded": bool}``, ``stamps[path]`` the file's ``[size, mtime_ns]``. No file
        is decoded here: ``decode_new`` does that for the files the caller will use.
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
    # Reading headers is I/O bound: threads overlap the waits.
    with concurrent.futures.ThreadPoolExecutor() as pool:
        headers = list(pool.map(_read_header, fresh))
    for p, header in zip(fresh, headers, strict=True):
        checks[str(p)] = {"stamp": stamps[str(p)], **header, "decoded": False}
    return checks, stamps


def decode_new(root, checks, stamps, files, label):
    """Runs the decoder over those of ``files`` not yet decoded; records and caches the
    results in ``checks``. ``label`` names the folder in the notice of a long check."""
    todo = [f for f in files if not checks[f]["decoded"]]
    if not todo:
        return
    if len(todo) >= _REPORT_CHECKS_FROM:
        print(f"checking {len(todo)} images in {label} with TensorFlow's decoder (once; the "
              f"results are cached in {cache_dir()})", file=sys.stderr, flush=True)
    errors = _decode_errors(todo)
    for index, file in enumerate(todo):
        checks[file]["decoded"] = True
        checks[file]["error"] = errors.get(index)
    _save_checks(root, {k: v for k, v in checks.items() if k in stamps})


def _read_header(path):
    """``{"size": [W, H], "error": None}``, or an error naming why the file is no image."""
    try:
        image = _open_tf_format(path)
        if image is None:  # not one of training's formats: PIL names the format it is, if any
            image = Image.open(path)
            image.close()
        if image.format not in _TF_FORMATS:  # e.g. TIFF, or MPO (a JPEG of several pictures)
            return {"size": None, "error": f"{image.format} is not PNG, JPEG, BMP or GIF"}
        return {"size": list(image.size), "error": None}
    except Image.UnidentifiedImageError:
        return {"size": None, "error": "not an image file"}
    except Exception as e:  # PIL's format plugins raise many types (OSError, SyntaxError, ...)
        return {"size": None, "error": f"not an image ({short_reason(e, with_type=False)})"}


def _open_tf_format(path):
    """The header of the file at ``path`` as read by the first of training's formats that
    accepts it (no pixels are read), or None.

    Image.open would also apply PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``)
    to the size; the format readers alone do not, so the caller's pixel limit decides, and
    PIL's global setting is neither needed nor touched.
    """
    with open(path, "rb") as file:
        for reader in _TF_FORMAT_READERS:
            file.seek(0)
            # A reader raises these for another format's file; Image.open skips them too.
            with contextlib.suppress(SyntaxError, IndexError, TypeError, struct.error):
                return reader(file, str(path))
    return None


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


def _cache_file(root):
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:20]
    return cache_dir() / "image_checks" / f"{digest}.json"


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
