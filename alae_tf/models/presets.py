"""Named configurations: the reference experiments of the paper, as frozen dataclasses."""

import dataclasses

from alae_tf.data import DEFAULT_MAX_IMAGE_PIXELS
from alae_tf.models.alae import ALAE
from alae_tf.models.mapping import MappingD, MappingF
from alae_tf.models.mlp.networks import MLPEncoder, MLPGenerator
from alae_tf.models.schedule import ProgressiveSchedule
from alae_tf.models.style.model import StyleALAE
from alae_tf.models.style.networks import StyleEncoder, StyleGenerator, num_blocks


@dataclasses.dataclass(frozen=True)
class Preset:
    """Everything that defines an ALAE experiment: networks, data and optimisation.

    Args:
        name: the preset's name.
        family: network family: "mlp" (MLP-ALAE) or "style" (StyleALAE).
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

    @property
    def image_shape(self):
        return (self.resolution, self.resolution, self.channels)

    @property
    def progressive(self):
        return self.family == "style"

    @property
    def schedule(self):
        """The run's ``ProgressiveSchedule`` (one level for an MLP-ALAE)."""
        if not self.progressive:
            return ProgressiveSchedule(num_levels=1, epochs_per_level=0, epochs=self.epochs,
                                       batch_sizes=(self.batch_size,),
                                       learning_rates=(self.learning_rate,),
                                       lr_decay=self.lr_decay)
        return ProgressiveSchedule(
            num_levels=num_blocks(self.resolution), epochs_per_level=self.epochs_per_lod,
            epochs=self.epochs, batch_sizes=self.lod_batch_sizes or (self.batch_size,),
            learning_rates=self.lod_learning_rates or (self.learning_rate,),
            lr_decay=self.lr_decay,
        )

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
        name="celeba128", family="style", resolution=128, channels=3, latent_dim=256,
        mapping_layers=8, pixel_range=(-1.0, 1.0), flip=True, dataset="tfds:celeb_a",
        startf=64, maxf=256, epochs_per_lod=6, epochs=80,
        lod_batch_sizes=(512, 256, 128, 64, 32, 32), lod_learning_rates=(0.0015,),
        batch_size=32, learning_rate=0.0015,
    ),
    "celeba_hq256": Preset(
        name="celeba_hq256", family="style", resolution=256, channels=3, latent_dim=512,
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
        name="ffhq1024", family="style", resolution=1024, channels=3, latent_dim=512,
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
        KeyError: unknown preset name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)


def build_model(preset, seed=0):
    """Builds the ALAE (``mlp``) or StyleALAE (``style``) model that ``preset`` describes.

    The model is not compiled.
    """
    latent = preset.latent_dim
    if preset.family == "style":
        image_args = (preset.resolution, preset.channels, latent)
        generator = StyleGenerator(*image_args, startf=preset.startf, maxf=preset.maxf,
                                   name="generator")
        encoder = StyleEncoder(*image_args, startf=preset.startf, maxf=preset.maxf,
                               norm_epsilon=preset.encoder_norm_epsilon,
                               std_epsilon=preset.encoder_std_epsilon, name="encoder")
        # StyleALAE's D ends in 2 * latent units, of which one is the logit.
        d_output, model_class, num_styles = 2 * latent, StyleALAE, generator.num_styles
        extra = {"style_mixing_prob": preset.style_mixing_prob}
    elif preset.family == "mlp":
        squash_range = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(preset.g_output)
        if squash_range is not None and tuple(preset.pixel_range) != squash_range:
            raise ValueError(f"g_output {preset.g_output!r} needs "
                             f"pixel_range {squash_range}, not {tuple(preset.pixel_range)}")
        generator = MLPGenerator(latent, preset.image_shape, preset.hidden_units,
                                 output_activation=preset.g_output, name="generator")
        encoder = MLPEncoder(latent, preset.image_shape, preset.hidden_units, name="encoder")
        d_output, model_class, num_styles, extra = latent, ALAE, 0, {}
    else:
        raise ValueError(f"preset {preset.name!r}: unknown network family {preset.family!r}")
    return model_class(
        mapping_f=MappingF(latent, preset.mapping_layers, num_styles=num_styles,
                           w_avg_decay=preset.w_avg_decay,
                           truncation_cutoff=preset.truncation_cutoff, name="mapping_f"),
        generator=generator,
        encoder=encoder,
        mapping_d=MappingD(latent, preset.d_layers, output_dim=d_output,
                           use_activations=preset.d_activations,
                           logit_index=preset.d_logit_index, name="mapping_d"),
        r1_gamma=preset.r1_gamma,
        r1_interval=preset.r1_interval,
        ema_half_life=preset.ema_half_life,
        seed=seed,
        name="alae",
        **extra,
    )
