"""Ablation of the MNIST MLP-ALAE recipe at a fixed wall-clock budget per run.

Each variant is ``alae-train --preset mnist_mlp`` with a few flags changed, trained for
``--minutes`` of wall-clock training time (``--time-budget``), then scored by ``alae-eval`` on
the 2,004 held-out digits. Results go to OUT/ablation.json and a Markdown table
OUT/ablation.md, with the CPU model; finished runs are reused, so an interrupted sweep resumes
where it stopped. Run it on an otherwise idle machine: the budget is wall-clock time.

    python benchmarks/ablation.py --minutes 10 --seeds 0,1 --variants reference,sigmoid
    python benchmarks/ablation.py --list
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

# The flags of mnist_mlp_fast on top of mnist_mlp.
FAST = ["--set", "g_output=sigmoid", "--learning-rate", "0.004"]
# name -> (alae-train flags, what it changes). "{epochs}" becomes the epochs the budget is
# expected to hold (--epochs-per-minute x --minutes), for schedules that need a known length.
VARIANTS = {
    "reference": ([], "mnist_mlp as in the paper (linear G output, lr 0.002, batch 128)"),
    "sigmoid": (["--set", "g_output=sigmoid"], "G's output through a sigmoid into [0, 1]"),
    "lr_0.001": (["--learning-rate", "0.001"], "half the learning rate"),
    "lr_0.004": (["--learning-rate", "0.004"], "twice the learning rate"),
    "batch_64": (["--batch-size", "64"], "batch 64"),
    "batch_256": (["--batch-size", "256"], "batch 256"),
    "r1_1": (["--set", "r1_gamma=1"], "R1 gamma 1 (reference 10)"),
    "r1_100": (["--set", "r1_gamma=100"], "R1 gamma 100"),
    "betas_0.5": (["--set", "adam_betas=[0.5,0.99]"], "Adam beta_1 0.5 (reference 0)"),
    "ema_2k": (["--set", "ema_half_life=2000"], "EMA half-life 2k images (reference 10k)"),
    "ema_50k": (["--set", "ema_half_life=50000"], "EMA half-life 50k images"),
    "d_act": (["--set", "d_activations=true"], "LeakyReLU between D's layers"),
    "latent_32": (["--set", "latent_dim=32"], "32-D latent (the aims are for 50-D)"),
    # Combinations of the single changes that helped in a 3-minute screen.
    "sigmoid_lr_0.004": (["--set", "g_output=sigmoid", "--learning-rate", "0.004"],
                         "sigmoid output and twice the learning rate"),
    "sigmoid_lr_0.003": (["--set", "g_output=sigmoid", "--learning-rate", "0.003"],
                         "sigmoid output and 1.5 times the learning rate"),
    # Single changes on top of the fast recipe (mnist_mlp_fast = sigmoid_lr_0.004).
    "fast_lazy_r1_4": ([*FAST, "--set", "r1_interval=4"], "fast, lazy R1 every 4 steps (x4)"),
    "fast_lazy_r1_16": ([*FAST, "--set", "r1_interval=16"], "fast, lazy R1 every 16 steps"),
    "fast_cosine": ([*FAST, "--set", "lr_decay=cosine", "--epochs", "{epochs}"],
                    "fast, learning rate cosine-decayed to 0 over the budget's epochs"),
    "fast_linear": ([*FAST, "--set", "lr_decay=linear", "--epochs", "{epochs}"],
                    "fast, learning rate linearly decayed to 0 over the budget's epochs"),
    "fast_translate_1": ([*FAST, "--set", "translate=1"],
                         "fast, real digits shifted by up to 1 px"),
    "fast_latent_32": ([*FAST, "--set", "latent_dim=32"],
                       "fast, 32-D latent (the aims are for 50-D)"),
    "fast_bf16": ([*FAST, "--precision", "mixed_bfloat16"],
                  "fast, computed in bfloat16 (mixed precision)"),
    "fast_translate_2": ([*FAST, "--set", "translate=2"],
                         "fast, real digits shifted by up to 2 px"),
}
# A planning default: the training speed of mnist_mlp_fast measured in docs/performance.md.
DEFAULT_EPOCHS_PER_MINUTE = 10.5
METRICS = ("w_knn1", "w_svm", "mse", "agreement", "confident")


def script(name):
    return str(Path(sys.executable).parent / name)


def run_variant(name, seed, minutes, out, eval_args, epochs_per_minute=DEFAULT_EPOCHS_PER_MINUTE,
                train_args=()):
    """Trains and scores one variant (or reuses a finished run); returns its row."""
    run_dir = out / name / f"seed_{seed}"
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        budget_epochs = str(max(1, round(epochs_per_minute * minutes)))
        flags = [flag.replace("{epochs}", budget_epochs) for flag in VARIANTS[name][0]]
        # A variant's own --epochs (or --precision) comes later on the command line and wins
        # (over --train-flags too); float32 unless a variant asks otherwise, so rows compare
        # recipes, not precisions.
        command = [script("alae-train"), "--preset", "mnist_mlp", "--precision", "float32",
                   "--epochs", "100000",
                   "--time-budget", str(minutes), "--keep-checkpoints", "1",
                   "--grid-every", "100000", "--verbose", "0", "--seed", str(seed),
                   "--run-dir", str(run_dir), *train_args, *flags]
        print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: {' '.join(command[1:])}",
              flush=True)
        for step in (command, [script("alae-eval"), str(run_dir), *eval_args]):
            code = subprocess.run(step, stdout=None if step is command else
                                  subprocess.DEVNULL).returncode
            if code:
                print(f"ablation: {name} seed {seed} failed ({os.path.basename(step[0])} exit "
                      f"{code}); left out of the table, and re-run next time", file=sys.stderr)
                return None
    metrics = json.loads(metrics_path.read_text())
    progress = json.loads((run_dir / "checkpoints" / "progress.json").read_text())
    last = progress[max(progress, key=int)]
    return {
        "variant": name, "seed": seed, "epochs": metrics["epoch"],
        "images_seen": last["images_seen"], "train_seconds": last["train_seconds"],
        "w_knn1": metrics["representation"]["w/ema"]["knn1"],
        "w_svm": metrics["representation"]["w/ema"]["svm"],
        "mse": metrics["reconstruction_mse"],
        "agreement": metrics["samples"]["label_agreement"],
        "confident": metrics["samples"]["confident_fraction"],
        "run_dir": str(run_dir),
    }


def table(rows, minutes, cpu):
    lines = [f"Budget {minutes:g} min of training per run; {cpu}; alae-eval on 2,004 held-out "
             "digits (EMA networks).", "",
             "| variant | seed | epochs | images seen | w 1-NN | w SVM | MSE | agreement | "
             "confident |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['seed']} | {r['epochs']} | {r['images_seen']:,} | "
                     f"{r['w_knn1']:.3f} | {r['w_svm']:.3f} | {r['mse']:.4f} | "
                     f"{r['agreement']:.3f} | {r['confident']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from alae_tf.models.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="reference,sigmoid",
                        help=f"comma-separated, from: {', '.join(VARIANTS)}; or 'all'")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="training wall-clock budget per run (default: 10)")
    parser.add_argument("--out", default="runs/ablation", help="where runs and tables go")
    parser.add_argument("--epochs-per-minute", type=float, default=DEFAULT_EPOCHS_PER_MINUTE,
                        help="training speed of this machine, for variants whose schedule "
                        "needs the run's length in epochs (default: %(default)s, measured "
                        "on a 2-core AMD EPYC)")
    parser.add_argument("--eval-flags", default="",
                        help="extra alae-eval flags for every run, e.g. '--max-train 500 "
                        "--classifier-epochs 1' for a quick look (default: none, the full "
                        "evaluation)")
    parser.add_argument("--train-flags", default="",
                        help="extra alae-train flags for every run, before the variant's own, "
                        "e.g. '--set hidden_units=[256,256]' to compare the variants at a "
                        "quarter of the width (default: none)")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (flags, what) in VARIANTS.items():
            print(f"{name:<12} {what}  [{' '.join(flags) or 'no flags'}]")
        return 0
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; see --list")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, not {args.seeds!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpu = cpu_model()
    print(f"CPU: {cpu} ({os.cpu_count()} logical cores)", flush=True)
    if args.minutes <= 0:
        parser.error(f"--minutes must be above 0, not {args.minutes:g}")
    if args.epochs_per_minute <= 0:
        parser.error(f"--epochs-per-minute must be above 0, not {args.epochs_per_minute:g}")
    eval_args, train_args = shlex.split(args.eval_flags), shlex.split(args.train_flags)
    rows = [run_variant(name, seed, args.minutes, out, eval_args, args.epochs_per_minute,
                        train_args)
            for seed in seeds for name in names]
    failed = rows.count(None)
    rows = [row for row in rows if row is not None]
    (out / "ablation.json").write_text(json.dumps(
        {"cpu": cpu, "minutes": args.minutes, "rows": rows}, indent=2) + "\n")
    text = table(rows, args.minutes, cpu)
    (out / "ablation.md").write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
