"""The models room: primitive layers, the four networks of each family, the ALAE Keras model,
the named presets and the family registry.

Importing this package registers every Keras class of the project with ``keras.saving``, so
``keras.saving.load_model("model.keras")`` reads a run's model after ``import alae_tf.models``:
the registry of families imports each family's folder, whose modules register its classes.
"""

from alae_tf.models.alae import ALAE
from alae_tf.models.families import FAMILIES, family_of, get_family
from alae_tf.models.presets import PRESETS, Preset, build_model, get_preset
from alae_tf.models.style.model import StyleALAE

__all__ = ["ALAE", "FAMILIES", "PRESETS", "Preset", "StyleALAE", "build_model", "family_of",
           "get_family", "get_preset"]
