"""The StyleALAE family's registry entry: StyleGAN G and style E that grow level by level."""

from alae_tf.models.family import Family
from alae_tf.models.schedule import ProgressiveSchedule
from alae_tf.models.style.model import StyleALAE
from alae_tf.models.style.networks import StyleEncoder, StyleGenerator, num_blocks


def _networks(preset):
    image_args = (preset.resolution, preset.channels, preset.latent_dim)
    generator = StyleGenerator(*image_args, startf=preset.startf, maxf=preset.maxf,
                               name="generator")
    encoder = StyleEncoder(*image_args, startf=preset.startf, maxf=preset.maxf,
                           norm_epsilon=preset.encoder_norm_epsilon,
                           std_epsilon=preset.encoder_std_epsilon, name="encoder")
    # One w per style slot; D ends in 2 * latent units, of which one is the logit.
    return {"generator": generator, "encoder": encoder, "num_styles": generator.num_styles,
            "d_output": 2 * preset.latent_dim}


def _schedule(preset):
    return ProgressiveSchedule(
        num_levels=num_blocks(preset.resolution), epochs_per_level=preset.epochs_per_lod,
        epochs=preset.epochs, batch_sizes=preset.lod_batch_sizes or (preset.batch_size,),
        learning_rates=preset.lod_learning_rates or (preset.learning_rate,),
        lr_decay=preset.lr_decay,
    )


STYLE = Family(
    name="style",
    model_class=StyleALAE,
    networks=_networks,
    schedule=_schedule,
    model_arguments=lambda preset: {"style_mixing_prob": preset.style_mixing_prob},
    preset_fields=("startf", "maxf", "epochs_per_lod", "lod_batch_sizes", "lod_learning_rates",
                   "style_mixing_prob", "truncation_cutoff", "encoder_norm_epsilon",
                   "encoder_std_epsilon"),
    noise_inputs=True,
    style_mixing=True,
)
