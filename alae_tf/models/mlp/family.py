"""The MLP-ALAE family's registry entry: one level of detail, fully connected E and G."""

from alae_tf.errors import ConfigError
from alae_tf.models.alae import ALAE
from alae_tf.models.family import Family
from alae_tf.models.mlp.networks import MLPEncoder, MLPGenerator
from alae_tf.models.schedule import ProgressiveSchedule

# The ranges G's squashing output activations produce.
_SQUASH_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def _networks(preset):
    generator = MLPGenerator(preset.latent_dim, preset.image_shape, preset.hidden_units,
                             output_activation=preset.g_output, name="generator")
    encoder = MLPEncoder(preset.latent_dim, preset.image_shape, preset.hidden_units,
                         name="encoder")
    # One w for the whole generator; D ends in latent units, the first (d_logit_index) the logit.
    return {"generator": generator, "encoder": encoder, "num_styles": 0,
            "d_output": preset.latent_dim}


def _schedule(preset):
    return ProgressiveSchedule(num_levels=1, epochs_per_level=0, epochs=preset.epochs,
                               batch_sizes=(preset.batch_size,),
                               learning_rates=(preset.learning_rate,), lr_decay=preset.lr_decay)


def _check_preset(preset):
    squash_range = _SQUASH_RANGES.get(preset.g_output)
    if squash_range is not None and tuple(preset.pixel_range) != squash_range:
        raise ConfigError(f"g_output {preset.g_output!r} needs "
                          f"pixel_range {squash_range}, not {tuple(preset.pixel_range)}")


MLP = Family(
    name="mlp",
    model_class=ALAE,
    networks=_networks,
    schedule=_schedule,
    preset_fields=("hidden_units", "g_output"),
    check_preset=_check_preset,
    bfloat16_on_cpu=True,
)
