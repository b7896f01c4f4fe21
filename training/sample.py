"""alae-sample: PNG grids of a trained run: samples, reconstructions, interpolations in W."""

import os

from alae_tf.training.cli import ArgumentParser, positive_int, run_main, unit_interval


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
    parser.add_argument("--seed", type=int, default=0, help="seed of z (default: 0)")
    parser.add_argument("--out-dir", default=None,
                        help="where the PNGs go (default: RUN_DIR/samples)")
    return parser


def sample(args):
    from alae_tf.training.runs import held_out_images, load_trained_model

    model, preset, _, epoch = load_trained_model(args.run_dir)
    out_dir = args.out_dir or os.path.join(args.run_dir, "samples")

    import numpy as np
    import tensorflow as tf

    from alae_tf import images

    z = tf.random.stateless_normal((args.num, model.latent_dim), seed=(args.seed, 1))
    samples = np.asarray(model.generate(z, truncation_psi=args.truncation_psi))
    real = held_out_images(preset, 32)
    reconstructions = np.asarray(model.reconstruct(real))
    # Interpolate between consecutive pairs of the held-out images: 8 rows.
    pairs = real[:16].reshape(8, 2, *real.shape[1:])
    lines = np.asarray(model.interpolate(pairs[:, 0], pairs[:, 1], args.interpolation_steps))

    grids = {
        "samples": images.make_grid(samples, ncols=8, pixel_range=preset.pixel_range),
        "reconstructions": images.make_grid(images.side_by_side(real, reconstructions),
                                            ncols=8, pixel_range=preset.pixel_range),
        "interpolations": images.make_grid(lines.reshape(-1, *real.shape[1:]),
                                           ncols=args.interpolation_steps,
                                           pixel_range=preset.pixel_range),
    }
    for name, grid in grids.items():
        path = os.path.join(out_dir, f"{name}.png")
        images.save_png(path, grid)
        print(f"wrote {path} ({grid.shape[1]}x{grid.shape[0]})")
    print(f"(epoch {epoch}; EMA networks; truncation psi {args.truncation_psi})")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_main("alae-sample", lambda: sample(args))


if __name__ == "__main__":
    raise SystemExit(main())
