"""Named configurations: the reference experiments of the paper, as frozen dataclasses."""

import dataclasses

from alae_tf.data import DEFAULT_MAX_IMAGE_PIXELS
from alae_tf.errors import ConfigError
from alae_tf.models.families import FAMILIES, get_family


@dataclasses.dataclass(frozen=True)
class Preset:
    """Everything that defines an ALAE experiment: networks, data and optimisation.

    The fields are flat, as a run directory records them; those that one family alone reads
    are listed in its ``Family.preset_fields`` (MLP-ALAE: hidden_units, g_output; StyleALAE:
    the channel, level-of-detail, mixing, truncation and encoder-epsilon fields).

    Args:
        name: the preset's name.
        family: network family, a name in ``alae_tf.models.families.FAMILIES``: "mlp"
            (MLP-ALAE) or "style" (StyleALAE).
        resolution: image side in pixels.
        channels: image channels.
        latent_dim: size of z and w.
        mapping_layers: depth of F.
        hidden_units: hidden widths of the MLP E and G.
        d_layers: depth of D.
        d_activations: LeakyReLU between D's layers (off in the reference).
        pixel_range: the range real images are mapped to.
        dataset: default data source (see ``alae_tf.data.make_dataset``).
        flip: random horizontal flips of real images.
        translate: random shifts of real images by up to this many pixels in x and y (the
            border filled with the background, pixel_range's low end); 0: none.
        max_image_pixels: folder images with more pixels than this are skipped.
        batch_size: global batch size.
        learning_rate: learning rate of both Adam optimizers.
        r1_gamma: R1 weight.
        r1_interval: lazy R1: the penalty on every r1_interval-th step only, weighted by
            r1_interval; 1 (the reference) on every step.
        epochs: default training length, in epochs of the data set.
        startf: StyleALAE channels at full resolution (doubling toward 4x4).
        maxf: StyleALAE channel cap.
        epochs_per_lod: StyleALAE epochs per level of detail (the first half fades in).
        lod_batch_sizes: StyleALAE global batch size per level (4, 8, 16, ... px); overrides
            ``batch_size``. Padded with its last value.
        lod_learning_rates: StyleALAE learning rate per level; overrides ``learning_rate``.
        lr_decay: "none" (the reference), "cosine" or "linear": the learning rate of every
            epoch is its level's times a factor falling from 1 toward 0 over ``epochs``.
        style_mixing_prob: StyleALAE style-mixing probability.
        adam_betas: (beta_1, beta_2) of both Adam optimizers; the reference's (0, 0.99).
        ema_half_life: half-life of the EMA networks, in images.
        g_output: MLP-ALAE G's output activation: "linear" (the reference), "sigmoid" (for
            pixel_range (0, 1)) or "tanh" (for (-1, 1)).
        truncation_cutoff: StyleALAE style slots that truncation pulls toward the average w.
        w_avg_decay: decay of F's running average w per generated batch.
        d_logit_index: the column of D's output that is the logit (``MappingD``).
        encoder_norm_epsilon: epsilon of StyleALAE E's instance norms.
        encoder_std_epsilon: epsilon of StyleALAE E's std statistics. The reference uses
            1e-5 and 0 and reads D's column ``latent_dim`` (imported models set these,
            ``alae-import``); this project's presets keep 1e-8, 1e-8 and column 0
            (docs/differences.md).
        ppl_crop: the part of a generated image PPL compares: "" (the whole image, or the
            crop ``alae_tf.metrics.generative.FACE_CROPS`` gives the preset's name), "face" or
            "celeba" (the reference's two crops, metrics/ppl.py).
        face_alignment: how a photo is cropped for the model (``alae_tf.faces.align``):
            "ffhq" (the FFHQ quad: FFHQ and CelebA-HQ models), "celeba" (the img_align_celeba
            crop: the CelebA 128 model) or "none" (the centre square).
    """

    name: str
    family: str
    resolution: int
    channels: int
    latent_dim: int
    mapping_layers: int
    hidden_units: tuple = (1024, 1024)
    d_layers: int = 3
    d_activations: bool = False
    pixel_range: tuple = (0.0, 1.0)
    dataset: str = "mnist"
    flip: bool = False
    translate: int = 0
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    batch_size: int = 128
    learning_rate: float = 0.002
    r1_gamma: float = 10.0
    r1_interval: int = 1
    epochs: int = 100
    startf: int = 32
    maxf: int = 256
    epochs_per_lod: int = 0
    lod_batch_sizes: tuple = ()
    lod_learning_rates: tuple = ()
    lr_decay: str = "none"
    style_mixing_prob: float = 0.9
    adam_betas: tuple = (0.0, 0.99)
    ema_half_life: float = 10_000.0
    g_output: str = "linear"
    truncation_cutoff: int = 8
    w_avg_decay: float = 0.995
    d_logit_index: int = 0
    encoder_norm_epsilon: float = 1e-8
    encoder_std_epsilon: float = 1e-8
    ppl_crop: str = ""
    face_alignment: str = "none"

    @property
    def image_shape(self):
        return (self.resolution, self.resolution, self.channels)

    @property
    def progressive(self):
        """Whether the family's networks grow level by level."""
        return get_family(self.family).progressive

    @property
    def schedule(self):
        """The run's ``ProgressiveSchedule``, as the family lays it out (one level for an
        MLP-ALAE)."""
        return get_family(self.family).schedule(self)

    def to_dict(self):
        return dataclasses.asdict(self)


PRESETS = {
    # The paper's MNIST MLP experiment (branch mnist_ref of the reference code), on the
    # embedded 8k training digits. The epoch count is this project's default budget, sized
    # for a two-core CPU (its training time: docs/performance.md), not the reference's.
    "mnist_mlp": Preset(
        name="mnist_mlp",
        family="mlp",
        resolution=28,
        channels=1,
        latent_dim=50,
        mapping_layers=6,
        hidden_units=(1024, 1024),
        batch_size=128,
        learning_rate=0.002,
        r1_gamma=10.0,
        epochs=100,
    ),
    # StyleALAE presets (paper section 5; podgorskiy/ALAE configs/*.yaml and lod_driver.py).
    # Batch sizes per level are the reference's 8-GPU ones for the face/scene presets;
    # learning rates as configured.
    "mnist_style": Preset(
        name="mnist_style", family="style", resolution=32, channels=1, latent_dim=32,
        mapping_layers=4, pixel_range=(-1.0, 1.0), startf=64, maxf=256, epochs_per_lod=10,
        epochs=60, lod_batch_sizes=(128, 128, 128, 64), lod_learning_rates=(0.0015,),
        batch_size=64, learning_rate=0.0015,
    ),
    # This project's narrow MNIST StyleALAE for CPUs: same structure, a quarter of the
    # channels, and a shorter schedule sized for two cores (its training time:
    # docs/performance.md).
    "mnist_style_small": Preset(
        name="mnist_style_small", family="style", resolution=32, channels=1, latent_dim=32,
        mapping_layers=4, pixel_range=(-1.0, 1.0), startf=16, maxf=64, epochs_per_lod=4,
        epochs=20, lod_batch_sizes=(64, 64, 64, 64), lod_learning_rates=(0.0015,),
        batch_size=64, learning_rate=0.0015,
    ),
    "celeba128": Preset(
        name="celeba128", family="style",
        face_alignment="celeba", resolution=128, channels=3, latent_dim=256,
        mapping_layers=8, pixel_range=(-1.0, 1.0), flip=True, dataset="tfds:celeb_a",
        startf=64, maxf=256, epochs_per_lod=6, epochs=80,
        lod_batch_sizes=(512, 256, 128, 64, 32, 32), lod_learning_rates=(0.0015,),
        batch_size=32, learning_rate=0.0015,
    ),
    "celeba_hq256": Preset(
        name="celeba_hq256", family="style",
        face_alignment="ffhq", resolution=256, channels=3, latent_dim=512,
        mapping_layers=8, pixel_range=(-1.0, 1.0), flip=True, dataset="folder:data/celeba_hq256",
        startf=64, maxf=512, epochs_per_lod=30, epochs=280,
        lod_batch_sizes=(512, 256, 128, 64, 32, 32, 32), lod_learning_rates=(0.0015,),
        batch_size=32, learning_rate=0.0015,
    ),
    "bedroom256": Preset(
        name="bedroom256", family="style", resolution=256, channels=3, latent_dim=512,
        mapping_layers=8, pixel_range=(-1.0, 1.0), flip=True, dataset="folder:data/lsun_bedroom",
        startf=32, maxf=512, epochs_per_lod=2, epochs=112,
        lod_batch_sizes=(512, 256, 128, 64, 32, 32, 32),
        lod_learning_rates=(0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002),
        batch_size=32, learning_rate=0.0015,
    ),
    "ffhq1024": Preset(
        name="ffhq1024", family="style",
        face_alignment="ffhq", resolution=1024, channels=3, latent_dim=512,
        mapping_layers=8, pixel_range=(-1.0, 1.0), flip=True, dataset="folder:data/ffhq",
        startf=16, maxf=512, epochs_per_lod=16, epochs=300,
        lod_batch_sizes=(512, 256, 128, 64, 32, 32, 32, 32, 32),
        lod_learning_rates=(0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002, 0.003,
                            0.003),
        batch_size=32, learning_rate=0.0015,
    ),
}
# This project's faster MNIST recipe (benchmarks/ablation.py; docs/recipes.md): the
# reference networks, G's output through a sigmoid into the data range [0, 1], and twice the
# learning rate; 150 epochs, which bfloat16 (alae-train's default precision on CPUs with
# native bfloat16) trains in mnist_mlp's time budget (docs/performance.md). mnist_mlp stays
# the paper's setting.
PRESETS["mnist_mlp_fast"] = dataclasses.replace(
    PRESETS["mnist_mlp"], name="mnist_mlp_fast", learning_rate=0.004, g_output="sigmoid",
    epochs=150,
)


def get_preset(name, **overrides):
    """Returns the named preset, with fields replaced by ``overrides``.

    Raises:
        ConfigError: unknown preset name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)


def build_model(preset, seed=0):
    """Builds the model of ``preset``'s family (``ALAE`` for "mlp", ``StyleALAE`` for
    "style"), not compiled.

    Raises:
        ConfigError: an unknown family, or a preset value the family cannot build.
    """
    if preset.family not in FAMILIES:
        raise ConfigError(f"preset {preset.name!r}: unknown network family {preset.family!r}")
    return FAMILIES[preset.family].build_model(preset, seed)
