"""The registry of model families: one ``Family`` record per family, asked by name or model.

Adding a family is one folder under ``alae_tf/models/`` (its networks, its model class, its
``Family`` record) and one entry in ``FAMILIES`` (docs/architecture.md).
"""

from alae_tf.errors import ConfigError
from alae_tf.models.mlp.family import MLP
from alae_tf.models.style.family import STYLE

FAMILIES = {family.name: family for family in (MLP, STYLE)}


def get_family(name):
    """The ``Family`` called ``name`` (a ``Preset.family`` value).

    Raises:
        ConfigError: no family has that name (the message lists the known ones).
    """
    if name not in FAMILIES:
        raise ConfigError(f"unknown network family {name!r}; the families are "
                          f"{', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def family_of(model):
    """The ``Family`` whose model class ``model`` is (or is a subclass of)."""
    by_class = {family.model_class: family for family in FAMILIES.values()}
    for cls in type(model).__mro__:
        if cls in by_class:
            return by_class[cls]
    raise ConfigError(f"{type(model).__name__} is the model of no registered family")
