"""SavedModel export of a trained ALAE for TF Serving: named, documented, self-checking signatures.

The export holds the EMA networks at the model's full resolution and these signatures (every
image is float32 in [0, 1], or uint8 in [0, 255] in the ``*_uint8`` twins; any batch size N >= 1):

====================  =========================================  ===========================
signature             inputs                                     outputs
====================  =========================================  ===========================
reconstruct           images [N, H, W, C]                        images: G(E(x))
encode                images [N, H, W, C]                        w [N, latent]
decode                w [N, latent] (+ noise_seed [N])           images
decode_styles         w_styles [N, S, latent], noise_seed [N]    images (StyleALAE only)
generate              z [N, latent], truncation_psi [N]          images, w (the w fed to G)
                      (+ noise_seed [N])
====================  =========================================  ===========================

``serving_default`` is ``reconstruct``. StyleALAE's generator adds per-pixel noise: the
``noise_seed`` inputs make it a function of the request (one int64 seed per example), and
``reconstruct`` uses seed 0 for every image, so the same request always gives the same answer.
Inputs are checked in the graph: a batch of 0, NaN or infinity fail with an
InvalidArgumentError naming the input; the signature itself fixes dtype, rank and image size;
float images are clipped to [0, 1].

The same description, machine-readable, is written to ``assets.extra/alae_signatures.json``
and served by the ``metadata`` signature (a JSON string), so a client needs neither this
package nor its source to use the export.
"""

import contextlib
import json
import os
import shutil

import keras
import tensorflow as tf

from alae_tf.layers import EqualizedDense, fold_equalized_scales
from alae_tf.style_layers import EqualizedConv2D, FusedDownsampleConv2D, FusedUpsampleConv2D
from alae_tf.style_model import StyleALAE, noise_from_seeds

SERVING_DEFAULT = "reconstruct"
EQUALIZED_LAYERS = (EqualizedDense, EqualizedConv2D, FusedUpsampleConv2D, FusedDownsampleConv2D)
METADATA_FILE = "alae_signatures.json"


class ExportError(Exception):
    """The model or the output location cannot be exported (a usage error)."""


def check_exportable(model):
    """Refuses a StyleALAE that is not at its full resolution with the fade-in finished."""
    if model.level != model.max_level:
        raise ExportError(
            f"the model is at level of detail {model.level} of {model.max_level} "
            f"({model.level_resolution} px); export needs the full resolution: train longer")
    alpha = float(model.alpha())
    if alpha < 1.0:
        raise ExportError(
            f"the model stopped in the middle of a fade-in (alpha {alpha:.3f}); train until "
            "the fade-in of its last level is over")


def _inference_copy(network):
    """A copy of ``network`` with its equalized layers' run-time scales folded into weights."""
    copy = network.__class__.from_config(network.get_config())
    copy.build()
    copy.set_weights(network.get_weights())
    # _flatten_layers is Keras's own walk over nested sub-layers (lists included).
    for layer in copy._flatten_layers(include_self=False):
        if isinstance(layer, EQUALIZED_LAYERS):
            fold_equalized_scales(layer)
    return copy


class _Signatures:
    """The functions behind the signatures, on folded copies of one model's EMA networks."""

    def __init__(self, model, pixel_range, checked=True):
        # checked=False leaves out the run-time input checks (Assert ops), for graphs whose
        # runtime has no Assert (TF.js) and whose caller fixes the shapes itself.
        self.checked = checked
        self.mapping_f = _inference_copy(model.mapping_f_ema)
        self.generator = _inference_copy(model.generator_ema)
        self.encoder = _inference_copy(model.encoder_ema)
        self.styled = isinstance(model, StyleALAE)
        self.noise_shapes = model.generator.noise_shapes() if self.styled else []
        self.num_styles = model.num_styles if self.styled else 0
        self.latent_dim = model.latent_dim
        self.image_shape = tuple(model.image_shape)
        self.low, self.high = (float(v) for v in pixel_range)

    # ---------------------------------------------------------------- conversions and checks

    def _shaped(self, tensor, name, tail):
        """Checks at run time that ``tensor`` is [N, *tail].

        A loaded signature does not enforce its input shapes (the traced graph assumes them),
        so a wrong rank or image size would otherwise reach the networks. The shape is padded
        with ones to the expected rank; the element count must then match too.
        """
        if not self.checked:
            return tensor
        rank = 1 + len(tail)
        shape = tf.concat([tf.shape(tensor, out_type=tf.int64), tf.ones([rank], tf.int64)],
                          0)[:rank]
        matches = tf.logical_and(
            tf.reduce_all(tf.equal(shape[1:], tf.constant(tail, tf.int64, shape=[len(tail)]))),
            tf.equal(tf.size(tensor, out_type=tf.int64), tf.reduce_prod(shape)))
        expected = ", ".join(["N", *(str(d) for d in tail)])
        check = tf.debugging.Assert(
            matches, [f"{name} must have shape ({expected}); got", tf.shape(tensor)])
        with tf.control_dependencies([check]):
            return tf.identity(tensor)

    def _nonempty(self, tensor, name):
        if not self.checked:
            return tensor
        tf.debugging.assert_positive(
            tf.shape(tensor)[0], message=f"{name}: the batch is empty; send at least one example")
        return tensor

    def _finite(self, tensor, name):
        if not self.checked:
            return tensor
        return tf.debugging.assert_all_finite(
            self._nonempty(tensor, name), f"{name} contains NaN or infinity")

    def _same_batch(self, a, b, names):
        if not self.checked:
            return
        tf.debugging.assert_equal(
            tf.shape(a)[0], tf.shape(b)[0],
            message=f"{names[0]} and {names[1]} must have the same number of examples")

    def _images_in(self, images):
        """uint8 [0, 255] or float [0, 1] images -> the model's pixel range."""
        images = self._shaped(images, "images", self.image_shape)
        if images.dtype == tf.uint8:
            unit = tf.cast(self._nonempty(images, "images"), tf.float32) / 255.0
        else:
            unit = tf.clip_by_value(self._finite(images, "images"), 0.0, 1.0)
        return self.low + (self.high - self.low) * unit

    def _images_out(self, x, dtype):
        unit = tf.clip_by_value((x - self.low) / (self.high - self.low), 0.0, 1.0)
        if dtype == tf.uint8:
            return tf.cast(tf.round(unit * 255.0), tf.uint8)
        return unit

    def _decode(self, w, seeds=None, noise=None):
        """G(w); StyleALAE's noise comes from ``seeds`` [N] or is given as ``noise`` (a list)."""
        if not self.styled:
            return self.generator(w)
        if noise is None:
            noise = noise_from_seeds(seeds, self.noise_shapes)
        return self.generator(w, noise=noise)

    # ---------------------------------------------------------------- signatures

    def reconstruct(self, images):
        x = self._images_in(images)
        seeds = tf.zeros(tf.shape(x)[:1], tf.int64)
        return {"images": self._images_out(self._decode(self.encoder(x), seeds), images.dtype)}

    def encode(self, images):
        return {"w": self.encoder(self._images_in(images))}

    def decode(self, w, noise_seed=None, dtype=tf.float32):
        styles = len(w.shape) == 3
        name = "w_styles" if styles else "w"
        tail = (self.num_styles, self.latent_dim) if styles else (self.latent_dim,)
        w = self._finite(self._shaped(w, name, tail), name)
        if noise_seed is not None:
            noise_seed = self._shaped(noise_seed, "noise_seed", ())
            self._same_batch(w, noise_seed, (name, "noise_seed"))
        return {"images": self._images_out(self._decode(w, noise_seed), dtype)}

    def generate(self, z, truncation_psi, noise_seed=None, dtype=tf.float32):
        z = self._finite(self._shaped(z, "z", (self.latent_dim,)), "z")
        psi = self._finite(self._shaped(truncation_psi, "truncation_psi", ()), "truncation_psi")
        self._same_batch(z, psi, ("z", "truncation_psi"))
        if noise_seed is not None:
            noise_seed = self._shaped(noise_seed, "noise_seed", ())
            self._same_batch(z, noise_seed, ("z", "noise_seed"))
        w = self.mapping_f(z, truncation_psi=psi)
        return {"images": self._images_out(self._decode(w, noise_seed), dtype), "w": w}

    # ---------------------------------------------------------------- specs

    def specs(self):
        """{name: (function, [TensorSpec, ...])}, serving_default's function first."""
        image = (None, *self.image_shape)
        latent = (None, self.latent_dim)
        seed = tf.TensorSpec((None,), tf.int64, name="noise_seed")
        psi = tf.TensorSpec((None,), tf.float32, name="truncation_psi")
        z = tf.TensorSpec(latent, tf.float32, name="z")
        w = tf.TensorSpec(latent, tf.float32, name="w")
        specs = {}
        for suffix, dtype in (("", tf.float32), ("_uint8", tf.uint8)):
            images = tf.TensorSpec(image, dtype, name="images")
            specs["reconstruct" + suffix] = (self.reconstruct, [images])
            specs["encode" + suffix] = (self.encode, [images])
            if self.styled:
                w_styles = tf.TensorSpec((None, self.num_styles, self.latent_dim), tf.float32,
                                         name="w_styles")
                specs["decode" + suffix] = (
                    lambda w, s, d=dtype: self.decode(w, s, d), [w, seed])
                specs["decode_styles" + suffix] = (
                    lambda w, s, d=dtype: self.decode(w, s, d), [w_styles, seed])
                specs["generate" + suffix] = (
                    lambda z, p, s, d=dtype: self.generate(z, p, s, d), [z, psi, seed])
            else:
                specs["decode" + suffix] = (lambda w, d=dtype: self.decode(w, dtype=d), [w])
                specs["generate" + suffix] = (
                    lambda z, p, d=dtype: self.generate(z, p, dtype=d), [z, psi])
        return specs


def model_facts(model, preset):
    """What every export says of its model: family, preset and tensor sizes."""
    return {
        "model": type(model).__name__,
        "preset": preset.name,
        "resolution": model.image_shape[0],
        "channels": model.image_shape[2],
        "latent_dim": model.latent_dim,
        "num_styles": model.num_styles if isinstance(model, StyleALAE) else 0,
    }


def describe(model, preset, signatures):
    """The export's self-description: model facts and every signature's tensors."""
    image_range = {"float32": [0.0, 1.0], "uint8": [0, 255]}
    described = {}
    for name, (_, specs) in signatures.specs().items():
        dtype = "uint8" if name.endswith("_uint8") else "float32"
        inputs = {}
        for spec in specs:
            entry = {"dtype": spec.dtype.name, "shape": [-1 if d is None else d
                                                         for d in spec.shape]}
            if spec.name == "images":
                entry["range"] = image_range[dtype]
            inputs[spec.name] = entry
        image_out = {"dtype": dtype, "shape": [-1, *model.image_shape],
                     "range": image_range[dtype]}
        if name.startswith("encode"):
            outputs = {"w": {"dtype": "float32", "shape": [-1, model.latent_dim]}}
        elif name.startswith("generate"):
            w_shape = ([-1, model.num_styles, model.latent_dim] if signatures.styled
                       else [-1, model.latent_dim])
            outputs = {"images": image_out, "w": {"dtype": "float32", "shape": w_shape}}
        else:
            outputs = {"images": image_out}
        described[name] = {"inputs": inputs, "outputs": outputs}
    return {
        "format": "alae-tf SavedModel export 1",
        **model_facts(model, preset),
        "serving_default": SERVING_DEFAULT,
        "signatures": described,
        "notes": [
            "float32 images are in [0, 1] (inputs clipped to it), uint8 images in [0, 255]",
            "a batch of 0 examples, NaN or infinity is refused with InvalidArgumentError",
            "noise_seed: one int64 per example; the same seed gives the same image",
            "reconstruct uses noise seed 0 for every image",
            "truncation_psi: one value per example; 1 = no truncation, 0 = the average w",
        ],
    }


def export_saved_model(model, preset, path, overwrite=False):
    """Writes the SavedModel of ``model`` (an ALAE at full resolution) to ``path``.

    The directory is written under a temporary name beside ``path`` and renamed when
    complete, so ``path`` never holds a half-written export.

    Raises:
        ExportError: the model is mid-growth, or ``path`` exists and ``overwrite`` is False.
    """
    check_exportable(model)
    if os.path.exists(path) and not overwrite:
        raise ExportError(f"{path} exists; pick another --version or pass --overwrite")
    signatures = _Signatures(model, preset.pixel_range)
    metadata = json.dumps(describe(model, preset, signatures), indent=2, sort_keys=True)

    archive = keras.export.ExportArchive()
    for network in (signatures.mapping_f, signatures.generator, signatures.encoder):
        archive.track(network)
    for name, (fn, specs) in signatures.specs().items():
        archive.add_endpoint(name, fn, input_signature=specs)
    describe_fn = tf.function(lambda: {"json": tf.constant(metadata)})
    describe_fn()  # traced: an endpoint without inputs needs no input_signature then
    archive.add_endpoint("metadata", describe_fn)

    with written_atomically(path) as tmp:
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, "assets.extra", METADATA_FILE), "w", encoding="utf-8") as f:
            f.write(metadata + "\n")
    return path


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
