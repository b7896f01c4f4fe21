"""The authors' YAML configs (podgorskiy/ALAE configs/*.yaml), read without their code.

A config file overrides the defaults of the reference's ``defaults.py`` (a yacs tree); the
values below are those defaults for the keys that shape the networks and the training
schedule. The file is parsed with PyYAML's safe loader, which builds only plain data.
"""

import dataclasses
import math
import os
import re

from alae_tf.errors import ConfigError

# podgorskiy/ALAE defaults.py, the keys this project reads. (TRUNCATIOM is the reference's
# spelling.)
OFFICIAL_DEFAULTS = {
    "NAME": "",
    "PPL_CELEBA_ADJUSTMENT": False,
    "MODEL": {
        "LAYER_COUNT": 6, "START_CHANNEL_COUNT": 64, "MAX_CHANNEL_COUNT": 512,
        "LATENT_SPACE_SIZE": 256, "DLATENT_AVG_BETA": 0.995, "TRUNCATIOM_PSI": 0.7,
        "TRUNCATIOM_CUTOFF": 8, "STYLE_MIXING_PROB": 0.9, "MAPPING_LAYERS": 5, "CHANNELS": 3,
        "GENERATOR": "GeneratorDefault", "ENCODER": "EncoderDefault", "MAPPING_D": "MappingD",
        "MAPPING_F": "MappingF", "Z_REGRESSION": False,
        # The names of D and F before the reference's rename of December 2020 (commit
        # d43e061): configs of that time use these keys, for the same networks.
        "MAPPING_TO_LATENT": "MappingToLatent", "MAPPING_FROM_LATENT": "MappingFromLatent",
    },
    "TRAIN": {
        "EPOCHS_PER_LOD": 15, "BASE_LEARNING_RATE": 0.0015, "ADAM_BETA_0": 0.0,
        "ADAM_BETA_1": 0.99, "TRAIN_EPOCHS": 110,
        "LOD_2_BATCH_8GPU": [512, 256, 128, 64, 32, 32], "LEARNING_RATES": [0.002],
    },
    "DATASET": {"FLIP_IMAGES": True},
}
# The network variants this project implements; the reference registers others (ablations,
# the MNIST fully connected networks of configs/mnist_fc.yaml) that it does not.
SUPPORTED_VARIANTS = {"GENERATOR": "GeneratorDefault", "ENCODER": "EncoderDefault",
                      "MAPPING_D": "MappingD", "MAPPING_F": "MappingF",
                      "MAPPING_TO_LATENT": "MappingToLatent",
                      "MAPPING_FROM_LATENT": "MappingFromLatent"}


@dataclasses.dataclass(frozen=True)
class OfficialConfig:
    """The settings of an official StyleALAE config that an import needs.

    Args:
        name: the config's NAME, else the file's stem.
        layer_count: MODEL.LAYER_COUNT, blocks of G and E (resolution 2^(layer_count + 1)).
        startf: MODEL.START_CHANNEL_COUNT.
        maxf: MODEL.MAX_CHANNEL_COUNT.
        latent_dim: MODEL.LATENT_SPACE_SIZE.
        mapping_layers: MODEL.MAPPING_LAYERS (F's depth; D always has 3 layers).
        channels: MODEL.CHANNELS.
        w_avg_decay: MODEL.DLATENT_AVG_BETA.
        truncation_psi: MODEL.TRUNCATIOM_PSI, what the reference samples with.
        truncation_cutoff: MODEL.TRUNCATIOM_CUTOFF.
        style_mixing_prob: MODEL.STYLE_MIXING_PROB.
        z_regression: MODEL.Z_REGRESSION (the latent loss against z instead of w).
        flip: DATASET.FLIP_IMAGES.
        epochs_per_lod: TRAIN.EPOCHS_PER_LOD.
        train_epochs: TRAIN.TRAIN_EPOCHS.
        learning_rate: TRAIN.BASE_LEARNING_RATE.
        lod_learning_rates: TRAIN.LEARNING_RATES, per level.
        lod_batch_sizes: TRAIN.LOD_2_BATCH_8GPU, per level (the published runs' 8 GPUs).
        adam_betas: (TRAIN.ADAM_BETA_0, TRAIN.ADAM_BETA_1).
        ppl_celeba_crop: PPL_CELEBA_ADJUSTMENT, the tighter face crop of the reference's PPL.
    """

    name: str
    layer_count: int
    startf: int
    maxf: int
    latent_dim: int
    mapping_layers: int
    channels: int
    w_avg_decay: float
    truncation_psi: float
    truncation_cutoff: int
    style_mixing_prob: float
    z_regression: bool
    flip: bool
    epochs_per_lod: int
    train_epochs: int
    learning_rate: float
    lod_learning_rates: tuple
    lod_batch_sizes: tuple
    adam_betas: tuple
    ppl_celeba_crop: bool = False

    @property
    def resolution(self):
        return 2 ** (self.layer_count + 1)

    @property
    def num_styles(self):
        return 2 * self.layer_count


def _merged(defaults, given, where, path):
    """``defaults`` overridden by ``given`` (nested dicts), keeping only known keys."""
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: {where or 'the file'} must be a mapping of keys, "
                          "not an official ALAE config")
    merged = dict(defaults)
    for key, value in given.items():
        if key in defaults and isinstance(defaults[key], dict):
            merged[key] = _merged(defaults[key], value, f"{where}{key}.", path)
        elif key in defaults:
            merged[key] = value
    return merged


def _typed(path, section, key, value, kind, positive=True):
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int | float) and not isinstance(value, bool) if kind is float else
          isinstance(value, kind) and not isinstance(value, bool))
    if ok and kind in (int, float):
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        words = {int: "a positive whole number", float: "a number",
                 bool: "true or false", str: "a string"}[kind]
        where = f"{section}.{key}" if section else key
        raise ConfigError(f"{path}: {where} must be {words}, got {value!r}")
    return kind(value)


def _numbers(path, section, key, values, kind):
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(f"{path}: {section}.{key} must be a non-empty list, got {values!r}")
    return tuple(_typed(path, section, key, v, kind) for v in values)


def read_official_config(path):
    """Reads an official ALAE YAML config over the reference's defaults.

    Raises:
        ConfigError: unreadable YAML, a wrong type, or a network variant this project does
            not implement (the message names the key).
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            given = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config {path!r} ({e.strerror or e})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    cfg = _merged(OFFICIAL_DEFAULTS, {} if given is None else given, "", path)
    model, train = cfg["MODEL"], cfg["TRAIN"]
    for key, supported in SUPPORTED_VARIANTS.items():
        if model[key] != supported:
            raise ConfigError(f"{path}: MODEL.{key} is {model[key]!r}; this project imports "
                              f"the StyleALAE networks of the published models ({supported})")
    stem = os.path.splitext(os.path.basename(path))[0]
    name = str(cfg["NAME"] or stem)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "official"

    def m(key, kind=int, positive=True):
        return _typed(path, "MODEL", key, model[key], kind, positive)

    def t(key, kind=int, positive=True):
        return _typed(path, "TRAIN", key, train[key], kind, positive)

    config = OfficialConfig(
        name=name, layer_count=m("LAYER_COUNT"), startf=m("START_CHANNEL_COUNT"),
        maxf=m("MAX_CHANNEL_COUNT"), latent_dim=m("LATENT_SPACE_SIZE"),
        mapping_layers=m("MAPPING_LAYERS"), channels=m("CHANNELS"),
        w_avg_decay=m("DLATENT_AVG_BETA", float), truncation_psi=m("TRUNCATIOM_PSI", float),
        truncation_cutoff=m("TRUNCATIOM_CUTOFF", int, positive=False),
        style_mixing_prob=m("STYLE_MIXING_PROB", float, positive=False),
        z_regression=m("Z_REGRESSION", bool),
        flip=_typed(path, "DATASET", "FLIP_IMAGES", cfg["DATASET"]["FLIP_IMAGES"], bool),
        epochs_per_lod=t("EPOCHS_PER_LOD"), train_epochs=t("TRAIN_EPOCHS"),
        learning_rate=t("BASE_LEARNING_RATE", float),
        lod_learning_rates=_numbers(path, "TRAIN", "LEARNING_RATES", train["LEARNING_RATES"],
                                    float),
        lod_batch_sizes=_numbers(path, "TRAIN", "LOD_2_BATCH_8GPU", train["LOD_2_BATCH_8GPU"],
                                 int),
        adam_betas=(t("ADAM_BETA_0", float, positive=False),
                    t("ADAM_BETA_1", float, positive=False)),
        ppl_celeba_crop=_typed(path, "", "PPL_CELEBA_ADJUSTMENT", cfg["PPL_CELEBA_ADJUSTMENT"],
                               bool),
    )
    if config.channels not in (1, 3):
        raise ConfigError(f"{path}: MODEL.CHANNELS is {config.channels}; images here have 1 or "
                          "3 channels")
    if not 2 <= config.layer_count <= 10:
        raise ConfigError(f"{path}: MODEL.LAYER_COUNT is {config.layer_count}; expected 2 to 10 "
                          "(8 to 2048 px)")
    return config


def preset_from_config(config, dataset):
    """The ``Preset`` of an imported model: the config's networks and schedule, and the
    reference's numerics (E's instance-norm epsilons, D's logit column).

    Args:
        config: an ``OfficialConfig``.
        dataset: the data source a resumed (fine-tuning) run trains on.
    """
    from alae_tf.models.presets import Preset

    num_levels = config.layer_count
    return Preset(
        name=f"official_{config.name}", family="style", resolution=config.resolution,
        channels=config.channels, latent_dim=config.latent_dim,
        mapping_layers=config.mapping_layers, pixel_range=(-1.0, 1.0), dataset=dataset,
        flip=config.flip, startf=config.startf, maxf=config.maxf,
        epochs_per_lod=config.epochs_per_lod,
        # The run is complete at the last level, its fade-in over.
        epochs=max(config.train_epochs, num_levels * config.epochs_per_lod),
        lod_batch_sizes=config.lod_batch_sizes, lod_learning_rates=config.lod_learning_rates,
        batch_size=config.lod_batch_sizes[-1], learning_rate=config.learning_rate,
        style_mixing_prob=config.style_mixing_prob, adam_betas=config.adam_betas,
        truncation_cutoff=config.truncation_cutoff, w_avg_decay=config.w_avg_decay,
        d_logit_index=config.latent_dim, encoder_norm_epsilon=1e-5, encoder_std_epsilon=0.0,
        # The reference's metrics/ppl.py crops every model's images, the CelebA ones tighter.
        ppl_crop="celeba" if config.ppl_celeba_crop else "face",
        face_alignment=face_alignment_of(config.name),
    )


def face_alignment_of(name):
    """The photo crop of an imported model, from its config's name: "ffhq" for the FFHQ and
    CelebA-HQ models (CelebA-HQ's faces are FFHQ-style crops), "celeba" for CelebA, else
    "none" (bedroom, and anything unknown)."""
    name = name.lower().replace("_", "-")
    if "ffhq" in name or "celeba-hq" in name or "celebahq" in name:
        return "ffhq"
    return "celeba" if "celeba" in name else "none"
