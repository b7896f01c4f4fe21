"""What the SavedModel and TF.js exports share: the checks, the networks, the archive, the JSON.

Both formats are written the same way:

1. ``check_exportable`` refuses a model that is not at its full resolution;
2. a ``Networks`` (folded copies of the model's EMA networks plus the pixel conversions) is
   wrapped by the format's own signature functions, ``{name: (function, [TensorSpec, ...])}``;
3. ``write_archive`` writes those functions as a SavedModel, inside ``written_atomically`` so
   the destination never holds a half-written export;
4. ``spec_json`` and ``model_facts`` describe the result in the JSON that ships beside it.
"""

import contextlib
import os
import shutil

import keras
import tensorflow as tf

from alae_tf.images import PixelRange
from alae_tf.models.families import family_of
from alae_tf.models.layers import EqualizedDense, fold_equalized_scales
from alae_tf.models.style.layers import EqualizedConv2D, FusedDownsampleConv2D, FusedUpsampleConv2D
from alae_tf.models.style.model import noise_from_seeds

EQUALIZED_LAYERS = (EqualizedDense, EqualizedConv2D, FusedUpsampleConv2D, FusedDownsampleConv2D)


class ExportError(Exception):
    """The model or the output location cannot be exported (a usage error)."""


def resolution_shortfall(model):
    """Why ``model`` is not at its full resolution with the fade-in finished, or None.

    The reason is a phrase that fits after the model's name: "is at level of detail 2 of 3
    (16 px)" or "stopped in the middle of a fade-in (alpha 0.250)". A model of a family that
    does not grow is always at its full resolution.
    """
    if not family_of(model).progressive:
        return None
    if model.level != model.max_level:
        return (f"is at level of detail {model.level} of {model.max_level} "
                f"({model.level_resolution} px)")
    alpha = float(model.alpha())
    if alpha < 1.0:
        return f"stopped in the middle of a fade-in (alpha {alpha:.3f})"
    return None


def check_exportable(model):
    """Raises ExportError for a model that ``resolution_shortfall`` finds short."""
    shortfall = resolution_shortfall(model)
    if shortfall is None:
        return
    advice = ("export needs the full resolution: train longer" if model.level != model.max_level
              else "train until the fade-in of its last level is over")
    raise ExportError(f"the model {shortfall}; {advice}")


def check_destination(path, overwrite, hint):
    """Raises ExportError if ``path`` exists and ``overwrite`` is False; ``hint`` names the flag
    that picks another destination ("--version", "--name")."""
    if os.path.exists(path) and not overwrite:
        raise ExportError(f"{path} exists; pick another {hint} or pass --overwrite")


def model_facts(model, preset):
    """What every export says of its model: family, preset and tensor sizes."""
    return {
        "model": type(model).__name__,
        "preset": preset.name,
        "resolution": model.image_shape[0],
        "channels": model.image_shape[2],
        "latent_dim": model.latent_dim,
        "num_styles": model.num_styles,
    }


def spec_json(spec):
    """A TensorSpec as the exports' JSON describes it: ``{"dtype": ..., "shape": [-1, ...]}``."""
    return {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape]}


def inference_copy(network):
    """A copy of ``network`` with its equalized layers' run-time scales folded into weights."""
    copy = network.__class__.from_config(network.get_config())
    copy.build()
    copy.set_weights(network.get_weights())
    # _flatten_layers is Keras's own walk over nested sub-layers (lists included).
    for layer in copy._flatten_layers(include_self=False):
        if isinstance(layer, EQUALIZED_LAYERS):
            fold_equalized_scales(layer)
    return copy


class Networks:
    """Folded copies of one model's EMA networks and the conversions every export applies.

    The exports' images are in [0, 1] (float) or [0, 255] (uint8); the networks work in the
    model's pixel range. What the family's models take (one w per style slot, noise inputs)
    comes from its ``Family`` record. The format modules build their signature functions on
    these.

    Args:
        model: an ALAE or StyleALAE at full resolution.
    """

    def __init__(self, model):
        family = family_of(model)
        self.mapping_f = inference_copy(model.mapping_f_ema)
        self.generator = inference_copy(model.generator_ema)
        self.encoder = inference_copy(model.encoder_ema)
        self.num_styles = model.num_styles
        self.styled = self.num_styles > 0  # w per style slot: [N, slots, latent]
        self.noise_inputs = family.noise_inputs
        self.noise_shapes = model.generator.noise_shapes() if self.noise_inputs else []
        self.latent_dim = model.latent_dim
        self.image_shape = tuple(model.image_shape)
        self.pixels = PixelRange.of(model)

    def images_in(self, images):
        """uint8 [0, 255] or float [0, 1] images (floats clipped) -> the model's pixel range."""
        if images.dtype == tf.uint8:
            return self.pixels.from_uint8(images)
        return self.pixels.from_unit(tf.clip_by_value(images, 0.0, 1.0))

    def images_out(self, x, dtype):
        """The model's pixel range -> [0, 1] float32 or [0, 255] uint8 images."""
        if dtype == tf.uint8:
            return self.pixels.to_uint8(x)
        return self.pixels.to_unit(x)

    def run_generator(self, w, seeds=None, noise=None):
        """G(w); StyleALAE's noise comes from ``seeds`` [N] or is given as ``noise`` (a list)."""
        if not self.noise_inputs:
            return self.generator(w)
        if noise is None:
            noise = noise_from_seeds(seeds, self.noise_shapes)
        return self.generator(w, noise=noise)


def write_archive(path, networks, signatures, extra=None):
    """Writes a SavedModel at ``path`` whose variables are ``networks``' weights.

    Args:
        networks: the ``Networks`` the signature functions call.
        signatures: {name: (function, [TensorSpec, ...])}, one endpoint each, in this order.
        extra: {name: traced tf.function without inputs}, endpoints added after them.
    """
    archive = keras.export.ExportArchive()
    for network in (networks.mapping_f, networks.generator, networks.encoder):
        archive.track(network)
    for name, (fn, specs) in signatures.items():
        archive.add_endpoint(name, fn, input_signature=specs)
    for name, fn in (extra or {}).items():
        archive.add_endpoint(name, fn)
    archive.write_out(path, verbose=False)


@contextlib.contextmanager
def written_atomically(path):
    """Yields a temporary folder beside ``path``; when the block completes, it becomes
    ``path`` (replacing an old one). On any error the temporary folder is removed, so
    ``path`` never holds a half-written export."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        if os.path.exists(path):
            old = f"{tmp}.old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
