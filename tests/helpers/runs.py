"""A real run directory for tests: config.json and a checkpoint after a few steps (or none)."""

import os

import keras
import numpy as np
import tensorflow as tf

from alae_tf.models.presets import build_model, get_preset
from alae_tf.runs import RunCheckpoint, RunSettings, record_config


def make_run(run_dir, preset_name, steps=2, **overrides):
    """A real run directory: config.json and a checkpoint after ``steps`` training steps (0: the
    initial weights, with the optimizers' variables built, in a second instead of a traced
    training step)."""
    preset = get_preset(preset_name, epochs=1, **overrides)
    keras.utils.set_random_seed(0)
    model = build_model(preset, seed=0)
    model.compile(learning_rate=preset.learning_rate)
    images = np.random.default_rng(0).uniform(*preset.pixel_range,
                                              size=(8, *preset.image_shape)).astype("float32")
    if steps:
        model.fit(tf.data.Dataset.from_tensors(images).repeat(), epochs=1,
                  steps_per_epoch=steps, verbose=0)
    os.makedirs(run_dir, exist_ok=True)
    record_config(RunSettings(preset, run_dir=str(run_dir), steps_per_epoch=max(steps, 1)))
    RunCheckpoint(model, str(run_dir)).save(1)
    return run_dir
