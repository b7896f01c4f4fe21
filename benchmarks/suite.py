"""The benchmark suite over every preset at its final resolution: inference latency of encode,
decode and reconstruct (batch 1 and 64), the input pipeline's images/s against what
training consumes, the step's analytic FLOPs, and peak memory; one JSON file and a Markdown
table.

    python benchmarks/suite.py --json suite.json [--presets mnist_mlp celeba128 ...]

Each preset runs in its own process, so that its peak RSS is its own. Networks are untrained
(latency does not depend on the weights) and compute in float32, called through
tf.function as an export would.

Input pipeline: MNIST presets read the embedded digits. The others read a generated folder
of JPEGs (noise over gradients, quality 90) at the size of their data set's images (CelebA
178 x 218, CelebA-HQ and FFHQ 1024 x 1024, LSUN bedroom 256 x 342), through the real
``make_dataset`` with its center crop, antialiased resize and batching, at the preset's final
batch size. What training consumes is measured with fit() where a step takes under a few
seconds here (the MNIST presets); for the others it is the FLOP count divided by the best
FLOP/s that training reached on the measured presets in the same run, and marked
"estimated".

Training images/s per precision and XLA setting: ``benchmarks/train_throughput.py``.
Run with nothing else busy: on 2 cores one busy core slows a step many times.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# (width, height) of each data set's images, for the generated JPEG folders.
SOURCE_SIZES = {"celeba128": (178, 218), "celeba_hq256": (1024, 1024),
                "bedroom256": (342, 256), "ffhq1024": (1024, 1024)}
MEASURED_TRAINING_LIMIT = 20e9  # FLOPs per image above which training is estimated
LARGE_BATCH = 64


def median_ms(function, calls):
    function()  # trace
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _jpeg_folder(root, size, count=48):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    width, height = size
    os.makedirs(root, exist_ok=True)
    ramp = np.linspace(0, 200, width)[None, :, None] + np.linspace(0, 55, height)[:, None, None]
    for i in range(count):
        noise = rng.normal(0, 25, (height, width, 3))
        pixels = np.clip(ramp + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, f"{i:03d}.jpg"), quality=90)
    return root


def _worker(name, scratch):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from alae_tf.data import make_dataset
    from alae_tf.metrics.flops import forward_flops, step_flops
    from alae_tf.models.presets import build_model, get_preset

    preset = get_preset(name)
    keras.utils.set_random_seed(0)
    model = build_model(preset, seed=0)
    side, channels = preset.resolution, preset.channels
    result = {"preset": name, "resolution": side}
    forward = forward_flops(model)
    result["forward_flops"] = forward
    result["step_flops_per_image"] = step_flops(forward)

    # Inference latency. The biggest preset's 64-image batch would need tens of GB here.
    large = LARGE_BATCH if side <= 256 else 8
    result["latency_ms"] = {}
    encode = tf.function(lambda x: model.encode(x))
    decode = tf.function(lambda w: model.decode(w))
    reconstruct = tf.function(lambda x: model.reconstruct(x))
    for batch in (1, large):
        images = tf.random.uniform((batch, side, side, channels), *preset.pixel_range)
        codes = model.encode(images)
        calls = 10 if side <= 128 else 3
        result["latency_ms"][str(batch)] = {
            "encode": median_ms(lambda images=images: encode(images).numpy(), calls),
            "decode": median_ms(lambda codes=codes: decode(codes).numpy(), calls),
            "reconstruct": median_ms(lambda images=images: reconstruct(images).numpy(), calls),
        }

    # The input pipeline alone.
    batch = preset.schedule.batch_size_at(preset.schedule.num_levels - 1)
    if preset.dataset == "mnist":
        source = "mnist"
    else:
        source = "folder:" + _jpeg_folder(os.path.join(scratch, name), SOURCE_SIZES[name])
    dataset, _ = make_dataset(source, resolution=side, channels=channels, batch_size=batch,
                              pixel_range=preset.pixel_range, seed=0, flip=preset.flip)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    count = max(8, 2048 // batch)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    result["pipeline_images_per_s"] = count * batch / (time.perf_counter() - start)
    result["pipeline_source"] = "embedded MNIST" if source == "mnist" else (
        "generated JPEGs {}x{}".format(*SOURCE_SIZES[name]))

    # What training consumes, measured where a step is short.
    result["training_images_per_s"] = None
    if result["step_flops_per_image"] <= MEASURED_TRAINING_LIMIT:
        model.compile(learning_rate=preset.learning_rate)
        train_batch = min(batch, 32)
        data = tf.data.Dataset.from_tensors(
            tf.random.uniform((train_batch, side, side, channels), *preset.pixel_range)).repeat()
        stamps = []
        timer = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda *_, **__: stamps.append(time.perf_counter()))
        model.fit(data, epochs=1, steps_per_epoch=13, callbacks=[timer], verbose=0)
        result["training_images_per_s"] = train_batch / float(np.median(np.diff(stamps[3:])))
        result["training_batch"] = train_batch
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main(argv=None):
    from alae_tf.models.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=None, help="default: every preset")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.scratch)
        return 0

    from alae_tf.models.presets import PRESETS

    names = args.presets or list(PRESETS)
    cpu = cpu_model()
    print(f"CPU: {cpu}, {os.cpu_count()} cores", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="alae_suite_") as scratch:
        for name in names:
            started = time.time()
            done = subprocess.run([sys.executable, __file__, "--worker", name,
                                   "--scratch", scratch], capture_output=True, text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if done.returncode or line is None:
                print(f"{name}: failed (exit {done.returncode}): "
                      f"{done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            results.append(json.loads(line[len("RESULT "):]))
            print(f"{name}: measured in {time.time() - started:.0f} s", flush=True)

    measured = [r for r in results if r["training_images_per_s"]]
    best = max((r["training_images_per_s"] * r["step_flops_per_image"] for r in measured),
               default=None)
    for r in results:
        r["training_estimated"] = not r["training_images_per_s"]
        if r["training_estimated"] and best:
            r["training_images_per_s"] = best / r["step_flops_per_image"]
        rate = r["training_images_per_s"]
        r["pipeline_over_training"] = r["pipeline_images_per_s"] / rate if rate else None

    print(f"\nCPU: {cpu}; float32; medians. Training GFLOP/s reached (best measured): "
          f"{(best or 0) / 1e9:.0f}\n")
    print("| preset | px | step GFLOP/img | encode ms (1 / 64) | decode ms (1 / 64) | "
          "reconstruct ms (1 / 64) | pipeline img/s | training img/s | pipeline / training "
          "| peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        latency = r["latency_ms"]
        small, large = latency["1"], latency[next(k for k in latency if k != "1")]
        large_batch = next(k for k in latency if k != "1")
        cells = [f"{small[k]:,.1f} / {large[k]:,.0f}" + ("" if large_batch == "64" else
                                                         f" (batch {large_batch})")
                 for k in ("encode", "decode", "reconstruct")]
        rate, ratio = r["training_images_per_s"], r["pipeline_over_training"]
        training = "-" if rate is None else f"{rate:,.2f}" + (
            " (estimated)" if r["training_estimated"] else "")
        print(f"| {r['preset']} | {r['resolution']} | {r['step_flops_per_image'] / 1e9:,.2f} | "
              f"{' | '.join(cells)} | {r['pipeline_images_per_s']:,.0f} | {training} | "
              f"{'-' if ratio is None else f'{ratio:,.0f}x'} | {r['peak_rss_mb'] / 1024:.1f} GB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu, "cores": os.cpu_count(), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
