"""alae-photo: your own photos through a trained face model: the face found and cropped as the
model's training faces were, encoded, decoded, optionally refined and edited along attribute
directions, and pasted back into the photo.

For each PHOTO it writes, in --out, NAME_aligned.png (the crop the model sees),
NAME_reconstruction.png, NAME_w.npy (E's code), NAME_pasted.png (the reconstruction put back
into the photo) and NAME_grid.png (the crop beside every result); with --refine also
NAME_refined.png and NAME_w_refined.npy; with --edit NAME_edited.png and NAME_edited_pasted.png;
with --traverse NAME_traverse_DIRECTION.png.
"""

import os

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    early_flags,
    positive_float,
    quiet_tensorflow,
    refuse_a_missing_run,
    run_main,
    seed_int,
)
from alae_tf.errors import FaceError

TRAVERSE_STEPS = 9


def _edit_value(text):
    """NAME=VALUE (set the coordinate along NAME) or NAME+=DELTA (move by DELTA)."""
    relative = "+=" in text
    name, sep, value = text.partition("+=" if relative else "=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not name or number is None or number != number or abs(number) == float("inf"):
        raise UsageError(f"--edit {text!r}: expected NAME=VALUE or NAME+=DELTA, e.g. smile=20")
    return name, number, relative


def build_parser():
    parser = ArgumentParser(prog="alae-photo", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory (alae-train or alae-import)")
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="photos (JPEG, PNG, ...)")
    parser.add_argument("--out", required=True, help="folder for the results")
    parser.add_argument("--align", choices=("auto", "ffhq", "celeba", "none"), default="auto",
                        help="how the face is cropped: auto = the run's face_alignment "
                        "(ffhq for FFHQ and CelebA-HQ models, celeba for CelebA 128, none for "
                        "the rest); none = the photo's centre square (default: auto)")
    parser.add_argument("--landmarks", default=None, metavar="FILE",
                        help="a JSON file of each photo's landmarks instead of detecting them: "
                        "{\"photo.jpg\": [[x, y], ...]} with 5 points (eye centres, nose, mouth "
                        "corners, left to right in the image) or dlib's 68")
    parser.add_argument("--face", type=int, default=0,
                        help="which face when a photo has several, 0 = the largest (default: 0)")
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS",
                        help="Adam steps that move E's code so that G(w) matches the crop "
                        "better (default: 0, none)")
    parser.add_argument("--refine-space", choices=("w", "w+"), default="w",
                        help="refine one w (w) or one w per style slot (w+) (default: w)")
    parser.add_argument("--refine-lr", type=positive_float, default=0.01,
                        help="Adam's learning rate (default: 0.01)")
    parser.add_argument("--refine-pull", type=float, default=0.1,
                        help="weight of the squared distance from E's code, which keeps edits "
                        "meaningful (default: 0.1)")
    parser.add_argument("--lpips", default=None, metavar="FILE.npz",
                        help="LPIPS weights (docs/metrics.md): the refinement then also lowers "
                        "LPIPS, and PSNR and LPIPS are printed")
    parser.add_argument("--edit", nargs="+", default=(), metavar="NAME=VALUE",
                        help="move w along the run's attribute directions (alae-import "
                        "--directions): NAME=VALUE sets the coordinate (the authors' sliders run "
                        "from -40 to 40), NAME+=DELTA moves it")
    parser.add_argument("--traverse", default=None, metavar="NAME",
                        help=f"also write a row of {TRAVERSE_STEPS} decodes along direction NAME "
                        "over the sliders' range")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="seed of the generator's noise, fixed for every decode (default: 0)")
    add_verbose_flag(parser)
    return parser


def _progress(name):
    def show(step, steps, loss, elapsed):
        left = elapsed / step * (steps - step)
        print(f"  refine {name}: step {step}/{steps}, loss {loss:.5f}, "
              f"{elapsed:.0f} s, about {left:.0f} s left", flush=True)
    return show


def run(args):
    import numpy as np

    from alae_tf import images
    from alae_tf.faces import directions as dirs
    from alae_tf.faces.align import paste_back
    from alae_tf.faces.landmarks import read_landmarks
    from alae_tf.faces.photos import FacePipeline, psnr, read_photo
    from alae_tf.runs import load_trained_model

    if args.face < 0:
        raise UsageError("--face counts from 0 (the largest face)")
    edits = [_edit_value(text) for text in args.edit]
    landmarks = read_landmarks(args.landmarks, args.photos) if args.landmarks else {}
    model, preset, _, epoch = load_trained_model(args.run_dir)
    method = preset.face_alignment if args.align == "auto" else args.align
    pipeline = FacePipeline(model, method, seed=args.seed)
    directions = {}
    if edits or args.traverse:
        directions = dirs.load_directions(args.run_dir, model.latent_dim)
        if not directions:
            raise FaceError(f"{args.run_dir} has no attribute directions; import the authors' "
                            "with alae-import ... --directions FOLDER")
        for name in [e[0] for e in edits] + ([args.traverse] if args.traverse else []):
            if name not in directions:
                raise FaceError(f"unknown direction {name!r}; {args.run_dir} has: "
                                f"{', '.join(directions)}")
    lpips = None
    if args.lpips:
        from alae_tf.metrics.lpips import LPIPS

        lpips = LPIPS.from_file(args.lpips)
    print(f"{preset.name} ({pipeline.size} px, epoch {epoch}); photos cropped: {method}")
    os.makedirs(args.out, exist_ok=True)
    for path in args.photos:
        name = os.path.splitext(os.path.basename(path))[0]
        photo = read_photo(path)
        found = pipeline.find(photo, os.path.basename(path), landmarks.get(path), args.face)
        for note in found.notes:
            print(f"note: {note}")
        crop = found.alignment.image
        w = pipeline.encode(crop)
        reconstruction = pipeline.decode(w)
        results = {"aligned": crop, "reconstruction": reconstruction}
        arrays = {"w": w}
        line = f"{path}: E(x) PSNR {psnr(crop, reconstruction):.2f} dB"
        if lpips is not None:
            line += f", LPIPS {_lpips(lpips, crop, reconstruction):.4f}"
        best, best_styles = reconstruction, pipeline.styles(w)
        if args.refine:
            refined_w, _ = pipeline.refine(
                crop, w, args.refine, per_slot=args.refine_space == "w+",
                learning_rate=args.refine_lr, pull=args.refine_pull, lpips=lpips,
                progress=_progress(name))
            refined = pipeline.decode(refined_w)
            results["refined"], arrays["w_refined"] = refined, refined_w
            line += f"; refined ({args.refine} steps, {args.refine_space}) PSNR " \
                    f"{psnr(crop, refined):.2f} dB"
            if lpips is not None:
                line += f", LPIPS {_lpips(lpips, crop, refined):.4f}"
            best = refined
            best_styles = refined_w if refined_w.ndim == 2 else pipeline.styles(refined_w)
        print(line)
        results["pasted"] = paste_back(photo, found.alignment, best)
        if edits or args.traverse:
            w_avg, base = pipeline.w_avg, best_styles[0]
            start = dirs.start_values(base, w_avg, directions)
            if edits:
                values = {n: (start[n] + v if rel else v) for n, v, rel in edits}
                edited_w = dirs.edit(base, w_avg, directions, values)
                edited = pipeline.decode(dirs.edited_styles(edited_w, best_styles)
                                         if model.num_styles else edited_w)
                results["edited"] = edited
                results["edited_pasted"] = paste_back(photo, found.alignment, edited)
                print("  edit: " + ", ".join(f"{n} {start[n]:.1f} -> {values[n]:.1f}"
                                             for n in values))
            if args.traverse:
                low, high = dirs.SLIDER_RANGE
                row = []
                for value in np.linspace(low, high, TRAVERSE_STEPS):
                    moved = dirs.edit(base, w_avg, directions, {args.traverse: value})
                    row.append(pipeline.decode(dirs.edited_styles(moved, best_styles)
                                               if model.num_styles else moved))
                grid = images.make_grid(np.stack([crop, *row]), ncols=TRAVERSE_STEPS + 1,
                                        pixel_range=(0, 255))
                results[f"traverse_{args.traverse}"] = grid
                print(f"  traverse {args.traverse}: {low:g} .. {high:g} (start "
                      f"{start[args.traverse]:.1f})")
        strip = [results[k] for k in ("aligned", "reconstruction", "refined", "edited")
                 if k in results]
        results["grid"] = images.make_grid(np.stack(strip), ncols=len(strip),
                                           pixel_range=(0, 255))
        for key, picture in results.items():
            images.save_png(os.path.join(args.out, f"{name}_{key}.png"), picture)
        for key, array in arrays.items():
            _save_npy(os.path.join(args.out, f"{name}_{key}.npy"), array)
        print(f"  wrote {args.out}/{name}_{{{','.join([*results, *arrays])}}}")
    return 0


def _lpips(lpips, a, b):
    import numpy as np

    return float(lpips(np.asarray(a, np.float32)[None] / 255, np.asarray(b, np.float32)[None]
                       / 255)[0])


def _save_npy(path, array):
    import numpy as np

    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.asarray(array, np.float32))
    os.replace(tmp, path)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if code := refuse_a_missing_run("alae-photo", args.run_dir):
        return code
    quiet_tensorflow(early_flags(argv)[0])
    return run_main("alae-photo", lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
