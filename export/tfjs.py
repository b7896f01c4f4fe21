"""TF.js export of a trained ALAE: four graph models and a manifest, for the browser demo.

``alae-export RUN_DIR OUT --format tfjs`` writes ``OUT/NAME/``:

=================  ==============================================  ===========================
graph              inputs                                          outputs
=================  ==============================================  ===========================
encoder/           images [N, H, W, C] float32 in [0, 1]           w [N, latent]
generator/         w [N, latent] (MLP) or w_styles [N, S, latent]  images [N, H, W, C] in
                   (StyleALAE) (+ noise [N, noise_size])           [0, 1]
mapping/           z [N, latent], truncation_psi [N]               w [N, latent] or
                                                                   w_styles [N, S, latent]
reconstruct/       images (+ noise [N, noise_size])                images: G(E(x))
=================  ==============================================  ===========================

and ``manifest.json``, which says all of this in JSON (plus the preset, the noise layout and
the run's own alae-eval scores), so a page needs nothing but the folder.

The graphs are converted by the pinned ``tensorflowjs`` converter from SavedModel signatures
built on the same networks and conversions as the TF Serving export (``core.Networks``), with
two differences TF.js needs: no run-time input checks (TF.js has no Assert op; the page fixes
the shapes), and StyleALAE's per-pixel noise is an input (TF.js has no stateless random ops). The
noise input is every noise map of the generator flattened and concatenated, in
``manifest["noise"]["shapes"]`` order; zeros give the mean image, N(0, 1) draws the noise
training used. The demo loads encoder, generator and mapping, so no weights are downloaded twice;
reconstruct is the one-call graph for other pages.
"""

import base64
import contextlib
import json
import os
import tempfile

import tensorflow as tf

from alae_tf.cli import stderr_captured
from alae_tf.export.core import (
    ExportError,
    Networks,
    check_destination,
    check_exportable,
    model_facts,
    spec_json,
    write_archive,
    written_atomically,
)

FORMAT = "alae-tf TF.js export 1"
MANIFEST = "manifest.json"
GRAPHS = ("encoder", "generator", "mapping", "reconstruct")
QUANTIZATIONS = ("float16", "uint8")
# The run's alae-eval numbers copied into the manifest, when the run has them.
SCORE_KEYS = ("w/ema", "w/raw", "features/ema")
NOTES = (
    "images in [0, 1], NHWC; inputs are clipped to [0, 1]",
    "truncation_psi: one value per example; 1 = no truncation, 0 = the average w",
    "noise: the generator's noise maps flattened and concatenated in noise.shapes "
    "order; zeros give the mean image, N(0, 1) the noise used in training",
    "w_styles[:, k] is the w of style slot k; slots 2b and 2b + 1 style "
    "generator block b (block 0 is 4x4); coarse slots first",
)


class BrowserSignatures(Networks):
    """The functions behind the TF.js graphs (unchecked; StyleALAE noise as one input).

    Args:
        model: an ALAE or StyleALAE at full resolution.
    """

    def __init__(self, model):
        super().__init__(model)
        self.noise_size = sum(h * w for h, w in self.noise_shapes)

    def split_noise(self, noise):
        """[N, noise_size] -> the generator's noise maps, [N, H, W, 1] each."""
        maps, start = [], 0
        for h, w in self.noise_shapes:
            maps.append(tf.reshape(noise[:, start:start + h * w], [-1, h, w, 1]))
            start += h * w
        return maps

    def encoder_fn(self, images):
        return {"w": self.encoder(self.images_in(images))}

    def generator_fn(self, w, noise=None):
        noise = None if noise is None else self.split_noise(noise)
        return {"images": self.images_out(self.run_generator(w, noise=noise), tf.float32)}

    def mapping_fn(self, z, truncation_psi):
        return {"w_styles" if self.styled else "w": self.mapping_f(z,
                                                                  truncation_psi=truncation_psi)}

    def reconstruct_fn(self, images, noise=None):
        w = self.encoder(self.images_in(images))
        return self.generator_fn(w, noise)

    def specs(self):
        """{graph: (function, [TensorSpec, ...])}."""
        images = tf.TensorSpec((None, *self.image_shape), tf.float32, name="images")
        latent = (None, self.latent_dim)
        z = tf.TensorSpec(latent, tf.float32, name="z")
        psi = tf.TensorSpec((None,), tf.float32, name="truncation_psi")
        if not self.styled:
            w = tf.TensorSpec(latent, tf.float32, name="w")
            return {"encoder": (self.encoder_fn, [images]),
                    "generator": (self.generator_fn, [w]),
                    "mapping": (self.mapping_fn, [z, psi]),
                    "reconstruct": (self.reconstruct_fn, [images])}
        noise = tf.TensorSpec((None, self.noise_size), tf.float32, name="noise")
        w_styles = tf.TensorSpec((None, self.num_styles, self.latent_dim), tf.float32,
                                 name="w_styles")
        return {"encoder": (self.encoder_fn, [images]),
                "generator": (self.generator_fn, [w_styles, noise]),
                "mapping": (self.mapping_fn, [z, psi]),
                "reconstruct": (self.reconstruct_fn, [images, noise])}

    def outputs(self, graph):
        image = {"dtype": "float32", "shape": [-1, *self.image_shape], "range": [0.0, 1.0]}
        w = {"dtype": "float32", "shape": [-1, self.latent_dim]}
        if graph == "encoder":
            return {"w": w}
        if graph == "mapping":
            if self.styled:
                return {"w_styles": {"dtype": "float32",
                                     "shape": [-1, self.num_styles, self.latent_dim]}}
            return {"w": w}
        return {"images": image}


def run_scores(run_dir):
    """The alae-eval numbers of ``run_dir`` worth showing with an export ({} if not evaluated)."""
    path = os.path.join(run_dir, "metrics.json")
    try:
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return {}
    scores = {}
    for key in SCORE_KEYS:
        entry = metrics.get("representation", {}).get(key)
        if entry:
            scores[key] = {"knn1": round(entry["knn1"], 4), "svm": round(entry["svm"], 4)}
    for key in ("reconstruction_mse",):
        if key in metrics:
            scores[key] = round(metrics[key], 5)
    samples = metrics.get("samples", {})
    for key in ("confident_fraction", "label_agreement"):
        if key in samples:
            scores[f"samples/{key}"] = round(samples[key], 4)
    if scores:
        scores["num_test"] = metrics.get("num_test")
    return scores


def _folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


@contextlib.contextmanager
def _saved_model_loaded_once():
    """The converter loads the SavedModel again for every signature it converts (1.6 s each for
    the 32 px StyleALAE, 4 graphs); within this block it loads each folder once and converts
    every graph from that one load (the converter reads the loaded model and does not change
    it: the same graphs and weights, 5 s less for the 32 px StyleALAE on an AVX2 CPU)."""
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as converter

    load, loaded = converter._load_model, {}

    def load_once(saved_model_dir, tags):
        key = (saved_model_dir, tuple(tags) if isinstance(tags, list) else tags)
        if key not in loaded:
            loaded[key] = load(saved_model_dir, tags)
        return loaded[key]

    converter._load_model = load_once
    try:
        yield
    finally:
        converter._load_model = load


def _convert(saved_model_dir, signature, out_dir, quantize, quiet):
    # Imported here: tensorflowjs pulls in TF-DF, JAX and flax, seconds of import time that
    # the SavedModel path does not need. TF-DF's import-time banner wants IPython when stdout
    # is not a terminal (under pytest, in a pipe); it is switched off.
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as converter

    # Grappler logs through absl whatever TF_CPP_MIN_LOG_LEVEL says; a quiet CLI hides it.
    try:
        with stderr_captured() if quiet else contextlib.nullcontext():
            converter.convert_tf_saved_model(
                saved_model_dir, out_dir, signature_def=signature, saved_model_tags="serve",
                quantization_dtype_map={quantize: True} if quantize else None,
                use_structured_outputs_names=True)
    except ValueError as e:  # the converter's "Unsupported Ops in the model" and the like
        raise ExportError(f"the TF.js converter refused the {signature} graph: {e}") from None


# Fused ops whose bias input the converter may have set to a computed tensor.
_UNFUSED_OP = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
               "_FusedMatMul": "MatMul"}
_FUSION_ATTRS = ("fused_ops", "num_args", "epsilon", "leakyrelu_alpha", "TArgs",
                 "num_host_args", "_input_shapes")


def _node_name(tensor):
    return tensor.split(":")[0].lstrip("^")


def unfuse_tensor_biases(topology, weights):
    """Splits fused conv/matmul nodes whose "bias" is a computed tensor back into op + add.

    Grappler folds StyleALAE's ``conv -> + noise * strength -> + bias`` into one fused
    convolution whose bias is the [N, H, W, C] sum of both. TF.js's CPU and WebGL kernels
    broadcast such a bias, but its WASM kernels take a rank-1 bias only ("FusedConv2D only
    supports rank-1 bias"). This rewrites those nodes as the plain op, an AddV2 and the fused
    activation, under the original node name, so every backend runs the graph.

    Args:
        topology: model.json's ``modelTopology`` (changed in place).
        weights: the names of the graph's weights (constants).

    Returns:
        How many nodes were split.
    """
    nodes, split = [], 0
    for node in topology["node"]:
        op = node["op"]
        inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        if op not in _UNFUSED_OP or len(inputs) < 3 or _node_name(inputs[2]) in weights:
            nodes.append(node)
            continue
        fused = [base64.b64decode(f).decode() for f in
                 node["attr"].get("fused_ops", {}).get("list", {}).get("s", [])]
        if not fused or fused[0] != "BiasAdd" or len(fused) > 2 or (
                len(fused) == 2 and fused[1] not in ("Relu", "LeakyRelu")):
            raise ExportError(f"cannot split the fused node {node['name']} ({fused}) for TF.js")
        name = node["name"]
        dtype = node["attr"]["T"]
        plain = {key: value for key, value in node["attr"].items()
                 if key not in _FUSION_ATTRS}
        controls = [i for i in node.get("input", []) if i.startswith("^")]
        nodes.append({"name": f"{name}/unfused", "op": _UNFUSED_OP[op],
                      "input": inputs[:2] + controls, "attr": plain})
        add_name = name if len(fused) == 1 else f"{name}/unfused_bias"
        nodes.append({"name": add_name, "op": "AddV2", "input": [f"{name}/unfused", inputs[2]],
                      "attr": {"T": dtype}})
        if len(fused) == 2:
            activation = {"name": name, "op": fused[1], "input": [add_name], "attr": {"T": dtype}}
            if fused[1] == "LeakyRelu":
                activation["attr"]["alpha"] = {"f": node["attr"]["leakyrelu_alpha"]["f"]}
            nodes.append(activation)
        split += 1
    topology["node"] = nodes
    return split


def _make_portable(graph_dir):
    """Applies ``unfuse_tensor_biases`` to the converted graph in ``graph_dir``."""
    path = os.path.join(graph_dir, "model.json")
    with open(path, encoding="utf-8") as f:
        graph = json.load(f)
    weights = {w["name"] for group in graph["weightsManifest"] for w in group["weights"]}
    if unfuse_tensor_biases(graph["modelTopology"], weights):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(graph, f)


@contextlib.contextmanager
def browser_forms(networks):
    """While tracing: every ``FusedUpsampleConv2D`` of ``networks`` computed in its
    "depth_to_space" form (a 3x3 convolution and depth_to_space, the same function), so the
    graphs hold no Conv2DBackpropInput: TF.js runs that op as a scalar loop on WASM, and
    through an im2col texture on WebGL, while its convolutions run on XNNPACK and WebGL's
    packed convolution."""
    from alae_tf.models.style.layers import FusedUpsampleConv2D

    layers = [layer for network in (networks.mapping_f, networks.generator, networks.encoder)
              for layer in network._flatten_layers()
              if isinstance(layer, FusedUpsampleConv2D)]
    for layer in layers:
        layer.form = "depth_to_space"
    try:
        yield len(layers)
    finally:
        for layer in layers:
            del layer.form  # back to the class's default


def texture_needs(fn, input_specs):
    """What one image needs of a WebGL texture in ``fn``'s graph, in values (4 per texel):

    - "im2col_values": the largest im2col matrix, the most kh * kw * C_in * H_out * W_out
      over its convolutions larger than 1 x 1 (0 without any). TF.js's default WebGL
      convolution multiplies such a matrix, [N, kh * kw * C_in, H_out * W_out], held in one
      texture;
    - "im2col_width": the most H_out * W_out of those convolutions (that matrix's width);
    - "tensor_values": the largest tensor of the graph (every op's outputs).

    The page splits batches and picks its convolution from these (manifest "graphs")."""
    specs = [tf.TensorSpec((1, *spec.shape[1:]), spec.dtype) for spec in input_specs]
    graph = tf.function(fn).get_concrete_function(*specs).graph
    needs = {"im2col_values": 0, "im2col_width": 0, "tensor_values": 0}
    for op in graph.get_operations():
        for output in op.outputs:
            if output.shape.is_fully_defined():
                needs["tensor_values"] = max(needs["tensor_values"],
                                             int(output.shape.num_elements()))
        if op.type != "Conv2D":
            continue
        kh, kw, c_in = op.inputs[1].shape[:3]
        _, h_out, w_out, _ = op.outputs[0].shape
        if kh * kw > 1:
            needs["im2col_values"] = max(needs["im2col_values"],
                                         int(kh * kw * c_in * h_out * w_out))
            needs["im2col_width"] = max(needs["im2col_width"], int(h_out * w_out))
    return needs


def _write_graphs(folder, signatures, quantize, quiet):
    """Converts every graph of ``signatures`` into ``folder``/GRAPH; returns the manifest's
    "graphs" entry."""
    specs = signatures.specs()
    graphs = {}
    with tempfile.TemporaryDirectory(prefix="alae_tfjs_") as work:
        saved_model_dir = os.path.join(work, "saved_model")
        with browser_forms(signatures):
            write_archive(saved_model_dir, signatures, specs)
            needs = {name: texture_needs(fn, input_specs)
                     for name, (fn, input_specs) in specs.items()}
        with _saved_model_loaded_once():
            for name, (_, input_specs) in specs.items():
                graph_dir = os.path.join(folder, name)
                _convert(saved_model_dir, name, graph_dir, quantize, quiet)
                _make_portable(graph_dir)
                graphs[name] = {
                    "path": f"{name}/model.json",
                    "bytes": _folder_bytes(graph_dir),
                    "inputs": {s.name: spec_json(s) for s in input_specs},
                    "outputs": signatures.outputs(name),
                    **needs[name],
                }
    return graphs


def export_tfjs(model, preset, path, quantize=None, overwrite=False, scores=None, source=None,
                quiet=False):
    """Writes the TF.js export of ``model`` (an ALAE at full resolution) to folder ``path``.

    Args:
        quantize: None (float32 weights), "float16" or "uint8" (weights stored in that type
            and expanded to float32 when loaded; 2x and 4x smaller).
        scores: alae-eval numbers to record in the manifest (``run_scores``).
        source: where the export comes from (run directory, epoch), for the manifest.
        quiet: hide the converter's log lines (Grappler logs through absl whatever
            TF_CPP_MIN_LOG_LEVEL says).

    Returns:
        The manifest (also written to ``path``/manifest.json).

    Raises:
        ExportError: mid-growth model, unknown quantization, or ``path`` exists without
            ``overwrite``.
    """
    check_exportable(model)
    if quantize not in (None, *QUANTIZATIONS):
        raise ExportError(f"unknown quantization {quantize!r}: pick one of "
                          f"{', '.join(QUANTIZATIONS)}")
    check_destination(path, overwrite, "--name")
    signatures = BrowserSignatures(model)
    with written_atomically(path) as tmp:
        manifest = {
            "format": FORMAT,
            **model_facts(model, preset),
            "dataset": preset.dataset,
            "noise": {"size": signatures.noise_size,
                      "shapes": [list(s) for s in signatures.noise_shapes]},
            "images": {"dtype": "float32", "range": [0.0, 1.0], "layout": "NHWC"},
            "quantization": quantize or "float32",
            "graphs": _write_graphs(tmp, signatures, quantize, quiet),
            "scores": scores or {},
            "source": source or {},
            "notes": list(NOTES),
        }
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")
    return manifest
