"""Small models built in a test, for tests that need one of their own."""

import keras


def tiny_model(seed=0, image_shape=(8, 8, 1), latent_dim=8, **alae_kwargs):
    """A small MLP-ALAE (8x8 images, 16-unit hidden layers) for fast tests."""
    from alae_tf.models.alae import ALAE
    from alae_tf.models.mapping import MappingD, MappingF
    from alae_tf.models.mlp.networks import MLPEncoder, MLPGenerator

    keras.utils.set_random_seed(seed)
    return ALAE(
        mapping_f=MappingF(latent_dim, 2, name="mapping_f"),
        generator=MLPGenerator(latent_dim, image_shape, (16, 16), name="generator"),
        encoder=MLPEncoder(latent_dim, image_shape, (16, 16), name="encoder"),
        mapping_d=MappingD(latent_dim, 3, name="mapping_d"),
        seed=seed,
        **alae_kwargs,
    )
