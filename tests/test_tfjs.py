"""TF.js export: every graph run by TF.js in Node equals Keras (1e-4; quantized within stated
bounds), the manifest, alae-export --format tfjs and its refusals, graphs that WASM can run,
and the shipped demo models judged on real MNIST digits."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.fixtures import TFJS_KEYS
from helpers.tfjs import WEB_DEMO, graph_inputs, reference_outputs, run_in_node

from alae_tf.data import load_embedded_mnist
from alae_tf.export import cli as export_cli
from alae_tf.export.tfjs import GRAPHS, unfuse_tensor_biases

# Every test here converts exports or runs TF.js in Node: the slow tier.
pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
# Largest |TF.js - Keras| allowed per output with quantized weights, measured on these models
# (float16: about 1e-3 of a unit-range output; uint8: about 3-7% of it, the price of 4x less).
QUANTIZED_TOLERANCE = {"float16": 0.01, "uint8": 0.15}


def _manifest(export_dir):
    return json.loads((Path(export_dir) / "manifest.json").read_text())


@pytest.mark.parametrize("key", [*TFJS_KEYS, "mlp_float16", "mlp_uint8"])
@pytest.mark.system
def test_tfjs_graphs_in_node_match_keras(exported, key, tmp_path):
    model, preset, export_dir = exported[key]
    manifest = _manifest(export_dir)
    inputs = graph_inputs(manifest)
    expected = reference_outputs(model, preset, inputs)
    got = run_in_node(export_dir, inputs, tmp_path)
    tolerance = QUANTIZED_TOLERANCE.get(manifest["quantization"], TOLERANCE)
    for graph in GRAPHS:
        for name, want in expected[graph].items():
            assert got[graph][name].shape == want.shape, (graph, name)
            if name == "images":  # not a trivial all-black or all-white comparison
                assert 0.05 < np.mean((want > 0.01) & (want < 0.99)), (graph, "saturated")
            err = np.abs(got[graph][name] - want).max()
            assert err <= tolerance, f"{key} {graph}/{name}: max |TF.js - Keras| {err:.2e}"
    chain = got["chain_reconstruct"]["images"]
    assert np.abs(chain - got["reconstruct"]["images"]).max() <= 1e-5
    if manifest["quantization"] != "float32":
        # Quantization is not free: a check that cannot fail would show 0 here.
        assert np.abs(got["reconstruct"]["images"] - expected["reconstruct"]["images"]).max() > 0


def test_exported_graphs_have_no_transposed_convolution(exported):
    """TF.js runs Conv2DBackpropInput as a scalar loop on WASM: the fused upsampling
    convolutions of the 128 px model are exported as convolution + depth_to_space."""
    from alae_tf.models.style.layers import FusedUpsampleConv2D

    model = exported["style128"][0]
    assert any(isinstance(layer, FusedUpsampleConv2D) for layer in model._flatten_layers())
    assert all(getattr(layer, "form", None) == "transposed" for layer in model._flatten_layers()
               if isinstance(layer, FusedUpsampleConv2D))  # the export left the model as it was
    ops_seen = set()
    for key in TFJS_KEYS:
        for graph in GRAPHS:
            spec = json.loads((exported[key][2] / graph / "model.json").read_text())
            ops_seen |= {node["op"] for node in spec["modelTopology"]["node"]}
    assert "Conv2DBackpropInput" not in ops_seen
    assert "DepthToSpace" in ops_seen


def test_exported_graphs_have_no_tensor_bias_fusions(exported):
    """WASM's fused kernels take rank-1 biases only; the export splits the others."""
    for key in TFJS_KEYS:
        for graph in GRAPHS:
            spec = json.loads((exported[key][2] / graph / "model.json").read_text())
            weights = {w["name"] for g in spec["weightsManifest"] for w in g["weights"]}
            for node in spec["modelTopology"]["node"]:
                if node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"):
                    assert node["input"][2].split(":")[0] in weights, (key, graph, node["name"])


def test_unfuse_splits_a_conv_with_a_computed_bias():
    topology = {"node": [{"name": "conv", "op": "_FusedConv2D", "input": ["x", "kernel", "sum"],
                          "attr": {"T": {"type": "DT_FLOAT"}, "strides": {"list": {}},
                                   "fused_ops": {"list": {"s": ["Qmlhc0FkZA==",
                                                                "TGVha3lSZWx1"]}},
                                   "leakyrelu_alpha": {"f": 0.2}, "num_args": {"i": "1"}}},
                         {"name": "dense", "op": "_FusedMatMul", "input": ["x", "k", "b"],
                          "attr": {"T": {"type": "DT_FLOAT"},
                                   "fused_ops": {"list": {"s": ["Qmlhc0FkZA=="]}}}}]}
    assert unfuse_tensor_biases(topology, weights={"kernel", "k", "b"}) == 1
    ops = {n["name"]: (n["op"], n["input"]) for n in topology["node"]}
    assert ops["conv/unfused"] == ("Conv2D", ["x", "kernel"])
    assert ops["conv/unfused_bias"] == ("AddV2", ["conv/unfused", "sum"])
    assert ops["conv"] == ("LeakyRelu", ["conv/unfused_bias"])
    assert ops["dense"][0] == "_FusedMatMul"  # a weight bias stays fused
    conv_attrs = next(n["attr"] for n in topology["node"] if n["name"] == "conv/unfused")
    assert "fused_ops" not in conv_attrs and "strides" in conv_attrs
    alpha = next(n["attr"]["alpha"] for n in topology["node"] if n["name"] == "conv")
    assert alpha == {"f": 0.2}


def test_manifest_describes_the_export(exported):
    _, preset, export_dir = exported["style"]
    manifest = _manifest(export_dir)
    assert manifest["format"] == "alae-tf TF.js export 1"
    assert (manifest["preset"], manifest["resolution"], manifest["channels"]) == (
        "mnist_style_small", 32, 1)
    assert manifest["num_styles"] == 8 and manifest["latent_dim"] == preset.latent_dim
    assert manifest["noise"]["size"] == sum(h * w for h, w in manifest["noise"]["shapes"])
    assert manifest["graphs"]["generator"]["inputs"] == {
        "w_styles": {"dtype": "float32", "shape": [-1, 8, preset.latent_dim]},
        "noise": {"dtype": "float32", "shape": [-1, manifest["noise"]["size"]]}}
    for graph in GRAPHS:
        folder = export_dir / graph
        assert manifest["graphs"][graph]["bytes"] == sum(
            f.stat().st_size for f in folder.iterdir())
    sizes = {q: sum(_manifest(exported[k][2])["graphs"][g]["bytes"] for g in GRAPHS)
             for q, k in (("float32", "mlp"), ("float16", "mlp_float16"), ("uint8", "mlp_uint8"))}
    assert sizes["uint8"] < 0.3 * sizes["float32"] and sizes["float16"] < 0.55 * sizes["float32"]


def test_alae_export_tfjs_cli(exports, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(exports["mlp"][0], run_dir)  # it gets a metrics.json
    (run_dir / "metrics.json").write_text(json.dumps({
        "num_test": 100, "reconstruction_mse": 0.05,
        "representation": {"w/ema": {"knn1": 0.8, "svm": 0.75}}}))
    out = tmp_path / "out"
    assert export_cli.main([str(run_dir), str(out), "--format", "tfjs", "--name", "digits",
                            "--quantize", "float16"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "alae-demo --models" in printed
    manifest = _manifest(out / "digits")
    assert manifest["quantization"] == "float16"
    assert manifest["scores"]["w/ema"] == {"knn1": 0.8, "svm": 0.75}
    assert manifest["source"] == {"run_dir": str(run_dir), "epoch": 1, "preset": "mnist_mlp"}
    assert sorted(p.name for p in (out / "digits").iterdir()) == sorted(
        [*GRAPHS, "manifest.json"])

    # Refusals: one line, exit 2, the existing export untouched.
    before = (out / "digits" / "manifest.json").read_bytes()
    assert export_cli.main([str(run_dir), str(out), "--format", "tfjs", "--name", "digits"]) == 2
    assert "exists" in capsys.readouterr().err
    assert (out / "digits" / "manifest.json").read_bytes() == before
    assert export_cli.main([str(run_dir), str(out), "--quantize", "uint8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("alae-export: error: --quantize applies to --format tfjs only "
                   "(TF Serving loads float32)")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.fixture(scope="module")
def mnist_test_digits():
    x_test, _ = load_embedded_mnist("test")
    return x_test[:64].astype("float32")[..., None] / 255.0


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_style_small"])
@pytest.mark.system
def test_shipped_demo_models_reconstruct_real_digits(name, mnist_test_digits, tmp_path):
    """The models the page ships, run by TF.js, judged on 64 real MNIST test digits."""
    export_dir = WEB_DEMO / "models" / name
    manifest = _manifest(export_dir)
    demo_bytes = sum(manifest["graphs"][g]["bytes"] for g in ("encoder", "generator", "mapping"))
    assert demo_bytes < 5e6, f"the page downloads {demo_bytes / 1e6:.1f} MB of {name}"
    x = mnist_test_digits
    if manifest["resolution"] == 32:
        x = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)])
    feeds = {"images": x}
    if manifest["num_styles"]:
        feeds["noise"] = np.zeros((len(x), manifest["noise"]["size"]), "float32")
    # On the WASM backend (XNNPACK): what is judged is the model, not the runtime, and 64
    # images take a fifth of the pure-JS CPU backend's time there.
    got = run_in_node(export_dir, {"reconstruct": feeds}, tmp_path,
                      backend="wasm")["reconstruct"]["images"]
    mse = float(np.mean((got - x) ** 2))
    blank = float(np.mean(x ** 2))  # the error of answering with a black image
    recorded = manifest["scores"]["reconstruction_mse"]
    assert mse < 0.5 * blank and mse < 1.5 * recorded, (mse, blank, recorded)
    print(f"{name}: TF.js reconstruction MSE on 64 test digits {mse:.4f} "
          f"(alae-eval of the run: {recorded:.4f}; black image: {blank:.4f})")

