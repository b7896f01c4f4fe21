"""A photo through a trained model: read it, find and crop the face, encode, decode, refine.

``FacePipeline`` holds a model and what every photo shares (the crop, fixed noise); its
methods take uint8 pictures and return uint8 pictures and float32 codes, so that the
applications (``alae-photo``) and a notebook use the same steps.
"""

import dataclasses
import math
import os
import time

import numpy as np

from alae_tf.errors import FaceError
from alae_tf.faces import align as align_module
from alae_tf.faces.detect import detect_faces

# Photos above this many pixels are refused (PIL's own decompression-bomb guard is lower).
MAX_PHOTO_PIXELS = 80_000_000


def read_photo(path, max_pixels=MAX_PHOTO_PIXELS):
    """uint8 ``[H, W, 3]`` of an image file, turned upright as its EXIF orientation says."""
    from PIL import Image, ImageOps

    name = os.path.basename(path)
    try:
        with Image.open(path) as image:
            if image.size[0] * image.size[1] > max_pixels:
                raise FaceError(f"{name}: {image.size[0]} x {image.size[1]} pixels is more than "
                                f"the {max_pixels:,} this reads; scale the photo down")
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise FaceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FaceError(f"{path}: a folder, not a photo") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = str(e).split("\n")[0] or type(e).__name__
        raise FaceError(f"{name}: not an image this can read ({reason})") from None


@dataclasses.dataclass
class Found:
    """The face of a photo: its landmarks, the crop and one-line notes about the choice."""

    points: np.ndarray
    alignment: object
    notes: list


class FacePipeline:
    """A trained model (``alae_tf.runs.load_trained_model``) and the crop its photos need.

    Args:
        model: the ALAE, at full resolution.
        alignment: "ffhq", "celeba" or "none" (a preset's ``face_alignment``).
        seed: seed of the generator's per-pixel noise, fixed for every decode.
    """

    def __init__(self, model, alignment, seed=0):
        if alignment not in align_module.ALIGNMENTS:
            raise FaceError(f"unknown face alignment {alignment!r}; use one of "
                            f"{', '.join(align_module.ALIGNMENTS)}")
        self.model = model
        self.alignment = alignment
        self.size = model.image_shape[0]
        self.channels = model.image_shape[-1]
        self.noise = self._fixed_noise(seed)

    def _fixed_noise(self, seed):
        """The noise of ``seed`` as the SavedModel export draws it (its ``noise_seed``; its
        ``reconstruct`` and ``edit`` use seed 0), so that both give the same pictures."""
        import tensorflow as tf

        from alae_tf.models.style.model import noise_from_seeds

        if not self.model.num_styles:
            return None
        return noise_from_seeds(tf.constant([seed], tf.int64), self.model.noise_shapes())

    # ------------------------------------------------------------------ the face

    def find(self, photo, name, points=None, face=0):
        """The crop of ``photo``: from ``points`` (5 or 68 landmarks) when given, else from
        the ``face``-th largest face MTCNN finds (alignment "none" needs neither)."""
        notes = []
        if self.alignment == "none":
            return Found(None, align_module.centre_crop(photo, self.size), notes)
        if points is None:
            faces = detect_faces(photo)
            if not faces:
                raise FaceError(f"no face found in {name}; give its landmarks (--landmarks) or "
                                "crop it yourself and use --align none")
            if face >= len(faces):
                raise FaceError(f"{name} has {len(faces)} face(s); --face counts from 0")
            if len(faces) > 1:
                chosen = "the largest" if face == 0 else f"face {face}"
                notes.append(f"{len(faces)} faces in {name}: using {chosen} (box "
                             f"{faces[face].box}); --face N picks another")
            points = faces[face].points
        alignment = align_module.align(photo, points, self.alignment, self.size)
        across = float(np.hypot(*(alignment.quad[3] - alignment.quad[0])))
        if across < self.size / 2:
            notes.append(f"the face in {name} is {across:.0f} px across, under half the "
                         f"model's {self.size} px: its crop is upsampled and will look soft")
        return Found(np.asarray(points, np.float64), alignment, notes)

    # ------------------------------------------------------------------ the model

    def _model_input(self, picture):
        picture = np.asarray(picture)
        if self.channels == 1:
            picture = np.rint(picture.astype(np.float32).mean(-1, keepdims=True))
        return self.model.pixel_range.from_uint8(picture[None])

    def encode(self, picture):
        """E of a uint8 ``[S, S, 3]`` crop: float32 ``[latent]``."""
        return np.asarray(self.model.encode(self._model_input(picture)))[0]

    def decode(self, w):
        """G of one w (``[latent]``) or of per-slot styles (``[slots, latent]``): uint8
        ``[S, S, 3]``."""
        import tensorflow as tf

        w = tf.constant(np.asarray(w, np.float32)[None])
        images = self.model.decode(w, noise=self.noise) if self.noise else self.model.decode(w)
        picture = np.asarray(self.model.pixel_range.to_uint8(np.asarray(images)))[0]
        return np.repeat(picture, 3, axis=-1) if picture.shape[-1] == 1 else picture

    def styles(self, w):
        """One w in every style slot: ``[slots, latent]``."""
        return np.repeat(np.asarray(w, np.float32)[None], self.model.num_styles, axis=0)

    @property
    def w_avg(self):
        return np.asarray(self.model.inference_network("mapping_f").w_avg)

    # ------------------------------------------------------------------ refinement

    def refine(self, picture, w, steps, per_slot=False, learning_rate=0.01, pull=0.1,
               lpips=None, lpips_weight=1.0, progress=None):
        """Moves ``w`` (E's code of ``picture``) so that G(w) matches ``picture`` better:
        Adam on the pixel MSE (plus ``lpips_weight`` times LPIPS when ``lpips`` is an
        ``alae_tf.metrics.lpips.LPIPS``) plus ``pull`` times the mean squared distance from
        E's code, which keeps the result near the codes the model makes (edits stay
        meaningful). Noise stays fixed. ``per_slot``: one w per style slot (W+).

        Returns (refined w: ``[latent]`` or ``[slots, latent]``, [(step, loss)] every tenth).

        Raises:
            FaceError: the loss is not finite (lower the learning rate).
        """
        import tensorflow as tf

        target = tf.constant(self._model_input(picture), tf.float32)
        start = self.styles(w) if per_slot else np.asarray(w, np.float32)
        anchor = tf.constant(start)
        variable = tf.Variable(start)
        optimizer = tf.keras.optimizers.Adam(learning_rate)
        pixel_range = self.model.pixel_range
        model, noise = self.model, self.noise

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                images = model.decode(variable[None], noise=noise) if noise else model.decode(
                    variable[None])
                loss = tf.reduce_mean(tf.square(images - target))
                if lpips is not None:
                    loss += lpips_weight * tf.reduce_mean(lpips.distance_tensors(
                        pixel_range.to_unit(images, clip=False), pixel_range.to_unit(target)))
                loss += pull * tf.reduce_mean(tf.square(variable - anchor))
            optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
            return loss

        history, began = [], time.perf_counter()
        for i in range(1, steps + 1):
            loss = float(step())
            if not math.isfinite(loss):
                raise FaceError(f"refinement diverged at step {i} (loss {loss}); lower the "
                                "learning rate")
            if i % 10 == 0 or i == steps:
                history.append((i, loss))
                if progress:
                    progress(i, steps, loss, time.perf_counter() - began)
        return variable.numpy(), history


def psnr(a, b):
    """PSNR in dB of two uint8 pictures."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))
