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
edit                  images [N, H, W, C], strengths [N, D]      images, w, start [N, D]
                      (only when the run has attribute directions)
====================  =========================================  ===========================

``edit`` moves E(x) along the run's D attribute directions (``alae_tf.faces.directions``; their
names, in order, are in the metadata): ``w = E(x) + strengths @ directions``, decoded with the
edited w in the first 16 style slots and E(x) in the rest (the authors' demo), noise seed 0.
``start`` is each image's coordinate along each direction, ``(E(x) - w_avg) . n``: the authors'
sliders show ``start + strength``. Images are aligned crops (``alae-photo`` writes them).

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

import json
import os

import tensorflow as tf

from alae_tf.export.core import (
    Networks,
    check_destination,
    check_exportable,
    model_facts,
    spec_json,
    write_archive,
    written_atomically,
)

SERVING_DEFAULT = "reconstruct"
METADATA_FILE = "alae_signatures.json"


def _shaped(tensor, name, tail):
    """Checks at run time that ``tensor`` is [N, *tail].

    A loaded signature does not enforce its input shapes (the traced graph assumes them),
    so a wrong rank or image size would otherwise reach the networks. The shape is padded
    with ones to the expected rank; the element count must then match too.
    """
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


def _nonempty(tensor, name):
    tf.debugging.assert_positive(
        tf.shape(tensor)[0], message=f"{name}: the batch is empty; send at least one example")
    return tensor


def _finite(tensor, name):
    return tf.debugging.assert_all_finite(
        _nonempty(tensor, name), f"{name} contains NaN or infinity")


def _same_batch(a, b, names):
    tf.debugging.assert_equal(
        tf.shape(a)[0], tf.shape(b)[0],
        message=f"{names[0]} and {names[1]} must have the same number of examples")


class ServingSignatures(Networks):
    """The functions behind the TF Serving signatures, with run-time input checks.

    Args:
        model: an ALAE or StyleALAE at full resolution.
    """

    def __init__(self, model, directions=None):
        super().__init__(model)
        self.direction_names = list(directions or {})
        self.directions = (tf.constant([directions[n] for n in self.direction_names],
                                       tf.float32) if directions else None)

    def images_in(self, images):
        """``Networks.images_in`` after checking the shape, the batch and (floats) finiteness."""
        images = _shaped(images, "images", self.image_shape)
        if images.dtype == tf.uint8:
            return super().images_in(_nonempty(images, "images"))
        return super().images_in(_finite(images, "images"))

    # ---------------------------------------------------------------- signatures

    def reconstruct(self, images):
        x = self.images_in(images)
        seeds = tf.zeros(tf.shape(x)[:1], tf.int64)
        return {"images": self.images_out(self.run_generator(self.encoder(x), seeds), images.dtype)}

    def encode(self, images):
        return {"w": self.encoder(self.images_in(images))}

    def decode(self, w, noise_seed=None, dtype=tf.float32):
        styles = len(w.shape) == 3
        name = "w_styles" if styles else "w"
        tail = (self.num_styles, self.latent_dim) if styles else (self.latent_dim,)
        w = _finite(_shaped(w, name, tail), name)
        if noise_seed is not None:
            noise_seed = _shaped(noise_seed, "noise_seed", ())
            _same_batch(w, noise_seed, (name, "noise_seed"))
        return {"images": self.images_out(self.run_generator(w, noise_seed), dtype)}

    def generate(self, z, truncation_psi, noise_seed=None, dtype=tf.float32):
        z = _finite(_shaped(z, "z", (self.latent_dim,)), "z")
        psi = _finite(_shaped(truncation_psi, "truncation_psi", ()), "truncation_psi")
        _same_batch(z, psi, ("z", "truncation_psi"))
        if noise_seed is not None:
            noise_seed = _shaped(noise_seed, "noise_seed", ())
            _same_batch(z, noise_seed, ("z", "noise_seed"))
        w = self.mapping_f(z, truncation_psi=psi)
        return {"images": self.images_out(self.run_generator(w, noise_seed), dtype), "w": w}

    def edit(self, images, strengths, dtype=tf.float32):
        from alae_tf.faces.directions import EDIT_SLOTS

        x = self.images_in(images)
        count = len(self.direction_names)
        strengths = _finite(_shaped(strengths, "strengths", (count,)), "strengths")
        _same_batch(x, strengths, ("images", "strengths"))
        w = self.encoder(x)
        start = tf.matmul(w - self.mapping_f.w_avg[None], self.directions, transpose_b=True)
        edited = w + tf.matmul(strengths, self.directions)
        styles = edited
        if self.styled:
            slots = tf.range(self.num_styles)[None, :, None]
            styles = tf.where(slots < EDIT_SLOTS, edited[:, None], w[:, None])
        seeds = tf.zeros(tf.shape(x)[:1], tf.int64)
        return {"images": self.images_out(self.run_generator(styles, seeds), dtype),
                "w": edited, "start": start}

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
                specs["decode" + suffix] = (
                    lambda w, d=dtype: self.decode(w, dtype=d), [w])
                specs["generate" + suffix] = (
                    lambda z, p, d=dtype: self.generate(z, p, dtype=d), [z, psi])
            if self.direction_names:
                strengths = tf.TensorSpec((None, len(self.direction_names)), tf.float32,
                                          name="strengths")
                specs["edit" + suffix] = (
                    lambda x, t, d=dtype: self.edit(x, t, d), [images, strengths])
        return specs


def describe(model, preset, signatures):
    """The export's self-description: model facts and every signature's tensors."""
    image_range = {"float32": [0.0, 1.0], "uint8": [0, 255]}
    described = {}
    for name, (_, specs) in signatures.specs().items():
        dtype = "uint8" if name.endswith("_uint8") else "float32"
        inputs = {}
        for spec in specs:
            entry = spec_json(spec)
            if spec.name == "images":
                entry["range"] = image_range[dtype]
            inputs[spec.name] = entry
        image_out = {"dtype": dtype, "shape": [-1, *model.image_shape],
                     "range": image_range[dtype]}
        if name.startswith("encode"):
            outputs = {"w": {"dtype": "float32", "shape": [-1, model.latent_dim]}}
        elif name.startswith("edit"):
            outputs = {"images": image_out,
                       "w": {"dtype": "float32", "shape": [-1, model.latent_dim]},
                       "start": {"dtype": "float32",
                                 "shape": [-1, len(signatures.direction_names)]}}
        elif name.startswith("generate"):
            w_shape = ([-1, model.num_styles, model.latent_dim] if signatures.styled
                       else [-1, model.latent_dim])
            outputs = {"images": image_out, "w": {"dtype": "float32", "shape": w_shape}}
        else:
            outputs = {"images": image_out}
        described[name] = {"inputs": inputs, "outputs": outputs}
    extra = {}
    if signatures.direction_names:
        from alae_tf.faces.directions import EDIT_SLOTS, SLIDER_RANGE

        extra["directions"] = {
            "names": signatures.direction_names, "slider_range": list(SLIDER_RANGE),
            "edit_slots": EDIT_SLOTS,
            "strengths": "edit's strengths[:, i] moves w along names[i]; start[:, i] is where "
                         "E(x) is along it (the authors' sliders show start + strength)"}
    return {
        "format": "alae-tf SavedModel export 1",
        **model_facts(model, preset),
        "face_alignment": preset.face_alignment,
        **extra,
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


def export_saved_model(model, preset, path, overwrite=False, directions=None):
    """Writes the SavedModel of ``model`` (an ALAE at full resolution) to ``path``; with
    ``directions`` ({name: vector}, ``alae_tf.faces.directions.load_directions``) it also has
    the ``edit`` signatures.

    The directory is written under a temporary name beside ``path`` and renamed when
    complete, so ``path`` never holds a half-written export.

    Raises:
        ExportError: the model is mid-growth, or ``path`` exists and ``overwrite`` is False.
    """
    check_exportable(model)
    check_destination(path, overwrite, "--version")
    signatures = ServingSignatures(model, directions)
    metadata = json.dumps(describe(model, preset, signatures), indent=2, sort_keys=True)
    describe_fn = tf.function(lambda: {"json": tf.constant(metadata)})
    describe_fn()  # traced: an endpoint without inputs needs no input_signature then

    with written_atomically(path) as tmp:
        write_archive(tmp, signatures, signatures.specs(), extra={"metadata": describe_fn})
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, "assets.extra", METADATA_FILE), "w", encoding="utf-8") as f:
            f.write(metadata + "\n")
    return path
