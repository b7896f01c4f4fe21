"""Faces and their five landmarks in a photo, by MTCNN (Zhang et al. 2016; the PyPI ``mtcnn``
package, MIT, TensorFlow, its weights inside the wheel)."""

import dataclasses
import functools

import numpy as np

from alae_tf.errors import FaceError

# MTCNN's keypoint names, in alae_tf.faces.landmarks.POINTS order.
_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclasses.dataclass(frozen=True)
class Face:
    """A face found in a photo.

    Attributes:
        box: (left, top, width, height) in pixels.
        confidence: the detector's probability that the box holds a face.
        points: float ``[5, 2]``, the landmarks in ``POINTS`` order (pixel indices).
    """

    box: tuple
    confidence: float
    points: np.ndarray

    @property
    def side(self):
        """The box's smaller side in pixels."""
        return min(self.box[2], self.box[3])


@functools.lru_cache(maxsize=1)
def _detector():
    from mtcnn import MTCNN

    return MTCNN()


def detect_faces(photo, min_confidence=0.9):
    """The faces MTCNN finds in ``photo`` (uint8 ``[H, W, 3]``), largest box first."""
    photo = np.asarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[-1] != 3:
        raise FaceError(f"expected a uint8 [H, W, 3] photo, got {photo.dtype} "
                        f"{list(photo.shape)}")
    found = []
    for result in _detector().detect_faces(photo):
        if result["confidence"] < min_confidence:
            continue
        points = np.array([result["keypoints"][k] for k in _KEYPOINTS], np.float64)
        found.append(Face(tuple(int(v) for v in result["box"]), float(result["confidence"]),
                          points))
    return sorted(found, key=lambda f: -f.box[2] * f.box[3])
