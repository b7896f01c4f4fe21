"""Training throughput of an ALAE preset through Keras fit(): images/s, peak RSS, FLOPs.

StyleALAE presets are measured at their final level of detail (full resolution, no fade).

Each configuration (precision x XLA off/on) runs in its own process so that peak RSS is its
own. A further process measures this machine's matmul peak (2048 x 2048, float32 and
bfloat16) in the same sitting, and the training rate is given as a fraction of it.
Within a process, fit() runs ``--warmup`` steps, then ``--steps`` timed steps; the step time is
the time between consecutive on_train_batch_end calls, and we report the median over steps
and the median over ``--repeats`` processes.

Run it with nothing else busy: on a 2-core machine one busy core slows a step many times.

    python benchmarks/train_throughput.py --preset mnist_mlp
    python benchmarks/train_throughput.py --preset mnist_mlp --precision all --jit off
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

    from alae_tf.models.precision import policy_scope
    from alae_tf.models.presets import build_model, get_preset

    preset = get_preset(args.preset)
    batch = args.batch_size or preset.batch_size
    keras.utils.set_random_seed(0)
    with policy_scope(args.precision):
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
        "precision": args.precision,
        "jit": args.jit,
        "batch": batch,
        "median_step_ms": median * 1e3,
        "images_per_s": batch / median,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "flops_per_step": flops,
    }))


def _peak_worker(args):
    """Median GFLOP/s of a 2048 x 2048 matmul in float32 and bfloat16, this process's
    threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    n, peaks = 2048, {}
    for dtype in ("float32", "bfloat16"):
        a = tf.random.normal((n, n), dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
        matmul = tf.function(lambda a, b: tf.matmul(a, b))
        matmul(a, b).numpy()  # trace and warm up
        times = []
        for _ in range(15):
            start = time.perf_counter()
            matmul(a, b).numpy()
            times.append(time.perf_counter() - start)
        peaks[dtype] = 2 * n**3 / statistics.median(times) / 1e9
    print(json.dumps(peaks))


def main():
    from alae_tf.models.precision import cpu_model

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
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "mixed_bfloat16", "mixed_float16", "all"))
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--peak-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3")
    if args.worker:
        _worker(args)
        return
    if args.peak_worker:
        _peak_worker(args)
        return

    precisions = (("float32", "mixed_bfloat16", "mixed_float16") if args.precision == "all"
                  else (args.precision,))
    results = {}
    for precision in precisions:
        for jit in (("off", "on") if args.jit == "both" else (args.jit,)):
            runs = []
            for _ in range(args.repeats):
                command = [sys.executable, __file__, "--worker", "--preset", args.preset,
                           "--steps", str(args.steps), "--warmup", str(args.warmup),
                           "--jit", jit, "--precision", precision]
                if args.batch_size:
                    command += ["--batch-size", str(args.batch_size)]
                result = subprocess.run(command, capture_output=True, text=True)
                if result.returncode:
                    sys.exit(f"benchmark worker failed ({precision}, XLA {jit}):\n"
                             f"{result.stderr[-2000:]}")
                runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
            results[(precision, jit)] = runs
    result = subprocess.run([sys.executable, __file__, "--peak-worker"], capture_output=True,
                            text=True)
    if result.returncode:
        sys.exit(f"matmul peak worker failed:\n{result.stderr[-2000:]}")
    peaks = json.loads(result.stdout.strip().splitlines()[-1])

    if args.steps < 30:
        print(f"note: only {args.steps} timed steps; a throughput figure wants 30 or more")
    cpu = cpu_model()
    print(f"preset {args.preset}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.repeats} processes each; {cpu}, {os.cpu_count()} CPU cores")
    print(f"matmul peak (2048^2, this sitting): float32 {peaks['float32']:.0f} GFLOP/s, "
          f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    # The profiler's count of the float32 step graph (casts excluded) serves every precision.
    flops = next((r["flops_per_step"] for runs in results.values() for r in runs
                  if r["flops_per_step"] and r["precision"] == "float32"), None)
    flops = flops or next((r["flops_per_step"] for runs in results.values() for r in runs
                           if r["flops_per_step"]), None)
    print(f"{'precision':<16}{'XLA':<5}{'batch':>6}{'images/s':>10}{'ms/step':>9}"
          f"{'peak RSS MB':>13}{'GFLOP/s':>9}{'of peak':>9}   images/s of each process")
    rows = []
    for (precision, jit), runs in results.items():
        ips = [r["images_per_s"] for r in runs]
        rate = statistics.median(ips)
        batch = runs[0]["batch"]
        gflops = flops * rate / batch / 1e9 if flops else None
        # 16-bit float ops run on the bfloat16 (or, for float16, the float32) units.
        peak = peaks["bfloat16" if precision == "mixed_bfloat16" else "float32"]
        rows.append({"precision": precision, "jit": jit, "batch": batch, "images_per_s": rate,
                     "median_step_ms": statistics.median(r["median_step_ms"] for r in runs),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                     "gflop_per_s": gflops, "fraction_of_peak": gflops / peak if gflops else None,
                     "images_per_s_each": ips})
        shown = f"{gflops:>9.0f}{gflops / peak:>9.0%}" if gflops else f"{'-':>9}{'-':>9}"
        print(f"{precision:<16}{jit:<5}{batch:>6}{rate:>10.0f}{rows[-1]['median_step_ms']:>9.1f}"
              f"{rows[-1]['peak_rss_mb']:>13.0f}{shown}   " + ", ".join(f"{v:.0f}" for v in ips))
    if flops:
        print(f"FLOPs per training step (TF profiler, float ops of the float32 step graph): "
              f"{flops / 1e9:.2f} GFLOP")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"preset": args.preset, "cpu": cpu, "cores": os.cpu_count(),
                       "steps": args.steps, "repeats": args.repeats, "matmul_peak_gflops": peaks,
                       "flops_per_step": flops, "rows": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
