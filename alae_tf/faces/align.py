"""Crops of a photo as the face models' training images were cropped, each with its transform.

Three crops (a preset's ``face_alignment``):

- ``ffhq``: the FFHQ crop (NVlabs' ffhq-dataset, which the authors' ``align_faces.py`` follows
  for its 1024 px faces): a square oriented by the eye-to-eye and eye-to-mouth vectors, centred
  a tenth of the way from the eyes to the mouth, with a side of twice the eye distance or 1.8
  times the eye-to-mouth distance, whichever is larger. The photo is first shrunk when the
  square is over twice the output size, cropped to the square plus a border, and, when the
  square runs off the photo, padded by reflection and blended toward a blur and then toward
  the median colour at the padded edges; the square is resampled to ``4 * 1024`` px, reduced
  to 1024 px, then box-downsampled to the model's side (the authors' CelebA-HQ 256 faces are
  their 1024 px crops pooled 4 x 4).
- ``celeba``: the crop of the CelebA 128 model: CelebA's aligned 178 x 218 images (faces moved
  by a similarity onto mean landmark positions) cut to rows 60-188 and columns 25-153, as the
  reference's ``prepare_celeba_tfrecords.py`` does. Here one similarity takes the five points
  onto that template (the mean positions the authors list in ``align_faces.py``).
- ``none``: the photo's centre square (scenes, and models with no face alignment).

Every crop is an ``Alignment``: the image and the quad of the photo it came from, so that an
edited face can be put back (``paste_back``).

Coordinates: landmarks are pixel indices (the centre of the top-left pixel is (0, 0)); quads
are in PIL's continuous coordinates (pixel (i, j) covers [i, i + 1) x [j, j + 1)).
"""

import dataclasses

import numpy as np
from PIL import Image

from alae_tf.errors import FaceError
from alae_tf.faces import ALIGNMENTS
from alae_tf.faces.landmarks import five_points

# The FFHQ crop is made at this size (then box-downsampled to the model's side), resampled
# from a quad rendered at TRANSFORM_SIZE (ffhq-dataset's 1024 and 4096).
FFHQ_SIZE = 1024
TRANSFORM_SIZE = 4096
# CelebA's aligned frame: mean landmark positions (pixel indices) in the 178 x 218 images
# (the authors' align_faces.py lists them) and the crop the CelebA 128 model saw.
CELEBA_TEMPLATE = np.array([[69, 111], [108, 111], [88, 136], [72, 152], [105, 152]], float)
CELEBA_CROP = (25, 60, 153, 188)  # left, top, right, bottom (continuous coordinates)
# A crop is resampled at this many times its size and then box-downsampled, so that a face
# much larger than the crop is averaged rather than point-sampled.
SUPERSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class Alignment:
    """A crop of a photo and where it came from.

    Attributes:
        image: uint8 ``[size, size, 3]``, the crop.
        quad: float ``[4, 2]``: the points of the photo (continuous coordinates) that became
            the crop's top-left, bottom-left, bottom-right and top-right corners.
        method: "ffhq", "celeba" or "none".
        photo_size: (width, height) of the photo.
    """

    image: np.ndarray
    quad: np.ndarray
    method: str
    photo_size: tuple

    @property
    def size(self):
        return self.image.shape[0]

    def _affine(self, side):
        """(origin, 2x2 matrix) taking crop coordinates (side px) to photo coordinates."""
        q = self.quad
        return q[0], np.stack([(q[3] - q[0]) / side, (q[1] - q[0]) / side], axis=1)

    def to_crop(self, points):
        """Photo pixel indices -> pixel indices of the crop (``[N, 2]``)."""
        origin, matrix = self._affine(self.size)
        p = np.asarray(points, np.float64) + 0.5
        return (p - origin) @ np.linalg.inv(matrix).T - 0.5

    def to_photo(self, points):
        """Crop pixel indices -> photo pixel indices (``[N, 2]``)."""
        origin, matrix = self._affine(self.size)
        return origin + (np.asarray(points, np.float64) + 0.5) @ matrix.T - 0.5


def align(photo, points, method, size):
    """The ``method`` crop of ``photo`` (uint8 ``[H, W, 3]``) at ``size`` px, from the face's
    five landmarks (``points``, 5 or 68 points; unused by "none")."""
    if method not in ALIGNMENTS:
        raise FaceError(f"unknown face alignment {method!r}; use one of {', '.join(ALIGNMENTS)}")
    photo = _rgb(photo)
    if method == "none":
        return centre_crop(photo, size)
    points = five_points(points)
    return align_ffhq(photo, points, size) if method == "ffhq" else align_celeba(photo, points,
                                                                                 size)


def centre_crop(photo, size):
    """The largest centred square of ``photo``, resized to ``size``."""
    photo = _rgb(photo)
    height, width = photo.shape[:2]
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    quad = np.array([[left, top], [left, top + side], [left + side, top + side],
                     [left + side, top]])
    return Alignment(_resample(photo, quad, size), quad, "none", (width, height))


def ffhq_quad(points):
    """The FFHQ square of a face (pixel indices, ``[4, 2]``: top-left, bottom-left,
    bottom-right, top-right) and its side."""
    left_eye, right_eye, _, mouth_left, mouth_right = five_points(points)
    eyes = (left_eye + right_eye) / 2
    eye_to_eye = right_eye - left_eye
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eyes

    def turned(v):  # a quarter turn, from the image's y axis toward its x axis
        return np.array([-v[1], v[0]])

    across = eye_to_eye - turned(eye_to_mouth)  # the crop's x axis: eyes and mouth together
    if not np.hypot(*across) > 0:
        raise FaceError("the landmarks give a face of no size (the eyes and mouth coincide)")
    across *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) / np.hypot(*across)
    down = turned(across)
    centre = eyes + 0.1 * eye_to_mouth
    quad = np.stack([centre - across - down, centre - across + down, centre + across + down,
                     centre + across - down])
    return quad, 2 * np.hypot(*across)


def align_ffhq(photo, points, size, pad=True):
    """The FFHQ crop (module docstring) at ``size`` px; see ``align``."""
    photo = _rgb(photo)
    quad, side = ffhq_quad(points)
    if not side >= 1:
        raise FaceError(f"the landmarks give a face {side:.1f} px across; it needs at least 1")
    height, width = photo.shape[:2]
    record = quad + 0.5
    image = Image.fromarray(photo)

    # Shrink a face much larger than the output.
    shrink = int(np.floor(side / FFHQ_SIZE * 0.5))
    if shrink > 1:
        image = image.resize((int(np.rint(width / shrink)), int(np.rint(height / shrink))),
                             Image.LANCZOS)
        quad, side = quad / shrink, side / shrink

    # Crop to the square plus a border.
    border = max(int(np.rint(side * 0.1)), 3)
    low, high = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    box = (max(low[0] - border, 0), max(low[1] - border, 0),
           min(high[0] + border, image.size[0]), min(high[1] + border, image.size[1]))
    if box[2] - box[0] < image.size[0] or box[3] - box[1] < image.size[1]:
        image = image.crop(box)
        quad = quad - box[:2]

    # Pad where the square leaves the photo: reflect, then blur and flatten toward the edges.
    low, high = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    margins = np.array([max(border - low[0], 0), max(border - low[1], 0),
                        max(high[0] - image.size[0] + border, 0),
                        max(high[1] - image.size[1] + border, 0)])  # left, top, right, bottom
    if pad and margins.max() > border - 4:
        margins = np.maximum(margins, max(int(np.rint(side * 0.3)), 1))
        image = Image.fromarray(_padded(np.asarray(image), margins, side))
        quad = quad + margins[:2]

    crop = image.transform((TRANSFORM_SIZE, TRANSFORM_SIZE), Image.QUAD,
                           tuple((quad + 0.5).ravel()), Image.BILINEAR)
    crop = crop.resize((FFHQ_SIZE, FFHQ_SIZE), Image.LANCZOS)
    if size != FFHQ_SIZE:
        crop = crop.resize((size, size), Image.BOX)
    return Alignment(np.asarray(crop), record, "ffhq", (width, height))


def _padded(pixels, margins, side):
    """``pixels`` reflected out by ``margins`` (left, top, right, bottom), blended toward a
    blur of itself and toward its median colour the nearer a pixel is to the new edges."""
    from scipy.ndimage import gaussian_filter

    left, top, right, bottom = (int(m) for m in margins)
    a = np.pad(pixels.astype(np.float32), ((top, bottom), (left, right), (0, 0)), "reflect")
    h, w = a.shape[:2]
    y, x = np.ogrid[:h, :w]
    nearness = np.maximum(1.0 - np.minimum(x / left, (w - 1 - x) / right),
                          1.0 - np.minimum(y / top, (h - 1 - y) / bottom))[..., None]
    blur = side * 0.02
    a += (gaussian_filter(a, [blur, blur, 0]) - a) * np.clip(nearness * 3.0 + 1.0, 0.0, 1.0)
    a += (np.median(a, axis=(0, 1)) - a) * np.clip(nearness, 0.0, 1.0)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def celeba_similarity(points):
    """(scale * rotation 2x2, offset): the similarity that best takes the five landmarks
    (continuous coordinates) onto ``CELEBA_TEMPLATE`` (least squares, no reflection)."""
    source = five_points(points) + 0.5
    target = CELEBA_TEMPLATE + 0.5
    s_mean, t_mean = source.mean(0), target.mean(0)
    s, t = source - s_mean, target - t_mean
    # z = a + b i minimising sum |z * s_k - t_k|^2 over complex points.
    sc, tc = s[:, 0] + 1j * s[:, 1], t[:, 0] + 1j * t[:, 1]
    norm = np.sum(np.abs(sc) ** 2)
    if not norm > 0:
        raise FaceError("the landmarks give a face of no size (all five points coincide)")
    z = np.sum(np.conj(sc) * tc) / norm
    matrix = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return matrix, t_mean - matrix @ s_mean


def align_celeba(photo, points, size):
    """The CelebA 128 crop (module docstring) at ``size`` px; see ``align``."""
    photo = _rgb(photo)
    matrix, offset = celeba_similarity(points)
    left, top, right, bottom = CELEBA_CROP
    corners = np.array([[left, top], [left, bottom], [right, bottom], [right, top]], float)
    quad = (corners - offset) @ np.linalg.inv(matrix).T
    height, width = photo.shape[:2]
    return Alignment(_resample(photo, quad, size), quad, "celeba", (width, height))


def _resample(photo, quad, size):
    """The quad of ``photo`` as a ``size`` px square: resampled at SUPERSAMPLE times the size,
    then box-downsampled."""
    big = Image.fromarray(photo).transform((size * SUPERSAMPLE,) * 2, Image.QUAD,
                                           tuple(np.asarray(quad).ravel()), Image.BILINEAR)
    return np.asarray(big.resize((size, size), Image.BOX))


def paste_back(photo, alignment, face, feather=0.1):
    """``photo`` with ``face`` (uint8 ``[S, S, 3]``, e.g. the reconstruction of
    ``alignment.image``, any side) warped back onto the quad it was cropped from, inside an
    ellipse inscribed in the crop whose edge fades out over ``feather`` of the crop's side.

    Returns uint8 ``[H, W, 3]``; pixels outside the ellipse are the photo's own.
    """
    photo = _rgb(photo)
    face = _rgb(face)
    side = face.shape[0]
    origin, matrix = alignment._affine(side)
    inverse = np.linalg.inv(matrix)
    shift = -inverse @ origin
    coefficients = (inverse[0, 0], inverse[0, 1], shift[0], inverse[1, 0], inverse[1, 1],
                    shift[1])
    width, height = photo.shape[1], photo.shape[0]
    warped = np.asarray(Image.fromarray(face).transform(
        (width, height), Image.AFFINE, coefficients, Image.BILINEAR), np.float32)
    y, x = np.mgrid[:side, :side] + 0.5
    radius = np.hypot((x - side / 2) / (side * 0.42), (y - side / 2) / (side * 0.48))
    ramp = np.clip((1.0 - radius) / feather, 0.0, 1.0).astype(np.float32)
    mask = np.asarray(Image.fromarray(ramp, "F").transform(
        (width, height), Image.AFFINE, coefficients, Image.BILINEAR), np.float32)[..., None]
    blended = photo * (1.0 - mask) + warped * mask
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return np.where(mask > 0, out, photo)


def _rgb(image):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise FaceError(f"expected a uint8 [H, W, 3] picture, got {image.dtype} "
                        f"{list(image.shape)}")
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image[..., :3]
