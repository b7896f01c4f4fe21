"""What alae-photo's steps cost on this machine: face detection, the crops, encode/decode,
refinement per 100 steps and an edit, at the face models' full sizes.

The photo is matplotlib's grace_hopper.jpg (512 x 600). The models are the celeba_hq256 and
ffhq1024 presets at full width with random weights (the authors' architectures; the cost does
not depend on the weights), in float32 on the CPU. Times are medians of ``--repeats`` runs
after an untimed one; refinement is timed over ``--refine-steps`` steps after its first (traced)
step and given per 100 steps. The edit is timed in Python (the library's formula and a decode)
and through the SavedModel's ``edit_uint8`` signature as alae-serve calls it (in process, no
HTTP).

    python benchmarks/photos.py [--models celeba_hq256 ffhq1024] [--json FILE]

Run it with nothing else on the machine.
"""

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure_model(name, photo, points, repeats, refine_steps):
    """One preset's row: encode, decode, refinement and edit costs."""
    import keras

    from alae_tf.export.rest import ServedModel
    from alae_tf.export.saved_model import export_saved_model
    from alae_tf.faces import align, directions
    from alae_tf.faces.photos import FacePipeline
    from alae_tf.models.presets import build_model, get_preset

    preset = get_preset(name)
    keras.utils.set_random_seed(0)
    model = build_model(preset)
    model.set_level(model.max_level)
    pipeline = FacePipeline(model, preset.face_alignment)
    crop = align.align(photo, points, preset.face_alignment, pipeline.size).image
    w = pipeline.encode(crop)
    row = {"resolution": preset.resolution,
           "encode_ms": timed(lambda: pipeline.encode(crop), repeats),
           "decode_ms": timed(lambda: pipeline.decode(w), repeats)}
    pipeline.refine(crop, w, 1)  # traces the step
    start = time.perf_counter()
    pipeline.refine(crop, w, refine_steps)
    row["refine_s_per_100_steps"] = (time.perf_counter() - start) / refine_steps * 100
    row["refine_steps_timed"] = refine_steps
    rng = np.random.default_rng(0)
    found = {f"d{i}": v / np.linalg.norm(v)
             for i, v in enumerate(rng.normal(size=(9, model.latent_dim)))}

    def python_edit():
        edited = directions.edit(w, pipeline.w_avg, found, {"d1": 20.0})
        return pipeline.decode(directions.edited_styles(edited, pipeline.styles(w)))

    row["edit_python_ms"] = timed(python_edit, repeats)
    strengths = np.zeros((1, 9), np.float32)
    strengths[0, 1] = 20
    with tempfile.TemporaryDirectory() as tmp:
        export_saved_model(model, preset, str(Path(tmp) / name / "1"), directions=found)
        served = ServedModel(str(Path(tmp) / name), name=name)
        row["edit_served_ms"] = timed(
            lambda: served.run("edit_uint8", {"images": crop[None], "strengths": strengths}),
            repeats)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["celeba_hq256", "ffhq1024"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--refine-steps", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from alae_tf.faces import align, detect

    result = {"cpu": cpu_model(), "photo": PHOTO.name, "models": {}}
    print(f"CPU: {result['cpu']}")
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    start = time.perf_counter()
    faces = detect.detect_faces(photo)
    result["detect_first_ms"] = (time.perf_counter() - start) * 1000
    result["detect_ms"] = timed(lambda: detect.detect_faces(photo), args.repeats)
    points = faces[0].points
    print(f"MTCNN: first call {result['detect_first_ms']:.0f} ms (loads the networks), then "
          f"{result['detect_ms']:.0f} ms per photo")
    result["align_ms"] = {}
    for method, size in (("ffhq", 256), ("ffhq", 1024), ("celeba", 128)):
        ms = timed(lambda m=method, s=size: align.align(photo, points, m, s), args.repeats)
        result["align_ms"][f"{method}_{size}"] = ms
        print(f"{method} crop at {size} px: {ms:.0f} ms")

    for name in args.models:
        row = measure_model(name, photo, points, args.repeats, args.refine_steps)
        result["models"][name] = row
        print(f"{name} ({row['resolution']} px): encode {row['encode_ms']:.0f} ms, decode "
              f"{row['decode_ms']:.0f} ms, refine {row['refine_s_per_100_steps']:.0f} s per 100 "
              f"steps (timed over {args.refine_steps}), edit {row['edit_python_ms']:.0f} ms in "
              f"Python, {row['edit_served_ms']:.0f} ms through the SavedModel")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
