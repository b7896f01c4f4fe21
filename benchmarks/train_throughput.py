"""Training throughput of an ALAE preset through Keras fit(): images/s, peak RSS, FLOPs.

StyleALAE presets are measured at their final level of detail (full resolution, no fade).

Each configuration (XLA off, XLA on) runs in its own process so that peak RSS is its own.
Within a process, fit() runs ``--warmup`` steps, then ``--steps`` timed steps; the step time is
the time between consecutive on_train_batch_end calls, and we report the median over steps
and the median over ``--repeats`` processes.

Run it with nothing else busy: on a 2-core machine one busy core slows a step many times.

    python benchmarks/train_throughput.py --preset mnist_mlp
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from alae_tf.presets import build_model, get_preset

    preset = get_preset(args.preset)
    batch = args.batch_size or preset.batch_size
    keras.utils.set_random_seed(0)
    model = build_model(preset, seed=0)
    model.compile(learning_rate=preset.learning_rate, jit_compile=args.jit == "on")

    images = np.random.default_rng(0).uniform(
        *preset.pixel_range, size=(batch * 4, *preset.image_shape)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True)
    data = data.cache().repeat().prefetch(2)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stamps = []

        def on_train_batch_end(self, batch_index, logs=None):
            self.stamps.append(time.perf_counter())

    timer = Timer()
    total = args.warmup + args.steps + 1
    model.fit(data, epochs=1, steps_per_epoch=total, callbacks=[timer], verbose=0)
    step_times = np.diff(timer.stamps[args.warmup:])
    median = float(np.median(step_times))

    flops = None
    if args.jit == "off":

        concrete = tf.function(model.train_step).get_concrete_function(
            tf.TensorSpec((batch, *preset.image_shape), tf.float32))
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(concrete.graph, options=options)
        flops = int(profile.total_float_ops)

    print(json.dumps({
        "jit": args.jit,
        "batch": batch,
        "median_step_ms": median * 1e3,
        "images_per_s": batch / median,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "flops_per_step": flops,
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist_mlp")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: the preset's batch size")
    parser.add_argument("--steps", type=int, default=50,
                        help="timed steps (30 or more for an images/s figure; fewer for a "
                        "seconds-per-step look at a large preset)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="processes per configuration")
    parser.add_argument("--jit", choices=("on", "off", "both"), default="both")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3")
    if args.worker:
        _worker(args)
        return

    results = {}
    for jit in (("off", "on") if args.jit == "both" else (args.jit,)):
        runs = []
        for _ in range(args.repeats):
            command = [sys.executable, __file__, "--worker", "--preset", args.preset,
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--jit", jit]
            if args.batch_size:
                command += ["--batch-size", str(args.batch_size)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode:
                sys.exit(f"benchmark worker failed (XLA {jit}):\n{result.stderr[-2000:]}")
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
        results[jit] = runs

    if args.steps < 30:
        print(f"note: only {args.steps} timed steps; a throughput figure wants 30 or more")
    print(f"preset {args.preset}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.repeats} processes each, {os.cpu_count()} CPU cores")
    print(f"{'XLA':<5}{'batch':>6}{'images/s':>10}{'ms/step':>9}{'peak RSS MB':>13}"
          f"   images/s of each process")
    for jit, runs in results.items():
        ips = [r["images_per_s"] for r in runs]
        print(f"{jit:<5}{runs[0]['batch']:>6}{statistics.median(ips):>10.0f}"
              f"{statistics.median(r['median_step_ms'] for r in runs):>9.1f}"
              f"{max(r['peak_rss_mb'] for r in runs):>13.0f}   "
              + ", ".join(f"{v:.0f}" for v in ips))
    flops = next((r["flops_per_step"] for runs in results.values() for r in runs
                  if r["flops_per_step"]), None)
    if flops:
        best = max(statistics.median(r["images_per_s"] for r in runs)
                   for runs in results.values())
        batch = next(iter(results.values()))[0]["batch"]
        print(f"FLOPs per training step (TF profiler, float ops of the step graph): "
              f"{flops / 1e9:.2f} GFLOP; at the best rate that is "
              f"{flops * best / batch / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
