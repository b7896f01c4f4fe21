"""Test session set-up: quiet TF logs, and two logical CPU devices for tf.distribute tests.

Logical devices must be configured before TensorFlow initialises its runtime, so this runs at
import time, before any test module touches TensorFlow.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Folder image checks are cached (alae_tf.data); tests and the CLIs they start keep theirs
# out of the user's ~/.cache.
os.environ["ALAE_TF_CACHE_DIR"] = tempfile.mkdtemp(prefix="alae_tf_cache_")
atexit.register(shutil.rmtree, os.environ["ALAE_TF_CACHE_DIR"], ignore_errors=True)

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# The console scripts of the environment under test (the venv running pytest).
BIN = Path(sys.executable).parent

# Session-scoped runs and exports shared across test files.
pytest_plugins = ["shared_fixtures"]

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


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


@pytest.fixture
def make_tiny_model():
    return tiny_model


@pytest.fixture(scope="session")
def two_replica_strategy():
    """One MirroredStrategy over the two logical CPUs, shared by the whole session.

    A second MirroredStrategy in the same process reuses collective instance keys and aborts
    with a shape mismatch, so every test shares this one.
    """
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy
