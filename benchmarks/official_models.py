"""What an official ALAE checkpoint costs to deploy: import, export sizes and latency at batch 1.

For each (checkpoint, config) pair of the authors' code (podgorskiy/ALAE), in a scratch folder:

- ``alae-import`` it: wall seconds of the whole command and its peak RSS;
- ``alae-export`` it as a SavedModel (bytes on disk) and as TF.js with float32, float16 and
  uint8 weights (bytes the page downloads: the encoder, generator and mapping graphs);
- CPU latency of one-image encode, decode and reconstruct on the imported EMA networks
  (``model.encode`` / ``decode`` / ``reconstruct`` in tf.function, float32, median of
  ``--calls`` calls after two untimed ones), in a process of its own (its peak RSS too);
- up to 256 px, the page's one-image reconstruct latency in headless Chromium on the WebGL
  (SwiftShader), WASM and CPU backends (web_demo/tests/browser_check.mjs --bench on the float32
  TF.js export served by ``alae-demo --models``), one Chromium per backend.

The checkpoints need not be trained (latency and sizes do not depend on the weights):
``benchmarks/official_checkpoint.py`` writes one from an official config with torch.

    python benchmarks/official_models.py --model CKPT CONFIG [--model CKPT CONFIG ...] \
        [--json docs/data/official_models.json]

Run it with nothing else on the machine: the browser, the server and TensorFlow share the
cores.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite import median_ms
from tfjs_latency import start_demo

ROOT = Path(__file__).resolve().parent.parent
WEB_DEMO = ROOT / "web_demo"
BIN = Path(sys.executable).parent
BACKENDS = ("webgl", "wasm", "cpu")
DEMO_GRAPHS = ("encoder", "generator", "mapping")
QUANTIZATIONS = ("float32", "float16", "uint8")
BROWSER_MAX_RESOLUTION = 256
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_measured(argv):
    """Runs ``argv`` to completion; returns (wall seconds, peak RSS in MB, stdout).

    Raises:
        SystemExit: the command failed (its last stderr lines are shown).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=ENV)
        # wait4 gives this child's own ru_maxrss (RUSAGE_CHILDREN is a maximum over all).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode:
        raise SystemExit(f"official_models: {' '.join(map(str, argv[:2]))} failed: "
                         f"{stderr.strip().splitlines()[-3:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def folder_bytes(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def cpu_latency(run_dir, calls):
    """One-image encode / decode / reconstruct ms of the run's EMA networks (worker process)."""
    import resource

    import tensorflow as tf

    from alae_tf.runs import load_trained_model

    model, preset, _, _ = load_trained_model(run_dir)
    model.set_level(model.max_level)

    encode = tf.function(lambda x: model.encode(x))
    decode = tf.function(lambda w: model.decode(w))
    reconstruct = tf.function(lambda x: model.reconstruct(x))
    images = tf.random.stateless_uniform((1, *preset.image_shape), (0, 0), *preset.pixel_range)
    codes = model.encode(images)
    result = {
        "encode": median_ms(lambda: encode(images).numpy(), calls),
        "decode": median_ms(lambda: decode(codes).numpy(), calls),
        "reconstruct": median_ms(lambda: reconstruct(images).numpy(), calls),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tensorflow": tf.__version__,
    }
    print("RESULT " + json.dumps(result))


def browser_latency(models_dir, name, runs, out, timeout):
    """The page's reconstruct ms per backend ({backend: bench} or {backend: {"error": ...}})."""
    process, url = start_demo(models_dir)
    times = {}
    try:
        for backend in BACKENDS:
            started = time.perf_counter()
            try:
                subprocess.run(
                    ["node", "tests/browser_check.mjs", "--url", url, "--out",
                     str(out / backend), "--model", name, "--backends", backend, "--bench",
                     str(runs)], check=True, cwd=WEB_DEMO, capture_output=True, text=True,
                    timeout=timeout)
            except subprocess.TimeoutExpired:
                times[backend] = {"error": f"no result within {timeout} s"}
            except subprocess.CalledProcessError as e:
                # Node ends an uncaught exception's report with its version; the error's
                # own line names what failed (e.g. "page.waitForFunction: Timeout ...").
                lines = e.stderr.strip().splitlines() or ["?"]
                times[backend] = {"error": next((x for x in lines if re.search(
                    r"Error|Timeout", x)), lines[-1]).strip()[:300]}
            else:
                run = json.loads((out / backend / "results.json").read_text())["runs"][0]
                times[backend] = run.get("bench") or {"error": run.get("error") or "not ready"}
                times[backend]["load_ms"] = run.get("load_ms")
            result = times[backend]
            shown = (f"reconstruct {result['chain']['median_ms']:.0f} ms" if "chain" in result
                     else f"failed: {result['error']}")
            print(f"  browser {backend}: {shown} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return times


def measure(checkpoint, config, work, args):
    """Every figure of one (checkpoint, config) pair, printed as it comes."""
    run_dir = work / "run"
    seconds, rss, stdout = run_measured([BIN / "alae-import", checkpoint, "--config", config,
                                         "--run-dir", run_dir])
    facts = json.loads((run_dir / "config.json").read_text())
    preset = facts.get("preset", facts)
    name = preset["name"]
    resolution = preset["resolution"]
    print(f"{name}: imported in {seconds:.1f} s, peak RSS {rss / 1024:.2f} GB "
          f"({stdout.strip().splitlines()[0]})", flush=True)
    row = {"name": name, "config": os.path.basename(config), "resolution": resolution,
           "channels": preset["channels"], "latent_dim": preset["latent_dim"],
           "checkpoint_bytes": os.path.getsize(checkpoint),
           "import": {"seconds": seconds, "peak_rss_mb": rss}}

    seconds, rss, _ = run_measured([BIN / "alae-export", run_dir, work / "saved_model",
                                    "--name", name])
    row["saved_model_bytes"] = folder_bytes(work / "saved_model" / name)
    row["saved_model_export"] = {"seconds": seconds, "peak_rss_mb": rss}
    print(f"  SavedModel {row['saved_model_bytes'] / 1e6:.1f} MB (export {seconds:.0f} s)",
          flush=True)
    row["tfjs_bytes"], row["tfjs_export"] = {}, {}
    for quantize in QUANTIZATIONS:
        flags = [] if quantize == "float32" else ["--quantize", quantize]
        seconds, rss, _ = run_measured([BIN / "alae-export", run_dir, work / f"tfjs_{quantize}",
                                        "--format", "tfjs", "--name", name, *flags])
        manifest = json.loads((work / f"tfjs_{quantize}" / name / "manifest.json").read_text())
        row["tfjs_bytes"][quantize] = sum(manifest["graphs"][g]["bytes"] for g in DEMO_GRAPHS)
        row["tfjs_export"][quantize] = {"seconds": seconds, "peak_rss_mb": rss}
        print(f"  TF.js {quantize} {row['tfjs_bytes'][quantize] / 1e6:.1f} MB "
              f"(export {seconds:.0f} s)", flush=True)

    _, _, stdout = run_measured([sys.executable, __file__, "--latency-worker", run_dir,
                                 "--calls", str(args.calls)])
    latency = json.loads(next(x for x in stdout.splitlines()
                              if x.startswith("RESULT "))[len("RESULT "):])
    row["tensorflow"] = latency.pop("tensorflow")
    row["cpu_latency_peak_rss_mb"] = latency.pop("peak_rss_mb")
    row["cpu_ms"] = latency
    print("  CPU ms: " + ", ".join(f"{k} {v:.0f}" for k, v in latency.items()), flush=True)

    row["browser"] = None
    if resolution <= BROWSER_MAX_RESOLUTION and not args.no_browser:
        row["browser"] = browser_latency(work / "tfjs_float32", name, args.browser_runs,
                                         work / "browser", args.browser_timeout)
    shutil.rmtree(work)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs=2, action="append", metavar=("CHECKPOINT", "CONFIG"),
                        default=[], help="an official .pth file and its YAML config; repeat")
    parser.add_argument("--calls", type=int, default=5,
                        help="timed CPU calls per function (default 5)")
    parser.add_argument("--browser-runs", type=int, default=5,
                        help="timed page reconstruct calls per backend (default 5)")
    parser.add_argument("--browser-timeout", type=int, default=900,
                        help="seconds one backend's page may take in all (default 900)")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--latency-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.latency_worker:
        cpu_latency(args.latency_worker, args.calls)
        return 0
    if not args.model:
        parser.error("give at least one --model CHECKPOINT CONFIG")
    if not args.no_browser and not (shutil.which("node") and (WEB_DEMO / "node_modules").is_dir()):
        parser.error("the browser runs need node and web_demo/node_modules (make setup); "
                     "or pass --no-browser")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from alae_tf.models.precision import cpu_model

    cpu = cpu_model()
    print(f"CPU: {cpu}, {os.cpu_count()} cores; batch 1, float32", flush=True)
    payload = {"benchmark": "python benchmarks/official_models.py", "machine": cpu,
               "cores": os.cpu_count(), "date": datetime.date.today().isoformat(),
               "calls": args.calls, "browser_runs": args.browser_runs, "models": []}
    with tempfile.TemporaryDirectory(prefix="alae_official_") as scratch:
        for index, (checkpoint, config) in enumerate(args.model):
            payload["models"].append(measure(os.path.abspath(checkpoint),
                                             os.path.abspath(config),
                                             Path(scratch) / str(index), args))
            # Written after every model: a later model that fails keeps the earlier figures.
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(payload, f, indent=1)
                    f.write("\n")
                print(f"wrote {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
