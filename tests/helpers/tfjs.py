"""Running TF.js exports in Node (pure @tensorflow/tfjs, CPU backend) from the tests."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from alae_tf.export.tfjs import BrowserSignatures
from alae_tf.models.presets import build_model, get_preset

WEB_DEMO = Path(__file__).resolve().parents[2] / "web_demo"
RUN_EXPORT = WEB_DEMO / "tools" / "run_export.mjs"


def node():
    """The node executable; the web demo's npm packages must be installed (make setup)."""
    path = shutil.which("node")
    assert path, "node is not on PATH (the README's set-up installs Node.js from Debian)"
    assert (WEB_DEMO / "node_modules" / "@tensorflow" / "tfjs").is_dir(), (
        "web_demo/node_modules is missing: run `npm ci --prefix web_demo` (make setup does)")
    return path


def encode_inputs(inputs):
    return {graph: {name: {"shape": list(np.shape(v)), "data": np.ravel(v).astype(float).tolist()}
                    for name, v in feeds.items()}
            for graph, feeds in inputs.items()}


def decode_outputs(outputs):
    return {graph: {name: np.asarray(v["data"], np.float32).reshape(v["shape"])
                    for name, v in values.items()}
            for graph, values in outputs.items()}


def run_in_node(export_dir, inputs, tmp_path, backend="cpu"):
    """{graph: {input: array}} -> {graph: {output: array}} computed by TF.js in Node, on its
    pure-JS CPU backend (the reference of the browser comparisons) or on ``"wasm"``.

    With a "reconstruct" entry the result also has "chain_reconstruct": the encoder graph
    followed by the generator graph, as the demo page computes it.
    """
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    in_file, out_file = tmp_path / "node_inputs.json", tmp_path / "node_outputs.json"
    in_file.write_text(json.dumps(encode_inputs(inputs)))
    result = subprocess.run(
        [node(), str(RUN_EXPORT), str(export_dir), "--inputs", str(in_file), "--out",
         str(out_file), "--backend", backend], capture_output=True, text=True, timeout=300,
        cwd=WEB_DEMO, env={**os.environ, "NODE_NO_WARNINGS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return decode_outputs(json.loads(out_file.read_text()))


def graph_inputs(manifest, n=3, seed=0):
    """Fixed random inputs for every graph of an export, from its manifest."""
    rng = np.random.default_rng(seed)
    res, channels, latent = manifest["resolution"], manifest["channels"], manifest["latent_dim"]
    images = rng.uniform(size=(n, res, res, channels)).astype("float32")
    inputs = {
        "encoder": {"images": images},
        "mapping": {"z": rng.normal(size=(n, latent)).astype("float32"),
                    "truncation_psi": np.linspace(1.0, 0.0, n).astype("float32")},
        "reconstruct": {"images": images[::-1].copy()},
    }
    if manifest["num_styles"]:
        noise = rng.normal(size=(n, manifest["noise"]["size"])).astype("float32")
        inputs["generator"] = {
            "w_styles": rng.normal(size=(n, manifest["num_styles"], latent)).astype("float32"),
            "noise": noise}
        inputs["reconstruct"]["noise"] = noise
    else:
        inputs["generator"] = {"w": rng.normal(size=(n, latent)).astype("float32")}
    return inputs


def full_resolution_model(preset_name, **overrides):
    """A built model at its full resolution, EMA networks included."""
    preset = get_preset(preset_name, **overrides)
    keras.utils.set_random_seed(0)
    model = build_model(preset, seed=0)
    model.set_level(model.max_level)
    rng = np.random.default_rng(1)
    model(rng.uniform(*preset.pixel_range, size=(2, *preset.image_shape)).astype("float32"))
    model.generate(rng.normal(size=(2, preset.latent_dim)).astype("float32"))
    return model, preset


def reference_outputs(model, preset, inputs):
    """What each TF.js graph should return for ``inputs`` ({graph: {input: array}}), by Keras.

    Runs the same functions the export converts, in TensorFlow, so a TF.js runtime can be
    compared against them.
    """
    specs = BrowserSignatures(model).specs()
    results = {}
    for graph, feeds in inputs.items():
        fn, input_specs = specs[graph]
        args = [tf.constant(np.asarray(feeds[s.name], np.float32)) for s in input_specs]
        results[graph] = {k: v.numpy() for k, v in fn(*args).items()}
    return results
