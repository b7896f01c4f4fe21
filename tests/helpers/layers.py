"""Shared checks for layers and networks: the Keras contract, run the same way for each."""

import json

import keras
import numpy as np


def check_layer(layer, input_shape, expected_output_shape, expected_num_weights):
    """Builds ``layer``, calls it eagerly and symbolically, and counts its weights."""
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    eager = layer(x)
    assert tuple(eager.shape) == tuple(expected_output_shape)
    assert np.all(np.isfinite(np.asarray(eager)))
    symbolic = layer(keras.KerasTensor((None, *input_shape[1:])))
    assert tuple(symbolic.shape) == (None, *expected_output_shape[1:])
    assert len(layer.weights) == expected_num_weights
    return eager


def check_config_round_trip(obj):
    """get_config -> from_config -> get_config gives identical JSON."""
    config = obj.get_config()
    clone = obj.__class__.from_config(config)
    assert json.dumps(config, sort_keys=True) == json.dumps(clone.get_config(), sort_keys=True)
    return clone
