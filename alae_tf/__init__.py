"""alae-tf: Adversarial Latent Autoencoders (Pidhorskyi et al., CVPR 2020) in TensorFlow/Keras 3.

The main entry points::

    from alae_tf.presets import get_preset, build_model
    model = build_model(get_preset("mnist_mlp"))   # an ALAE keras.Model
    model.compile()
    model.fit(dataset, ...)
"""

__version__ = "0.1.0"
