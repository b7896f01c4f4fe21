"""Named configurations: the reference experiments of the paper, as frozen dataclasses."""

import dataclasses

from alae_tf.mapping import MappingD, MappingF
from alae_tf.mlp import MLPEncoder, MLPGenerator
from alae_tf.model import ALAE


@dataclasses.dataclass(frozen=True)
class Preset:
    """Everything that defines an ALAE experiment: networks, data and optimisation.

    Args:
        name: the preset's name.
        family: network family ("mlp").
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
        batch_size: global batch size.
        learning_rate: learning rate of both Adam optimizers.
        r1_gamma: R1 weight.
        epochs: default training length, in epochs of the data set.
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
    batch_size: int = 128
    learning_rate: float = 0.002
    r1_gamma: float = 10.0
    epochs: int = 100

    @property
    def image_shape(self):
        return (self.resolution, self.resolution, self.channels)

    def to_dict(self):
        return dataclasses.asdict(self)


PRESETS = {
    # The paper's MNIST MLP experiment (branch mnist_ref of the reference code), on the
    # embedded 8k training digits. The epoch count is this project's default budget: about
    # ten minutes on two CPU cores (see the README), not the reference's.
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
}


def get_preset(name, **overrides):
    """Returns the named preset, with fields replaced by ``overrides``.

    Raises:
        KeyError: unknown preset name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)


def build_model(preset, seed=0):
    """Builds the ``ALAE`` model that ``preset`` describes (not compiled)."""
    if preset.family != "mlp":
        raise ValueError(f"preset {preset.name!r}: unknown network family {preset.family!r}")
    return ALAE(
        mapping_f=MappingF(preset.latent_dim, preset.mapping_layers, name="mapping_f"),
        generator=MLPGenerator(
            preset.latent_dim, preset.image_shape, preset.hidden_units, name="generator"
        ),
        encoder=MLPEncoder(
            preset.latent_dim, preset.image_shape, preset.hidden_units, name="encoder"
        ),
        mapping_d=MappingD(
            preset.latent_dim, preset.d_layers, use_activations=preset.d_activations,
            name="mapping_d",
        ),
        r1_gamma=preset.r1_gamma,
        seed=seed,
        name="alae",
    )
