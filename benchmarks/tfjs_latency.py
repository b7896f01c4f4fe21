"""Reconstruct latency of the shipped TF.js demo models in headless Chromium and in Node.

For each shipped model (web_demo/models/): median and p95 ms of one-image reconstruct calls
in the page on the WebGL (SwiftShader), WASM and CPU backends (both the encoder + generator
chain the page uses and the one-call reconstruct graph), and in Node (pure @tensorflow/tfjs,
CPU backend); then the download size of each preset's export unquantised and quantised.

    python benchmarks/tfjs_latency.py [--runs 50]

Run it with nothing else on the machine: the browser, Node and the page share 2 cores.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB_DEMO = ROOT / "web_demo"
MODELS = ("mnist_mlp", "mnist_style_small")
BACKENDS = ("webgl", "wasm", "cpu")
DEMO_GRAPHS = ("encoder", "generator", "mapping")


def start_demo(models_dir=None):
    """(process, URL) of an alae-demo on a free port, serving ``models_dir`` (default: the
    shipped models)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    models = [] if models_dir is None else ["--models", str(models_dir)]
    process = subprocess.Popen([str(Path(sys.executable).parent / "alae-demo"), "--port", "0",
                                "--quiet", *models], stdout=subprocess.PIPE, text=True, env=env)
    url = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stdout.readline()).group(1)
    return process, url


def browser_times(url, model, runs, out):
    subprocess.run(
        ["node", "tests/browser_check.mjs", "--url", url, "--out", str(out), "--model", model,
         "--backends", ",".join(BACKENDS), "--bench", str(runs)],
        check=True, cwd=WEB_DEMO, stdout=subprocess.DEVNULL)
    results = json.loads((out / "results.json").read_text())
    return {run["backend"]: run["bench"] for run in results["runs"]}


def node_times(model, runs):
    out = subprocess.run(["node", "tools/run_export.mjs", f"models/{model}", "--bench",
                          str(runs)], check=True, cwd=WEB_DEMO, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def export_sizes(preset_name, work):
    """Bytes the page downloads (encoder + generator + mapping) per weight type."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from alae_tf.export.tfjs import export_tfjs
    from alae_tf.models.presets import build_model, get_preset

    preset = get_preset(preset_name)
    model = build_model(preset, seed=0)
    model.set_level(model.max_level)
    rng = np.random.default_rng(0)
    model(rng.uniform(size=(1, *preset.image_shape)).astype("float32"))
    model.generate(rng.normal(size=(1, preset.latent_dim)).astype("float32"))
    sizes = {}
    for quantize in (None, "float16", "uint8"):
        manifest = export_tfjs(model, preset, str(work / f"{preset_name}_{quantize}"),
                               quantize=quantize)
        sizes[quantize or "float32"] = sum(manifest["graphs"][g]["bytes"] for g in DEMO_GRAPHS)
    return sizes


def main():
    from alae_tf.models.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="timed calls per case (default 50)")
    args = parser.parse_args()
    if not shutil.which("node") or not (WEB_DEMO / "node_modules").is_dir():
        raise SystemExit("tfjs_latency: needs node and web_demo/node_modules (make setup)")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.runs} timed one-image reconstruct "
          "calls after 3 warm-ups; ms median / p95")
    process, url = start_demo()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{'model':<19}{'runtime':<16}{'chain (E then G)':>20}{'reconstruct graph':>20}")
            for model in MODELS:
                for backend, bench in browser_times(url, model, args.runs,
                                                    Path(tmp) / model).items():
                    chain, graph = bench["chain"], bench["graph"]
                    print(f"{model:<19}{'browser ' + backend:<16}"
                          f"{chain['median_ms']:>11.2f} / {chain['p95_ms']:<6.2f}"
                          f"{graph['median_ms']:>11.2f} / {graph['p95_ms']:<6.2f}")
                node = node_times(model, args.runs)
                print(f"{model:<19}{'node cpu':<16}"
                      f"{node['chain']['median_ms']:>11.2f} / {node['chain']['p95_ms']:<6.2f}"
                      f"{node['graph']['median_ms']:>11.2f} / {node['graph']['p95_ms']:<6.2f}")
            print("\nbytes the page downloads (encoder + generator + mapping):")
            for model in MODELS:
                sizes = export_sizes(model, Path(tmp))
                print(f"{model:<19}" + "  ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
