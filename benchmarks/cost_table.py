"""What each preset's full schedule costs, on paper: FLOPs counted per image and level
(alae_tf.metrics.flops), images per schedule, and hours on 8 GPUs at a stated utilisation.

    python benchmarks/cost_table.py [--json out.json]

Images per epoch are the training-set sizes of the reference configs (DATASET.SIZE), MNIST's
the embedded train split. GPU figures are the makers' dense peaks; the utilisation is an
assumption, printed with the table, not a measurement.
"""

import argparse
import json
import sys

# Training images per epoch: the reference configs' DATASET.SIZE; MNIST: the embedded split.
IMAGES_PER_EPOCH = {
    "mnist_mlp": 7_996, "mnist_mlp_fast": 7_996, "mnist_style": 7_996,
    "mnist_style_small": 7_996, "celeba128": 182_637, "celeba_hq256": 29_000,
    "bedroom256": 758_260, "ffhq1024": 60_000,
}
# Training times the paper's authors reported, where known (the paper's FFHQ experiment).
REPORTED = {"ffhq1024": "over 2 days on 8 Titan RTX"}
# (name, dense peak FLOP/s per GPU, assumed utilisation)
GPUS = (
    ("8 x Titan RTX, fp32", 16.3e12, 0.40),
    ("8 x A100, bf16", 312e12, 0.30),
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--presets", nargs="*", default=None, help="default: every preset")
    args = parser.parse_args(argv)

    from alae_tf.metrics.flops import schedule_flops
    from alae_tf.models.presets import PRESETS, build_model

    names = args.presets or list(PRESETS)
    rows = []
    for name in names:
        preset = PRESETS[name]
        levels = schedule_flops(build_model(preset, seed=0), preset, IMAGES_PER_EPOCH[name])
        total = sum(level[5] for level in levels)
        images = sum(level[3] for level in levels)
        row = {"preset": name, "resolution": preset.resolution,
               "step_gflop_per_image_final": levels[-1][4] / 1e9,
               "images_per_schedule": images, "total_pflop": total / 1e15,
               "hours": {gpu: total / (8 * peak * use) / 3600 for gpu, peak, use in GPUS},
               "reported": REPORTED.get(name, ""),
               "levels": [dict(zip(("level", "resolution", "epochs", "images",
                                    "step_flop_per_image", "flop"), level, strict=True))
                          for level in levels]}
        rows.append(row)
        print(f"{name}: done", file=sys.stderr, flush=True)

    gpu_heads = " | ".join(f"hours, {gpu} at {use:.0%}" for gpu, _, use in GPUS)
    print(f"| preset | px | GFLOP per image per step (final level) | images per schedule | "
          f"PFLOP | {gpu_heads} | reported |")
    print("|---|---|---|---|---|" + "---|" * len(GPUS) + "---|")
    for row in rows:
        hours = " | ".join(f"{row['hours'][gpu]:,.2f}" for gpu, _, _ in GPUS)
        print(f"| {row['preset']} | {row['resolution']} | "
              f"{row['step_gflop_per_image_final']:,.2f} | {row['images_per_schedule']:,} | "
              f"{row['total_pflop']:,.1f} | {hours} | {row['reported']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpus": [{"name": g, "peak_flop_per_s": p, "utilisation": u}
                                for g, p, u in GPUS], "presets": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
