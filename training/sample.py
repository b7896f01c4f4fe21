"""alae-sample: PNG grids of a trained run: samples, reconstructions, interpolations in W."""

import os

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    early_flags,
    positive_int,
    quiet_tensorflow,
    refuse_a_missing_run,
    run_main,
    seed_int,
    unit_interval,
)


def build_parser():
    parser = ArgumentParser(prog="alae-sample", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory written by alae-train")
    parser.add_argument("--num", type=positive_int, default=64,
                        help="random samples in the grid (default: 64)")
    parser.add_argument("--truncation-psi", type=unit_interval, default=1.0,
                        help="pull samples toward the average w: w_avg + psi (w - w_avg); "
                        "1 = no truncation (default: 1)")
    parser.add_argument("--interpolation-steps", type=positive_int, default=10,
                        help="images per interpolation row, ends included (default: 10)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of z (default: 0)")
    parser.add_argument("--mix", action="store_true",
                        help="StyleALAE: also write mixing.png, coarse styles (the first "
                        "--mix-crossover slots) from one real image and fine from another")
    parser.add_argument("--mix-crossover", type=positive_int, default=4,
                        help="style slots taken from the coarse image (default: 4)")
    parser.add_argument("--direction", nargs=2, metavar=("SET_A", "SET_B"), default=None,
                        help="also write direction.png: held-out images moved in W along the "
                        "normal of a linear SVM that separates E(SET_A) from E(SET_B) (the "
                        "authors' recipe), from A toward B; a set is 'mnist:DIGIT' (embedded "
                        "training digits of one class) or 'folder:PATH'")
    parser.add_argument("--save-direction", default=None, metavar="NAME",
                        help="with --direction: also keep the direction in the run as NAME, "
                        "for alae-photo --edit and the export's edit signature")
    parser.add_argument("--dataset", default=None,
                        help="real images to reconstruct and interpolate: 'mnist', 'folder:PATH' "
                        "or 'tfds:NAME' (default: the run's data source; without it, e.g. for "
                        "an imported model, only the samples are drawn)")
    parser.add_argument("--out-dir", default=None,
                        help="where the PNGs go (default: RUN_DIR/samples)")
    add_verbose_flag(parser)
    return parser


def sample(args):
    from alae_tf.runs import load_trained_model

    if args.save_direction and not args.direction:
        raise UsageError("--save-direction NAME needs --direction SET_A SET_B")

    model, preset, _, epoch = load_trained_model(args.run_dir)
    out_dir = args.out_dir or os.path.join(args.run_dir, "samples")

    import numpy as np
    import tensorflow as tf

    from alae_tf import images

    pixels = model.pixel_range
    z = tf.random.stateless_normal((args.num, model.latent_dim), seed=(args.seed, 1))
    samples = np.asarray(model.generate(z, truncation_psi=args.truncation_psi))
    grids = {"samples": images.make_grid(samples, ncols=8, pixel_range=pixels)}
    real = _real_images(args, preset)
    if real is None:
        _save(grids, out_dir)
        print(f"(epoch {epoch}; EMA networks; truncation psi {args.truncation_psi})")
        return 0
    real = np.asarray(model.images_at_level(real))
    reconstructions = np.asarray(model.reconstruct(real))
    # Interpolate between consecutive pairs of the held-out images: 8 rows.
    pairs = real[:16].reshape(8, 2, *real.shape[1:])
    lines = np.asarray(model.interpolate(pairs[:, 0], pairs[:, 1], args.interpolation_steps))
    grids["reconstructions"] = images.make_grid(images.side_by_side(real, reconstructions),
                                                ncols=8, pixel_range=pixels)
    grids["interpolations"] = images.make_grid(lines.reshape(-1, *real.shape[1:]),
                                               ncols=args.interpolation_steps, pixel_range=pixels)
    if args.mix:
        grids["mixing"] = _mixing_grid(model, real[:6], real[6:12], args.mix_crossover)
    if args.direction:
        grids["direction"] = _direction_grid(model, preset, real[:8], *args.direction,
                                             save_as=args.save_direction, run_dir=args.run_dir)
    _save(grids, out_dir)
    print(f"(epoch {epoch}; EMA networks; truncation psi {args.truncation_psi})")
    return 0


def _real_images(args, preset):
    """32 held-out real images from --dataset or the run's source; None (with a note) when
    the run's own source is not on this machine."""
    import dataclasses

    from alae_tf.errors import DataError, short_reason
    from alae_tf.runs import held_out_images

    if args.dataset is not None:
        return held_out_images(dataclasses.replace(preset, dataset=args.dataset), 32)
    try:
        return held_out_images(preset, 32)
    except DataError as e:
        print(f"note: no real images to reconstruct ({short_reason(e, with_type=False)}); "
              "give --dataset folder:PATH for reconstructions and interpolations")
        return None


def _save(grids, out_dir):
    from alae_tf import images

    for name, grid in grids.items():
        path = os.path.join(out_dir, f"{name}.png")
        images.save_png(path, grid)
        print(f"wrote {path} ({grid.shape[1]}x{grid.shape[0]})")


def _mixing_grid(model, coarse, fine, crossover):
    """Row i, column j: G(coarse slots of E(coarse_i), fine slots of E(fine_j)).

    The first row shows the fine-style sources, the first column the coarse-style sources.
    """
    import numpy as np
    import tensorflow as tf

    from alae_tf import images
    from alae_tf.models.families import family_of

    if not family_of(model).style_mixing:
        raise UsageError("--mix needs a StyleALAE model (one w per style slot)")
    num_styles = model.num_styles
    if not 1 <= crossover < num_styles:
        raise UsageError(f"--mix-crossover must be in [1, {num_styles - 1}]")
    w_coarse, w_fine = model.encode(coarse), model.encode(fine)
    slots = tf.range(num_styles)[None, None, :, None]
    w = tf.where(slots < crossover, w_coarse[:, None, None], w_fine[None, :, None])
    n_coarse, n_fine = w.shape[0], w.shape[1]
    mixed = np.asarray(model.decode(tf.reshape(w, (-1, num_styles, model.latent_dim))))
    mixed = mixed.reshape(n_coarse, n_fine, *mixed.shape[1:])
    blank = np.full_like(np.asarray(coarse[:1]), model.pixel_range.low)
    rows = [np.concatenate([blank, np.asarray(fine)])]
    rows += [np.concatenate([np.asarray(coarse[i:i + 1]), mixed[i]]) for i in range(n_coarse)]
    return images.make_grid(np.concatenate(rows), ncols=n_fine + 1, pixel_range=model.pixel_range)


def _image_set(spec, preset, model, limit=256):
    """Real images of a labelled set: 'mnist:DIGIT' or 'folder:PATH', in the model's pixel
    range, at its level; ``preset`` gives the data geometry."""
    import numpy as np

    from alae_tf.data import load_embedded_mnist, make_dataset

    if spec.startswith("mnist:"):
        digit = spec.split(":", 1)[1]
        if not digit.isdigit() or not 0 <= int(digit) <= 9:
            raise UsageError(f"--direction set {spec!r}: expected mnist:0 .. mnist:9")
        if preset.channels != 1 or preset.resolution not in (28, 32):
            raise UsageError(f"--direction set {spec!r} needs an MNIST model")
        digits, labels = load_embedded_mnist("train")
        x = digits[labels == int(digit)][:limit].astype(np.float32)[..., None]
        pad = (preset.resolution - 28) // 2
        x = model.pixel_range.from_uint8(np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))))
    elif spec.startswith("folder:"):
        dataset, count = make_dataset(
            spec, resolution=preset.resolution, channels=preset.channels, batch_size=1,
            pixel_range=model.pixel_range, shuffle=False, repeat=False,
            max_image_pixels=preset.max_image_pixels)
        x = np.concatenate([np.asarray(b) for b in dataset.take(limit)])
    else:
        raise UsageError(f"--direction set {spec!r}: use mnist:DIGIT or folder:PATH")
    return model.images_at_level(x)


def _direction_grid(model, preset, originals, set_a, set_b, steps=7, strength=1.5,
                    save_as=None, run_dir=None):
    """Each row: one held-out image's w moved by t * d, t in [0, 1.5]; d is the unit normal of
    a linear SVM between E(A) and E(B), pointing to B, times the distance between the two sets'
    mean codes along it (so t = 1 moves as far as from A's mean to B's). ``save_as``: also
    keep the unit normal in the run's directions."""
    import numpy as np
    import tensorflow as tf

    from alae_tf import images
    from alae_tf.faces.directions import fit_direction, save_directions

    codes_a = np.asarray(model.encode(_image_set(set_a, preset, model)))
    codes_b = np.asarray(model.encode(_image_set(set_b, preset, model)))
    normal, accuracy = fit_direction(codes_b, codes_a)
    span = float((codes_b.mean(0) - codes_a.mean(0)) @ normal)
    print(f"direction {set_a} -> {set_b}: a linear SVM separates the sets' codes "
          f"{accuracy:.1%}; their means are {span:.3g} apart along it")
    if save_as:
        save_directions(run_dir, {save_as: normal}, source=f"alae-sample --direction {set_a} "
                        f"{set_b}")
        print(f"kept direction {save_as!r} in {run_dir}/directions")
    w = model.encode(originals)  # [N, latent]
    t = tf.reshape(tf.linspace(0.0, strength, steps), (1, steps, 1))
    moved = w[:, None] + t * tf.constant(span * normal, tf.float32)[None, None]
    edited = np.asarray(model.decode(tf.reshape(moved, (-1, model.latent_dim))))
    edited = edited.reshape(len(originals), steps, *edited.shape[1:])
    rows = np.concatenate([np.asarray(originals)[:, None], edited], axis=1)
    return images.make_grid(rows.reshape(-1, *rows.shape[2:]), ncols=steps + 1,
                            pixel_range=model.pixel_range)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if code := refuse_a_missing_run("alae-sample", args.run_dir):
        return code
    quiet_tensorflow(early_flags(argv)[0])
    return run_main("alae-sample", lambda: sample(args))


if __name__ == "__main__":
    raise SystemExit(main())
