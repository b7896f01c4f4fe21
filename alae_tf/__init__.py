"""alae-tf: Adversarial Latent Autoencoders (Pidhorskyi et al., CVPR 2020) in TensorFlow/Keras 3.

The main entry points::

    from alae_tf.presets import get_preset, build_model
    model = build_model(get_preset("mnist_mlp"))   # an ALAE keras.Model (StyleALAE for "style")
    model.compile()
    model.fit(dataset, ...)

    model = alae_tf.load_model("runs/mnist_mlp/model.keras")

Importing ``alae_tf`` loads nothing and changes nothing: TensorFlow and Keras load with the
first module that needs them. The modules that define layers, networks and models register
them with Keras when imported; ``load_model`` imports them all first.
"""

__version__ = "0.1.0"

# The modules whose classes a .keras file of this project can name.
_KERAS_MODULES = ("layers", "mapping", "mlp", "model", "style", "style_layers", "style_model")


def register_keras_objects():
    """Imports every module that registers classes with ``keras.saving``."""
    import importlib

    for name in _KERAS_MODULES:
        importlib.import_module(f"alae_tf.{name}")


def load_model(path, **kwargs):
    """``keras.saving.load_model`` for a .keras file written by this project (``model.keras``
    of a run directory); ``kwargs`` go to Keras."""
    import keras

    register_keras_objects()
    return keras.saving.load_model(path, **kwargs)
