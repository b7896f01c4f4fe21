"""Write a full-size checkpoint in the layout of the authors' published ALAE files, random weights.

Builds the official StyleALAE ``Model`` of podgorskiy/ALAE (commit 42bcf2e) from one of its
YAML configs (merged over its defaults.py with yacs, as launcher.py does), twice as
train_alae.py does: the trained model and its EMA twin. Their weights are the official
initialisation, untrained: latency and file sizes do not depend on the values. The file holds
the dict the official Checkpointer saves, ``{"models": {...}, "auxiliary": {}}``, written in
the legacy (non-zip) torch layout of the published ``model_*.pth`` files. The benchmark
``benchmarks/official_models.py`` imports it with alae-import.

This script needs torch and an official checkout; it is not part of the library (torch is
never a dependency of this project). Run it from a torch venv:

    /work/torchvenv/bin/python benchmarks/official_checkpoint.py \
        --config /tmp/alae_ref/configs/ffhq.yaml --out /tmp/official/ffhq.pth
"""

import argparse
import importlib
import os
import sys
import time
import types

import torch


def import_official(ref_dir):
    """Import the official ``defaults`` and ``model`` modules from a checkout.

    Args:
        ref_dir: path of the checkout (the directory holding net.py, model.py, ...).

    Returns:
        A namespace with the two modules as attributes.
    """
    sys.path.insert(0, os.path.abspath(ref_dir))
    # Leave the checkout as it was (no __pycache__ directories in it).
    sys.dont_write_bytecode = True
    return types.SimpleNamespace(defaults=importlib.import_module("defaults"),
                                 model=importlib.import_module("model"))


def build_models(off, cfg):
    """The trained and the EMA official Model, with the arguments train_alae.py passes.

    Args:
        off: official modules.
        cfg: merged yacs config.

    Returns:
        (model, model_s).
    """
    common = {
        "startf": cfg.MODEL.START_CHANNEL_COUNT,
        "layer_count": cfg.MODEL.LAYER_COUNT,
        "maxf": cfg.MODEL.MAX_CHANNEL_COUNT,
        "latent_size": cfg.MODEL.LATENT_SPACE_SIZE,
        "mapping_layers": cfg.MODEL.MAPPING_LAYERS,
        "channels": cfg.MODEL.CHANNELS,
        "generator": cfg.MODEL.GENERATOR,
        "encoder": cfg.MODEL.ENCODER,
        "z_regression": cfg.MODEL.Z_REGRESSION,
    }
    model = off.model.Model(dlatent_avg_beta=cfg.MODEL.DLATENT_AVG_BETA,
                            style_mixing_prob=cfg.MODEL.STYLE_MIXING_PROB, **common)
    model_s = off.model.Model(truncation_psi=cfg.MODEL.TRUNCATIOM_PSI,
                              truncation_cutoff=cfg.MODEL.TRUNCATIOM_CUTOFF, **common)
    return model, model_s


def checkpoint_data(model, model_s):
    """The dict the official Checkpointer saves for train_alae.py's model dict (its key names).

    Args:
        model: the trained official Model.
        model_s: the EMA official Model.
    """
    networks = {
        "discriminator": model.encoder,
        "generator": model.decoder,
        "mapping_tl": model.mapping_d,
        "mapping_fl": model.mapping_f,
        "dlatent_avg": model.dlatent_avg,
        "discriminator_s": model_s.encoder,
        "generator_s": model_s.decoder,
        "mapping_tl_s": model_s.mapping_d,
        "mapping_fl_s": model_s.mapping_f,
    }
    return {"models": {name: net.state_dict() for name, net in networks.items()},
            "auxiliary": {}}


def main(argv=None):
    """Write one checkpoint.

    Args:
        argv: command-line arguments (default sys.argv[1:]).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="an official YAML config (configs/*.yaml)")
    parser.add_argument("--out", required=True, help="the .pth file to write")
    parser.add_argument("--ref", default="/tmp/alae_ref",
                        help="checkout of podgorskiy/ALAE (commit 42bcf2e)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the initialisation")
    args = parser.parse_args(argv)

    off = import_official(args.ref)
    cfg = off.defaults.get_cfg_defaults()
    cfg.merge_from_file(args.config)
    cfg.freeze()
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    model, model_s = build_models(off, cfg)
    data = checkpoint_data(model, model_s)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    # The published files predate torch 1.6's zip layout.
    torch.save(data, args.out, _use_new_zipfile_serialization=False)
    resolution = model.decoder.layer_to_resolution[cfg.MODEL.LAYER_COUNT - 1]
    numbers = sum(t.numel() for state in data["models"].values() for t in state.values())
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, {numbers:,} numbers) "
          f"in {time.perf_counter() - start:.1f} s: {cfg.NAME}, {resolution} px, "
          f"{cfg.MODEL.CHANNELS} channel(s), latent {cfg.MODEL.LATENT_SPACE_SIZE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
