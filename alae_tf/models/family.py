"""A model family's registry entry: everything in which MLP-ALAE and StyleALAE differ.

The library asks a family's ``Family`` record (``alae_tf.models.families.get_family``) instead
of switching on its name: how a preset becomes networks and a model, which preset fields are
its own and how they are checked, whether and how it grows, what export and sampling find in
its models, which precision it trains in by default. Each family defines its record in its own
folder (``alae_tf/models/mlp/family.py``, ``alae_tf/models/style/family.py``).
"""

import dataclasses
from collections.abc import Callable

from alae_tf.errors import ConfigError
from alae_tf.images import PixelRange
from alae_tf.models.mapping import MappingD, MappingF


def _no_check(preset):
    """Accepts every preset (a family without checks of its own)."""


def _no_arguments(preset):
    """No keyword arguments beyond the ``ALAE`` ones."""
    return {}


@dataclasses.dataclass(frozen=True)
class Family:
    """One network family: its model class and what a preset of it means.

    Args:
        name: the value of ``Preset.family`` that selects it.
        model_class: the ``ALAE`` subclass (or ``ALAE``) its presets build; owns
            ``grows`` and ``default_pixel_range``.
        networks: ``preset -> {"generator": G, "encoder": E, "num_styles": slots of w,
            "d_output": units of D's last layer}``.
        schedule: ``preset -> ProgressiveSchedule`` of a run of the preset.
        model_arguments: ``preset -> {keyword: value}``, the family's own arguments of
            ``model_class`` beyond the ``ALAE`` ones.
        preset_fields: the ``Preset`` fields that only this family reads (their defaults are
            the ``Preset`` dataclass's).
        check_preset: ``preset -> None``; raises ``ConfigError`` for values of the preset the
            family cannot build.
        noise_inputs: the generator takes per-pixel noise inputs (``noise_shapes()``).
        style_mixing: decoding accepts one w per style slot, so styles of two images mix.
        bfloat16_on_cpu: ``--precision auto`` picks ``mixed_bfloat16`` on a CPU with native
            bfloat16 arithmetic (measured to train faster with scores that hold).
    """

    name: str
    model_class: type
    networks: Callable
    schedule: Callable
    model_arguments: Callable = _no_arguments
    preset_fields: tuple = ()
    check_preset: Callable = _no_check
    noise_inputs: bool = False
    style_mixing: bool = False
    bfloat16_on_cpu: bool = False

    @property
    def progressive(self):
        """Whether its models grow level by level during training."""
        return self.model_class.grows

    @property
    def pixel_range(self):
        """The pixel range of its models when none is given (``PixelRange``)."""
        return PixelRange.of(self.model_class.default_pixel_range)

    def build_model(self, preset, seed=0):
        """The family's model, not compiled, as ``preset`` describes it.

        Raises:
            ConfigError: a preset value the family cannot build.
        """
        try:
            pixel_range = PixelRange.of(preset.pixel_range)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"preset {preset.name!r}: {e}") from None
        self.check_preset(preset)
        parts = self.networks(preset)
        latent = preset.latent_dim
        return self.model_class(
            mapping_f=MappingF(latent, preset.mapping_layers, num_styles=parts["num_styles"],
                               w_avg_decay=preset.w_avg_decay,
                               truncation_cutoff=preset.truncation_cutoff, name="mapping_f"),
            generator=parts["generator"],
            encoder=parts["encoder"],
            mapping_d=MappingD(latent, preset.d_layers, output_dim=parts["d_output"],
                               use_activations=preset.d_activations,
                               logit_index=preset.d_logit_index, name="mapping_d"),
            r1_gamma=preset.r1_gamma,
            r1_interval=preset.r1_interval,
            ema_half_life=preset.ema_half_life,
            seed=seed,
            pixel_range=pixel_range,
            name="alae",
            **self.model_arguments(preset),
        )
