"""alae-tf: Adversarial Latent Autoencoders (Pidhorskyi et al., CVPR 2020) in TensorFlow/Keras 3.

The rooms of the library, from the bottom up::

    alae_tf.models     layers, the four networks per family (models/mlp, models/style), the
                       ALAE Keras model, presets and the family registry
    alae_tf.data       data sources and the input pipeline
    alae_tf.metrics    every score, asked for by name (representation, FID, PPL, LPIPS, FLOPs)
    alae_tf.official   the authors' checkpoints and configs (alae-import)
    alae_tf.trainer    a training run as a library object (what alae-train calls)
    alae_tf.runs       run directories, recorded settings and checkpoints
    alae_tf.images, alae_tf.errors, alae_tf.distribute, alae_tf.cli
                       pixels, the project's exceptions, replica maths, the apps' shared kit

The main entry points::

    from alae_tf.models import build_model, get_preset
    model = build_model(get_preset("mnist_mlp"))   # an ALAE keras.Model (StyleALAE for "style")
    model.compile()
    model.fit(dataset, ...)

    model = alae_tf.load_model("runs/mnist_mlp/model.keras")

Importing ``alae_tf`` loads nothing and changes nothing: TensorFlow and Keras load with the
first module that needs them. ``import alae_tf.models`` registers every Keras class of the
project, after which ``keras.saving.load_model`` reads this project's ``.keras`` files.
"""

__version__ = "0.1.0"


def load_model(path, **kwargs):
    """``keras.saving.load_model`` for a .keras file written by this project (``model.keras``
    of a run directory); ``kwargs`` go to Keras."""
    import keras

    import alae_tf.models  # noqa: F401  (registers the classes a .keras file names)

    return keras.saving.load_model(path, **kwargs)
