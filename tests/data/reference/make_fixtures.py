"""Make reference fixtures for the importer of official ALAE checkpoints.

Builds small StyleALAE models with the authors' PyTorch code (podgorskiy/ALAE, commit 42bcf2e),
trains them for a few iterations with the official three updates, writes their checkpoints in
the official Checkpointer layout (zip and legacy pickle serialization) and records the outputs
of the official networks on fixed inputs, so that the importer can be checked to 1e-4 in
float32 without torch.

This script needs torch and is not part of the library or the test suite (torch is never a
dependency of this project). Run it from a torch venv:

    python tests/data/reference/make_fixtures.py --ref PATH/TO/ALAE   # in a venv with torch
"""

import argparse
import contextlib
import hashlib
import importlib
import io
import logging
import os
import random
import sys
import types
import warnings
import zipfile

import numpy as np
import torch
import yaml

# Overrides of the official defaults.py, nested as in the YAML file. Keys left out take the
# defaults.py values when yacs merges the file.
FIXTURES = {
    "style32": {
        "NAME": "style32",
        "DATASET": {"MAX_RESOLUTION_LEVEL": 5, "FLIP_IMAGES": False},
        "MODEL": {
            "LATENT_SPACE_SIZE": 16,
            "LAYER_COUNT": 4,
            "MAX_CHANNEL_COUNT": 32,
            "START_CHANNEL_COUNT": 8,
            "DLATENT_AVG_BETA": 0.995,
            "MAPPING_LAYERS": 4,
            "CHANNELS": 1,
        },
        "TRAIN": {
            "BASE_LEARNING_RATE": 0.002,
            "EPOCHS_PER_LOD": 10,
            "LEARNING_DECAY_RATE": 0.1,
            "LEARNING_DECAY_STEPS": [],
            "TRAIN_EPOCHS": 60,
            "LOD_2_BATCH_1GPU": [16, 16, 8, 8],
            "LEARNING_RATES": [0.0015, 0.0015, 0.0015, 0.0015],
        },
    },
    "style128": {
        "NAME": "style128",
        "DATASET": {"MAX_RESOLUTION_LEVEL": 7},
        "MODEL": {
            "LATENT_SPACE_SIZE": 16,
            "LAYER_COUNT": 6,
            "MAX_CHANNEL_COUNT": 16,
            "START_CHANNEL_COUNT": 4,
            "DLATENT_AVG_BETA": 0.995,
            "MAPPING_LAYERS": 3,
            "CHANNELS": 3,
            "TRUNCATIOM_PSI": 0.7,
            "TRUNCATIOM_CUTOFF": 8,
            "STYLE_MIXING_PROB": 0.9,
        },
        "TRAIN": {
            "BASE_LEARNING_RATE": 0.0015,
            "EPOCHS_PER_LOD": 16,
            "TRAIN_EPOCHS": 112,
            "LOD_2_BATCH_1GPU": [32, 32, 16, 16, 8, 8],
            "LEARNING_RATES": [0.0015, 0.0015, 0.0015, 0.002, 0.002, 0.002],
        },
    },
}

TRAIN_ITERATIONS = 4
# Images per fixed input batch. At 128 px each [4, 3, 128, 128] float32 output takes 786 KB and
# the file would hold nine of them, so style128 uses 2 (still > 1, which the batch-shared first
# noise map needs).
EVAL_BATCH = {"style32": 4, "style128": 2}
# Standard deviations of the seeded perturbations added after training (see perturb()).
NOISE_WEIGHT_STD = 0.1
BIAS_STD = 0.05
CONST_STD = 0.2
# Legacy torch.save files are a pickle whose first object is this magic number
# (torch/serialization.py MAGIC_NUMBER), written with pickle protocol 2.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def import_official(ref_dir):
    """Import the official modules this script uses from a checkout of podgorskiy/ALAE.

    Args:
        ref_dir: path of the checkout (the directory holding net.py, model.py, ...).

    Returns:
        A namespace with the official modules as attributes.
    """
    sys.path.insert(0, os.path.abspath(ref_dir))
    # Leave the reference checkout as it was (no __pycache__ directories in it).
    sys.dont_write_bytecode = True
    # tracker.py imports matplotlib for its plots only (not called here); stub it if missing.
    # None of the modules used here imports torchvision (only the training scripts do).
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        matplotlib = types.ModuleType("matplotlib")
        matplotlib.use = lambda *args, **kwargs: None
        matplotlib.pyplot = types.ModuleType("matplotlib.pyplot")
        sys.modules.update({"matplotlib": matplotlib, "matplotlib.pyplot": matplotlib.pyplot})
    names = ("defaults", "lreq", "net", "model", "custom_adam", "scheduler", "tracker",
             "checkpointer", "lod_driver")
    return types.SimpleNamespace(**{n: importlib.import_module(n) for n in names})


def seed_everything(seed):
    """Seed torch, numpy and Python's random (the official training step uses all three).

    Args:
        seed: the seed.
    """
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def blob_images(rng, count, channels, resolution):
    """Smooth image-like inputs in [-1, 1]: sums of Gaussian blobs with random colours.

    Args:
        rng: numpy RandomState.
        count: number of images.
        channels: image channels.
        resolution: height and width.

    Returns:
        float32 array [count, channels, resolution, resolution].
    """
    grid = (np.arange(resolution) + 0.5) / resolution
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = np.zeros((count, channels, resolution, resolution))
    for image in images:
        for _ in range(6):
            cy, cx = rng.uniform(0.0, 1.0, size=2)
            sigma = rng.uniform(0.08, 0.3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * sigma**2))
            image += rng.uniform(-1.0, 1.0, size=(channels, 1, 1)) * blob
        image *= 0.95 / np.abs(image).max()
    return images.astype(np.float32)


class _ConfigDumper(yaml.SafeDumper):
    """Block-style mappings with inline lists, the layout of the official configs/*.yaml."""


_ConfigDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", value, flow_style=True))


def load_config(off, path):
    """Merge a fixture's YAML file into the official defaults exactly as launcher.py does.

    Args:
        off: official modules.
        path: the fixture's config.yaml.
    """
    cfg = off.defaults.get_cfg_defaults()
    cfg.merge_from_file(path)
    cfg.freeze()
    return cfg


def build_model(off, cfg, training):
    """Build the official Model with the arguments train_alae.py passes.

    Args:
        off: official modules.
        cfg: merged yacs config.
        training: True for the trained model (dlatent average and style mixing), False for the
            EMA model (truncation), as in train_alae.py.
    """
    kwargs = {
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
    if training:
        kwargs.update(dlatent_avg_beta=cfg.MODEL.DLATENT_AVG_BETA,
                      style_mixing_prob=cfg.MODEL.STYLE_MIXING_PROB)
    else:
        kwargs.update(truncation_psi=cfg.MODEL.TRUNCATIOM_PSI,
                      truncation_cutoff=cfg.MODEL.TRUNCATIOM_CUTOFF)
    return off.model.Model(**kwargs)


def train(off, cfg, model, model_s, rng, logger):
    """Run a few iterations of the official training loop at the full level of detail.

    Mirrors train_alae.py train(): LREQAdam optimizers and ComboMultiStepLR, LODDriver for
    batch size, level and blend, the three Model.forward updates per batch and the EMA
    update model_s.lerp(model, beta).

    Args:
        off: official modules.
        cfg: merged yacs config.
        model: the trained official Model.
        model_s: the EMA official Model.
        rng: numpy RandomState for the training images.
        logger: logger the official LODDriver reports to.

    Returns:
        The auxiliary objects the official Checkpointer saves.
    """
    betas = (cfg.TRAIN.ADAM_BETA_0, cfg.TRAIN.ADAM_BETA_1)
    decoder_optimizer = off.custom_adam.LREQAdam(
        [{"params": model.decoder.parameters()}, {"params": model.mapping_f.parameters()}],
        lr=cfg.TRAIN.BASE_LEARNING_RATE, betas=betas, weight_decay=0)
    encoder_optimizer = off.custom_adam.LREQAdam(
        [{"params": model.encoder.parameters()}, {"params": model.mapping_d.parameters()}],
        lr=cfg.TRAIN.BASE_LEARNING_RATE, betas=betas, weight_decay=0)
    optimizers = {"encoder_optimizer": encoder_optimizer, "decoder_optimizer": decoder_optimizer}
    scheduler = off.scheduler.ComboMultiStepLR(
        optimizers=optimizers, milestones=cfg.TRAIN.LEARNING_DECAY_STEPS,
        gamma=cfg.TRAIN.LEARNING_DECAY_RATE, reference_batch_size=32,
        base_lr=cfg.TRAIN.LEARNING_RATES)
    tracker = off.tracker.LossTracker(cfg.OUTPUT_DIR)
    lod2batch = off.lod_driver.LODDriver(cfg, logger, world_size=1, dataset_size=1000)

    # The middle of the last level's cycle: the fade-in is over, so lod = L - 1 and blend = 1.
    # The scheduler is advanced to that epoch as a run that got there would have it.
    epoch = (cfg.MODEL.LAYER_COUNT - 1) * cfg.TRAIN.EPOCHS_PER_LOD + cfg.TRAIN.EPOCHS_PER_LOD // 2
    for _ in range(epoch):
        scheduler.step()
    lod2batch.set_epoch(epoch, [encoder_optimizer, decoder_optimizer])
    assert lod2batch.lod == cfg.MODEL.LAYER_COUNT - 1 and not lod2batch.in_transition
    scheduler.set_batch_size(lod2batch.get_batch_size(), lod2batch.lod)
    blend_factor = lod2batch.get_blend_factor()
    resolution = model.decoder.layer_to_resolution[lod2batch.lod]

    model.train()
    for _ in range(TRAIN_ITERATIONS):
        x = torch.from_numpy(blob_images(rng, lod2batch.get_per_GPU_batch_size(),
                                         cfg.MODEL.CHANNELS, resolution))
        x.requires_grad = True

        encoder_optimizer.zero_grad()
        loss_d = model(x, lod2batch.lod, blend_factor, d_train=True, ae=False)
        tracker.update({"loss_d": loss_d})
        loss_d.backward()
        encoder_optimizer.step()

        decoder_optimizer.zero_grad()
        loss_g = model(x, lod2batch.lod, blend_factor, d_train=False, ae=False)
        tracker.update({"loss_g": loss_g})
        loss_g.backward()
        decoder_optimizer.step()

        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()
        lae = model(x, lod2batch.lod, blend_factor, d_train=True, ae=True)
        tracker.update({"lae": lae})
        lae.backward()
        encoder_optimizer.step()
        decoder_optimizer.step()

        betta = 0.5 ** (lod2batch.get_batch_size() / (10 * 1000.0))
        model_s.lerp(model, betta)
        lod2batch.step()
    scheduler.step()
    return {**optimizers, "scheduler": scheduler, "tracker": tracker}


@torch.no_grad()
def perturb(model, seed):
    """Add seeded noise to the tensors a short run leaves at or near their initial constants.

    Noise strengths, biases and the generator's constant input start at zero or one and move
    little in a few iterations; perturbing them makes every tensor's import matter.

    Args:
        model: an official Model, changed in place.
        seed: seed of the perturbation.
    """
    generator = torch.Generator().manual_seed(seed)

    def add_noise(tensor, std):
        tensor.add_(std * torch.randn(tensor.shape, generator=generator))

    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("noise_weight"):
            add_noise(param, NOISE_WEIGHT_STD)
        elif leaf.startswith("bias"):
            add_noise(param, BIAS_STD)
    add_noise(model.decoder.const, CONST_STD)


class _NetTorch:
    """Stands in for `torch` inside the official net module, with randn replaced."""

    def __init__(self, randn):
        self._randn = randn

    def randn(self, *size, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        return self._randn(tuple(int(s) for s in shape))

    def __getattr__(self, name):
        return getattr(torch, name)


@contextlib.contextmanager
def net_randn(net_module, randn):
    """Patch torch.randn as seen by the official net module only (the generator's noise).

    Args:
        net_module: the official net module.
        randn: callable from a shape tuple to the tensor to return.
    """
    original = net_module.torch
    net_module.torch = _NetTorch(randn)
    try:
        yield
    finally:
        net_module.torch = original


def zero_noise(shape):
    """Zero noise of the requested shape.

    Args:
        shape: shape tuple.
    """
    return torch.zeros(shape)


class FixedNoise:
    """Hands out the fixture's noise maps in the order the generator requests them.

    Args:
        maps: the noise tensors, in drawing order.
    """

    def __init__(self, maps):
        self.maps = list(maps)
        self.used = 0

    def __call__(self, shape):
        noise = self.maps[self.used]
        assert tuple(noise.shape) == shape, (tuple(noise.shape), shape)
        self.used += 1
        return noise


def checkpoint_models(model, model_s):
    """The model dict train_alae.py hands to the Checkpointer (official key names).

    Args:
        model: the trained official Model.
        model_s: the EMA official Model.
    """
    return {
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


def checkpoint_data(models, auxiliary):
    """The dict Checkpointer.save writes (checkpointer.py), built from the same objects.

    Args:
        models: name -> module, as checkpoint_models() returns.
        auxiliary: name -> object with state_dict(), as train() returns.
    """
    return {
        "models": {name: module.state_dict() for name, module in models.items()},
        "auxiliary": {name: item.state_dict() for name, item in auxiliary.items()},
    }


def assert_same(a, b, where="checkpoint"):
    """Recursive equality of checkpoint contents (tensors bitwise, objects by __dict__).

    Args:
        a: expected value.
        b: value read back.
        where: path of the values, for the assertion message.
    """
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dict__"):
        assert type(a) is type(b), where
        assert_same(vars(a), vars(b), f"{where}.__dict__")
    else:
        assert a == b, (where, a, b)


def save_checkpoints(off, cfg, out_dir, models, auxiliary, logger):
    """Write model_zip.pth with the official Checkpointer and model_legacy.pth with torch.save.

    Args:
        off: official modules.
        cfg: merged yacs config.
        out_dir: the fixture directory.
        models: name -> module, as checkpoint_models() returns.
        auxiliary: name -> object with state_dict(), as train() returns.
        logger: logger the official Checkpointer reports to.

    Returns:
        The in-memory checkpoint dict, checked equal to both files read back.
    """
    ckpt_cfg = cfg.clone()
    ckpt_cfg.defrost()
    ckpt_cfg.OUTPUT_DIR = out_dir
    checkpointer = off.checkpointer.Checkpointer(ckpt_cfg, models, auxiliary, logger=logger)
    # Checkpointer.save returns a started thread wrapper; its wait() calls Thread.isAlive,
    # which Python 3.9 removed, so join the thread directly.
    checkpointer.save("model_zip").Thread.join()
    os.remove(os.path.join(out_dir, "last_checkpoint"))

    data = checkpoint_data(models, auxiliary)
    legacy_path = os.path.join(out_dir, "model_legacy.pth")
    torch.save(data, legacy_path, _use_new_zipfile_serialization=False)

    # The official LossTracker state holds tracker.RunningMeanTorch objects.
    with torch.serialization.safe_globals([off.tracker.RunningMeanTorch]):
        for name in ("model_zip.pth", "model_legacy.pth"):
            loaded = torch.load(os.path.join(out_dir, name), weights_only=True)
            assert_same(data, loaded, name)
    with open(os.path.join(out_dir, "model_zip.pth"), "rb") as f:
        assert f.read(2) == b"PK"
    with open(legacy_path, "rb") as f:
        head = f.read(12)
    assert head[:4] == b"\x80\x02\x8a\x0a", head
    assert int.from_bytes(head[4:12], "little") == LEGACY_MAGIC & (2**64 - 1), head
    return data


def model_from_checkpoint(off, cfg, models_state, suffix):
    """An official Model (EMA-style constructor: truncation on) holding one network set.

    Loads the checkpoint's state dicts strictly, as make_figures/*.py load the `_s` networks
    and the shared dlatent_avg into one Model.

    Args:
        off: official modules.
        cfg: merged yacs config.
        models_state: the checkpoint's "models" dict.
        suffix: "_s" for the EMA networks, "" for the trained ones.
    """
    model = build_model(off, cfg, training=False)
    model.encoder.load_state_dict(models_state["discriminator" + suffix])
    model.decoder.load_state_dict(models_state["generator" + suffix])
    model.mapping_d.load_state_dict(models_state["mapping_tl" + suffix])
    model.mapping_f.load_state_dict(models_state["mapping_fl" + suffix])
    model.dlatent_avg.load_state_dict(models_state["dlatent_avg"])
    model.eval()
    return model


@torch.no_grad()
def truncated_styles(model, z, lod):
    """The styles Model.generate feeds the decoder (official truncation), captured.

    Args:
        model: an official Model built with truncation settings.
        z: latents [N, latent].
        lod: level of detail.
    """
    captured = {}

    def capture(styles, *args):
        captured["styles"] = styles
        return styles

    model.decoder.forward = capture
    try:
        model.generate(lod, 1.0, z=z, mixing=False, noise=True)
    finally:
        del model.decoder.forward
    return captured["styles"]


@torch.no_grad()
def reference_outputs(off, cfg, models_state, x, z, noise_maps):
    """Run the official networks of both sets on the fixed inputs.

    Args:
        off: official modules.
        cfg: merged yacs config.
        models_state: the checkpoint's "models" dict.
        x: images [N, C, R, R].
        z: latents [N, latent].
        noise_maps: the generator's noise tensors, in drawing order.

    Returns:
        dict of float32 arrays (see README.md for the keys).
    """
    lod = cfg.MODEL.LAYER_COUNT - 1
    slots = 2 * cfg.MODEL.LAYER_COUNT
    ema = model_from_checkpoint(off, cfg, models_state, "_s")
    w = ema.mapping_f(z)[:, 0]
    w_slots = w[:, None, :].repeat(1, slots, 1)
    outputs = {"w": w, "dlatent_avg": models_state["dlatent_avg"]["buff"]}
    for prefix, suffix in (("ema_", "_s"), ("train_", "")):
        model = model_from_checkpoint(off, cfg, models_state, suffix)
        encoded = model.encoder(x, lod, 1)
        outputs[prefix + "E_x"] = encoded[:, 0]
        outputs[prefix + "D_E_x"] = model.mapping_d(encoded)
        outputs[prefix + "E_x_fade"] = model.encoder(x, lod, 0.5)[:, 0]
        outputs[prefix + "F_z"] = model.mapping_f(z)[:, 0]
        outputs[prefix + "F_z_trunc"] = truncated_styles(model, z, lod)
        with net_randn(off.net, zero_noise):
            outputs[prefix + "G_w_zero_noise"] = model.decoder(w_slots, lod, 1, True)
            outputs[prefix + "G_E_x"] = model.decoder(encoded.repeat(1, slots, 1), lod, 1, True)
            outputs[prefix + "G_w_fade"] = model.decoder(w_slots, lod, 0.5, True)
        fixed = FixedNoise(noise_maps)
        with net_randn(off.net, fixed):
            outputs[prefix + "G_w_noise"] = model.decoder(w_slots, lod, 1, True)
        assert fixed.used == len(noise_maps), fixed.used
    return {k: v.detach().numpy().astype(np.float32) for k, v in outputs.items()}


def save_npz(path, arrays):
    """np.savez without the zip entries' timestamps, so that reruns give identical bytes.

    Args:
        path: the .npz file.
        arrays: name -> array.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]),
                                      allow_pickle=False)
            archive.writestr(info, buffer.getvalue())


def make_fixture(off, name, overrides, out_root, seed, logger):
    """Write one fixture directory and print its summary.

    Args:
        off: official modules.
        name: fixture name (sub-directory).
        overrides: the config.yaml contents.
        out_root: directory holding the fixture directories.
        seed: base seed of the fixture.
        logger: logger for the official modules.
    """
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    config_path = os.path.join(out_dir, "config.yaml")
    with open(config_path, "w") as f:
        f.write(f"# Official ALAE config format (defaults.py keys); fixture {name}.\n")
        yaml.dump(overrides, f, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False)
    cfg = load_config(off, config_path)

    seed_everything(seed)
    rng = np.random.RandomState(seed)
    model = build_model(off, cfg, training=True)
    model_s = build_model(off, cfg, training=False)
    model_s.eval()
    model_s.requires_grad_(False)
    auxiliary = train(off, cfg, model, model_s, rng, logger)

    perturb(model, seed + 1)
    perturb(model_s, seed + 2)
    # The saved dlatent_avg is the trained model's (train_alae.py); after a few iterations it is
    # still close to zero. Set it to the EMA mapping's mean w over a seeded batch: a value a
    # long run approaches, with all rows equal as Model.generate keeps them.
    with torch.no_grad():
        z_avg = torch.from_numpy(rng.standard_normal((256, cfg.MODEL.LATENT_SPACE_SIZE))
                                 .astype(np.float32))
        w_avg = model_s.mapping_f(z_avg)[:, 0].mean(dim=0)
        model.dlatent_avg.buff.copy_(w_avg.expand_as(model.dlatent_avg.buff))

    data = save_checkpoints(off, cfg, out_dir, checkpoint_models(model, model_s), auxiliary,
                            logger)

    lod = cfg.MODEL.LAYER_COUNT - 1
    resolution = model.decoder.layer_to_resolution[lod]
    batch = EVAL_BATCH[name]
    x = blob_images(rng, batch, cfg.MODEL.CHANNELS, resolution)
    z = rng.standard_normal((batch, cfg.MODEL.LATENT_SPACE_SIZE)).astype(np.float32)
    # Block 0 adds its first noise to the constant input, whose batch is 1, so the official
    # code draws that map as [1, 1, 4, 4] and shares it over the batch.
    noise_maps = [
        rng.standard_normal((1 if i == 0 and j == 0 else batch, 1, r, r)).astype(np.float32)
        for i, r in enumerate(model.decoder.layer_to_resolution) for j in range(2)
    ]
    outputs = reference_outputs(off, cfg, data["models"], torch.from_numpy(x),
                                torch.from_numpy(z), [torch.from_numpy(n) for n in noise_maps])
    outputs.update(x=x, z=z, **{f"noise_{i}": n for i, n in enumerate(noise_maps)})
    npz_path = os.path.join(out_dir, "outputs.npz")
    save_npz(npz_path, outputs)

    print(f"== {name}: lod {lod}, {resolution} px, {cfg.MODEL.CHANNELS} channels")
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters per network set (E, G, F, D): {params}")
    for part in ("encoder", "decoder", "mapping_f", "mapping_d"):
        print(f"  {part}: {sum(p.numel() for p in getattr(model, part).parameters())}")
    for file_name in sorted(os.listdir(out_dir)):
        print(f"  {file_name}: {os.path.getsize(os.path.join(out_dir, file_name))} bytes")
    with open(npz_path, "rb") as f:
        print(f"  outputs.npz sha256 {hashlib.sha256(f.read()).hexdigest()}")
    for key in sorted(outputs):
        value = outputs[key]
        print(f"  {key:22s} {str(list(value.shape)):18s} max|v| {np.abs(value).max():.6g}")
    tracks = auxiliary["tracker"].tracks
    losses = {k: [round(float(v), 4) for v in t.values] for k, t in tracks.items()}
    print(f"  training losses: {losses}")
    print(f"  top-level keys: {list(data)}; auxiliary: {list(data['auxiliary'])}")
    for key, state in data["models"].items():
        names = list(state)
        print(f"  models[{key!r}] {len(names)} tensors: {names[:5]}")


def main(argv=None):
    """Make every fixture.

    Args:
        argv: command-line arguments (default sys.argv[1:]).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="/tmp/alae_ref",
                        help="checkout of podgorskiy/ALAE (commit 42bcf2e)")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="directory that receives one sub-directory per fixture")
    parser.add_argument("--seed", type=int, default=1234, help="base random seed")
    args = parser.parse_args(argv)

    # One thread keeps float reductions in a fixed order, so reruns give identical bytes.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    # The 2020 official code uses overloads and call orders torch 2.x deprecates; harmless.
    warnings.filterwarnings(
        "ignore", category=UserWarning,
        message=r"(This overload of|The epoch parameter|Detected call of `lr_scheduler"
                r"|Seems like `optimizer.step\(\)` has been overridden)")
    logging.basicConfig(level=logging.WARNING)
    logger = logging.getLogger("make_fixtures")
    off = import_official(args.ref)
    assert bool(off.lreq.use_implicit_lreq), "the official default is implicit LR equalization"
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    for index, (name, overrides) in enumerate(FIXTURES.items()):
        make_fixture(off, name, overrides, args.out, args.seed + 100 * index, logger)


if __name__ == "__main__":
    main()
