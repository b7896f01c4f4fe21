"""alae-tf: Adversarial Latent Autoencoders (Pidhorskyi et al., CVPR 2020) in TensorFlow/Keras 3.

The main entry points::

    from alae_tf.presets import get_preset, build_model
    model = build_model(get_preset("mnist_mlp"))   # an ALAE keras.Model (StyleALAE for "style")
    model.compile()
    model.fit(dataset, ...)

Importing ``alae_tf`` registers every layer, network and model with Keras, so that
``keras.saving.load_model("RUN/model.keras")`` needs nothing else.
"""

# Console scripts: TensorFlow's C++ start-up lines only with --verbose (see _startup.py).
from alae_tf._startup import quiet_tensorflow_startup

quiet_tensorflow_startup()

# Imported for their registration with keras.saving (the classes a .keras file names).
from alae_tf import (  # noqa: E402, F401
    layers,
    mapping,
    mlp,
    model,
    style,
    style_layers,
    style_model,
)

__version__ = "0.1.0"
