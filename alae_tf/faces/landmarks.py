"""The five landmarks this package aligns with, and reading them from a file.

Points are (x, y) pixel coordinates with the centre of the top-left pixel at (0, 0), as
detectors report them. "Left" and "right" are as seen in the image (the person's right eye is
``left_eye``), as MTCNN and dlib's 68-point model both order them.
"""

import json
import os

import numpy as np

from alae_tf.errors import FaceError

POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def five_points(points, what="landmarks"):
    """``points``: 5 points in ``POINTS`` order, or the 68 of the iBUG 300-W scheme (dlib's
    shape predictor), whose eyes are averaged (36-41, 42-47) and whose nose tip (30) and outer
    mouth corners (48, 54) are taken. Returns float64 ``[5, 2]``.

    Raises:
        FaceError: not 5 or 68 finite (x, y) pairs.
    """
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise FaceError(f"{what}: expected a list of [x, y] numbers") from None
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] not in (5, 68):
        raise FaceError(f"{what}: expected 5 or 68 [x, y] points, got an array of shape "
                        f"{list(p.shape)}")
    if not np.all(np.isfinite(p)):
        raise FaceError(f"{what}: the points must be finite numbers")
    if len(p) == 68:
        return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    return p


def read_landmarks(path, photos):
    """The five landmarks of each photo in ``photos`` from a JSON file: an object mapping a
    photo's file name (or its path as given) to its 5 or 68 [x, y] points, or, for a single
    photo, the list of points alone. Returns {photo path: [5, 2] array}.

    Raises:
        FaceError: the file cannot be read, is not such JSON, or lacks a photo.
    """
    try:
        with open(path, encoding="utf-8") as f:
            given = json.load(f)
    except OSError as e:
        raise FaceError(f"cannot read landmarks file {path!r} ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FaceError(f"{path}: not valid JSON ({e})") from None
    if isinstance(given, list):
        if len(photos) != 1:
            raise FaceError(f"{path}: one list of points serves one photo; for {len(photos)} "
                            "give an object {\"photo.jpg\": [[x, y], ...], ...}")
        return {photos[0]: five_points(given, f"{path}")}
    if not isinstance(given, dict):
        raise FaceError(f"{path}: expected an object of photo name -> [[x, y], ...]")
    found = {}
    for photo in photos:
        for key in (photo, os.path.basename(photo)):
            if key in given:
                found[photo] = five_points(given[key], f"{path}, {key!r}")
                break
        else:
            raise FaceError(f"{path}: no landmarks for {os.path.basename(photo)!r} (the file "
                            f"names {len(given)} photo(s))")
    return found
