"""Renders the benchmarks' JSON results (docs/data/NAME.json) into the Markdown tables of docs/.

A generated table sits between marker comments in a docs/*.md file:

    <!-- table:suite -->
    ...the rendering of docs/data/suite.json...
    <!-- /table -->

Re-run a benchmark with ``--json docs/data/NAME.json``, then this script, and the docs show
the new figures; each table names the machine and the date once, above it.

    python benchmarks/tables.py           # rewrite the tables in docs/*.md
    python benchmarks/tables.py --check   # exit 1 if a table differs from its JSON

A JSON file holds ``machine`` (the CPU model; the benchmarks write it as ``cpu``) and
``date``; where a freshly written file has no date, the file's modification date is used.
"""

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARKER = re.compile(r"(<!-- table:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /table -->)",
                    re.DOTALL)


def number(value):
    """A measured figure with the precision it carries: 2,921 / 108.4 / 4.96 / 0.0245."""
    if value is None:
        return "-"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 1:
        text = f"{value:.{1 if size >= 10 else 2}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.3g}"


def gigabytes(megabytes):
    return f"{megabytes / 1024:.1f} GB"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def caption(data, path, what):
    """The one line naming what was measured, on which machine and when."""
    machine = data.get("machine") or data.get("cpu") or "unknown CPU"
    cores = f", {data['cores']} cores" if data.get("cores") else ""
    date = data.get("date") or datetime.date.fromtimestamp(path.stat().st_mtime).isoformat()
    return f"{what} Measured on {machine}{cores}, {date}."


def render_suite(data, path):
    large = next(k for k in data["results"][0]["latency_ms"] if k != "1")
    rows = []
    for r in data["results"]:
        latency = r["latency_ms"]
        batch = next(k for k in latency if k != "1")
        cells = [f"{number(latency['1'][k])} / {number(latency[batch][k])}"
                 + ("" if batch == large else f" (batch {batch})")
                 for k in ("encode", "decode", "reconstruct")]
        rate = r["training_images_per_s"]
        training = number(rate) + (" (estimated)" if r["training_estimated"] else "")
        ratio = r["pipeline_over_training"]
        rows.append([r["preset"], r["resolution"], number(r["step_flops_per_image"] / 1e9),
                     *cells, number(r["pipeline_images_per_s"]), training,
                     "-" if ratio is None else number(ratio) + "x", gigabytes(r["peak_rss_mb"])])
    best = data.get("training_gflops_best")
    reached = f" Best training rate reached: {number(best)} GFLOP/s." if best else ""
    header = ["preset", "px", "step GFLOP/img", f"encode ms (1 / {large})",
              f"decode ms (1 / {large})", f"reconstruct ms (1 / {large})", "pipeline img/s",
              "training img/s", "pipeline / training", "peak RSS"]
    return [caption(data, path, "Float32, medians." + reached), "", *table(header, rows)]


def render_train_throughput(data, path):
    rows = data["rows"]
    columns = []
    if any("preset" in r for r in rows):
        columns.append(("preset", lambda r: f"`{r['preset']}`"))
    if len({r["precision"] for r in rows}) > 1:
        columns.append(("precision", lambda r: r["precision"]))
    columns += [("XLA", lambda r: r["jit"]), ("batch", lambda r: r["batch"])]
    if any("steps" in r for r in rows):
        columns.append(("timed steps", lambda r: r["steps"]))
    columns += [("images/s (median)", lambda r: number(r["images_per_s"])),
                ("ms/step", lambda r: number(r["median_step_ms"])),
                ("peak RSS", lambda r: gigabytes(r["peak_rss_mb"]))]
    if any(r.get("gflop_per_s") for r in rows):
        columns += [("GFLOP/s", lambda r: number(r.get("gflop_per_s"))),
                    ("of the matmul peak", lambda r: "-" if r.get("fraction_of_peak") is None
                     else f"{r['fraction_of_peak']:.0%}"
                     + (" of fp32" if r["precision"] == "mixed_float16" else ""))]
    if any(r.get("flops_per_step") for r in rows):
        columns.append(("GFLOP/step (profiler)", lambda r: "-" if not r.get("flops_per_step")
                        else number(r["flops_per_step"] / 1e9)))
    what = f"`{data['preset']}`, " if "preset" in data else ""
    what += f"{data['repeats']} process{'es' if data['repeats'] > 1 else ''} per row, medians."
    if data.get("matmul_peak_gflops"):
        peaks = data["matmul_peak_gflops"]
        what += (f" Matmul peak (2048 x 2048) float32 {number(peaks['float32'])}, bfloat16 "
                 f"{number(peaks['bfloat16'])} GFLOP/s.")
    if data.get("flops_per_step"):
        what += f" {data['flops_per_step'] / 1e9:.2f} GFLOP per step (TF profiler)."
    body = [[cell(r) for _, cell in columns] for r in rows]
    return [caption(data, path, what), "", *table([name for name, _ in columns], body)]


def render_serving_latency(data, path):
    rows = []
    for model, results in data["results"].items():
        served = {(r["signature"], r["batch"]): r for r in results if r["path"] == "alae-serve"}
        for r in results:
            if r["path"] != "in-process":
                continue
            s = served.get((r["signature"], r["batch"]))
            rows.append([f"`{model}`", r["signature"], r["batch"],
                         f"{number(r['median_ms'])} / {number(r['p99_ms'])}",
                         number(r["images_per_s"]),
                         "-" if s is None else f"{number(s['median_ms'])} / {number(s['p99_ms'])}",
                         "-" if s is None else number(s["images_per_s"])])
    header = ["model", "signature", "batch", "in-process median / p99 ms", "images/s",
              "alae-serve median / p99 ms", "images/s"]
    return [caption(data, path, "Client and server share the cores."), "",
            *table(header, rows)]


def render_tfjs_latency(data, path):
    seen, latency = set(), []
    for r in data["latency"]:
        model = f"`{r['model']}`"
        if r["model"] not in seen:
            seen.add(r["model"])
            model += f" ({data['shipped'][r['model']]})"
        latency.append([model, r["runtime"],
                        f"{number(r['chain']['median_ms'])} / {number(r['chain']['p95_ms'])}",
                        f"{number(r['graph']['median_ms'])} / {number(r['graph']['p95_ms'])}"])
    sizes = []
    kinds = ("float32", "float16", "uint8")
    for model, bytes_ in data["download_bytes"].items():
        sizes.append([f"`{model}`"] + [
            f"{bytes_[k] / 1e6:.2f} MB" + (" (shipped)" if data["shipped"][model] == k else "")
            for k in kinds])
    what = (f"{data['software']}; " if data.get("software") else "") + (
        f"{data['runs']} timed one-image calls after 3 warm-ups, ms median / p95.")
    return [caption(data, path, what), "",
            *table(["model", "runtime", "E then G", "reconstruct graph"], latency), "",
            "Bytes the page downloads (encoder + generator + mapping graphs):", "",
            *table(["model", *kinds], sizes)]


def render_ablation(data, path):
    rows = [[r["variant"], r["seed"], r["epochs"], f"{r['images_seen']:,}", f"{r['w_knn1']:.3f}",
             f"{r['w_svm']:.3f}", f"{r['mse']:.4f}", f"{r['agreement']:.3f}",
             f"{r['confident']:.3f}"] for r in data["rows"]]
    what = (f"Budget {data['minutes']:g} min of training per run; alae-eval on the 2,004 "
            "held-out digits (EMA networks).")
    header = ["variant", "seed", "epochs", "images seen", "w 1-NN", "w SVM", "MSE", "agreement",
              "confident"]
    return [caption(data, path, what), "", *table(header, rows)]


def render_official_models(data, path):
    def megabytes(count):
        return f"{number(count / 1e6)} MB"

    def browser(bench):
        if bench is None:
            return "-"
        return " / ".join(number(bench[b]["chain"]["median_ms"]) if "chain" in bench[b]
                          else "failed" for b in ("webgl", "wasm", "cpu"))

    rows = []
    for r in data["models"]:
        imported, ms = r["import"], r["cpu_ms"]
        rows.append([f"`{r['config']}`", r["resolution"], megabytes(r["checkpoint_bytes"]),
                     f"{number(imported['seconds'])} s ({gigabytes(imported['peak_rss_mb'])})",
                     megabytes(r["saved_model_bytes"]),
                     " / ".join(megabytes(r["tfjs_bytes"][k])
                                for k in ("float32", "float16", "uint8")),
                     " / ".join(number(ms[k]) for k in ("encode", "decode", "reconstruct")),
                     browser(r["browser"])])
    what = (f"Batch 1, float32 arithmetic, untrained weights of the official shapes; CPU: medians "
            f"of {data['calls']} calls in TensorFlow; browser: headless Chromium, medians of "
            f"{data['browser_runs']} page reconstruct calls (encoder then generator, float32 "
            "TF.js) after 3 warm-ups.")
    header = ["official config", "px", "checkpoint", "alae-import (peak RSS)", "SavedModel",
              "TF.js download float32 / float16 / uint8", "CPU ms encode / decode / reconstruct",
              "browser reconstruct ms WebGL / WASM / CPU"]
    return [caption(data, path, what), "", *table(header, rows)]


# The renderer of docs/data/NAME.json is the one whose key NAME starts with.
RENDERERS = {
    "suite": render_suite,
    "train_throughput": render_train_throughput,
    "serving_latency": render_serving_latency,
    "tfjs_latency": render_tfjs_latency,
    "ablation": render_ablation,
    "official_models": render_official_models,
}


def render(name, data_dir):
    path = data_dir / f"{name}.json"
    renderer = next((f for key, f in RENDERERS.items() if name.startswith(key)), None)
    if renderer is None:
        raise SystemExit(f"tables: no renderer for {name} (known: {', '.join(RENDERERS)})")
    return "\n".join(renderer(json.loads(path.read_text()), path)) + "\n"


def update(text, data_dir):
    """``text`` with every marked table rendered afresh from ``data_dir``."""
    return MARKER.sub(lambda m: m.group(1) + render(m.group("name"), data_dir) + m.group(4),
                      text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="default: the repo's docs/")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a table differs from its JSON")
    args = parser.parse_args(argv)
    stale = []
    for page in sorted(args.docs.glob("*.md")):
        text = page.read_text()
        fresh = update(text, args.docs / "data")
        if fresh != text:
            stale.append(page.name)
            if not args.check:
                page.write_text(fresh)
    verb = "differ from their JSON" if args.check else "rewritten"
    print(f"tables: {', '.join(stale) or 'none'} {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
