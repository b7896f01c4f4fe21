"""Primitive layers and the MLP-ALAE networks: Keras contract, shapes, the paper's details."""

import math

import keras
import numpy as np
import pytest
from helpers.layers import check_config_round_trip, check_layer

from alae_tf.models.layers import EqualizedDense, PixelNorm
from alae_tf.models.mapping import MappingD, MappingF
from alae_tf.models.mlp.networks import MLPEncoder, MLPGenerator


def test_equalized_dense_contract_and_runtime_scale():
    layer = EqualizedDense(5, gain=2.0, lr_mul=0.1, name="eq")
    out = check_layer(layer, (3, 8), (3, 5), expected_num_weights=2)
    layer.bias.assign(np.arange(5, dtype="float32"))
    x = np.random.default_rng(1).normal(size=(3, 8)).astype("float32")
    expected = x @ (layer.kernel.numpy() * 2.0 * 0.1 / math.sqrt(8)) + np.arange(5) * 0.1
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)
    assert out.shape == (3, 5)
    check_config_round_trip(layer)


def test_equalized_dense_stores_weights_of_scale_one_over_lr_mul():
    keras.utils.set_random_seed(0)
    layer = EqualizedDense(256, lr_mul=0.1)
    layer.build((None, 256))
    assert abs(np.std(layer.kernel.numpy()) - 10.0) < 0.2
    assert np.all(layer.bias.numpy() == 0)
    # The run-time weight has He scale gain / sqrt(fan_in), whatever lr_mul is.
    effective = layer.kernel.numpy() * layer.weight_scale
    assert abs(np.std(effective) - math.sqrt(2 / 256)) < 0.003


def test_pixel_norm_gives_unit_rms_features():
    layer = PixelNorm()
    out = check_layer(layer, (4, 6), (4, 6), expected_num_weights=0)
    np.testing.assert_allclose(np.sqrt(np.mean(np.square(out), axis=-1)), 1.0, rtol=1e-5)
    check_config_round_trip(layer)


@pytest.mark.parametrize(
    "network, input_shape, output_shape, num_weights",
    [
        (MappingF(8, 3), (2, 8), (2, 8), 7),  # 3 x (kernel, bias) and the average w
        (MappingF(8, 3, num_styles=4), (2, 8), (2, 4, 8), 7),
        (MappingD(8, 3, output_dim=16), (2, 8), (2,), 6),
        (MappingD(8, 3, use_activations=True), (2, 8), (2,), 6),
        (MLPEncoder(8, (8, 8, 1), (16, 16)), (2, 8, 8, 1), (2, 8), 6),
        (MLPGenerator(8, (8, 8, 1), (16, 16)), (2, 8), (2, 8, 8, 1), 6),
    ],
)
def test_networks_follow_the_keras_contract(network, input_shape, output_shape, num_weights):
    check_layer(network, input_shape, output_shape, num_weights)
    clone = check_config_round_trip(network)
    clone.build()
    clone.set_weights(network.get_weights())
    x = np.random.default_rng(2).normal(size=input_shape).astype("float32")
    np.testing.assert_array_equal(network(x), clone(x))


def test_reference_mnist_network_sizes():
    # Paper section 6.1; podgorskiy/ALAE branch mnist_ref, net.py: E 784-1024-1024-50,
    # G 50-1024-1024-784, F 6 x 50-50, D 3 x 50-50.
    encoder, generator = MLPEncoder(50), MLPGenerator(50)
    mapping_f, mapping_d = MappingF(50, 6), MappingD(50, 3)
    for net in (encoder, generator, mapping_f, mapping_d):
        net.build()
    assert encoder.count_params() == 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 50 + 50
    assert generator.count_params() == 50 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 784 + 784
    assert mapping_f.count_params() == 6 * (50 * 50 + 50) + 50  # and the average w
    assert sum(np.prod(v.shape) for v in mapping_f.trainable_weights) == 6 * (50 * 50 + 50)
    assert mapping_d.count_params() == 3 * (50 * 50 + 50)
    assert encoder.features(np.zeros((1, 28, 28, 1), "float32")).shape == (1, 1024)


def test_discriminator_without_activations_is_affine_in_w():
    d = MappingD(4, 3)
    d.build()
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(1, 4)).astype("float32"), rng.normal(size=(1, 4)).astype("float32")
    mid = d(0.5 * (a + b))
    np.testing.assert_allclose(mid, 0.5 * (d(a) + d(b)), rtol=1e-4, atol=1e-5)
    d_act = MappingD(4, 3, use_activations=True)
    d_act.build()
    d_act.set_weights(d.get_weights())
    assert not np.allclose(d_act(a), d(a))  # the switch changes the function


def test_encoder_output_uses_small_leak():
    encoder = MLPEncoder(4, (2, 2, 1), (3,))
    encoder.build()
    pre = encoder.output_layer(encoder.features(np.ones((1, 2, 2, 1), "float32")))
    out = encoder(np.ones((1, 2, 2, 1), "float32"))
    pre, out = np.asarray(pre), np.asarray(out)
    np.testing.assert_allclose(out, np.where(pre > 0, pre, 0.01 * pre), rtol=1e-5)


def test_folding_the_equalized_scales_keeps_the_function():
    from alae_tf.models.layers import fold_equalized_scales
    from alae_tf.models.style.layers import EqualizedConv2D, FusedUpsampleConv2D

    rng = np.random.default_rng(4)
    for layer, shape in ((EqualizedDense(6, lr_mul=0.1), (3, 5)),
                         (EqualizedConv2D(4, 3, gain=0.5), (2, 6, 6, 3)),
                         (FusedUpsampleConv2D(4, lr_mul=0.3), (2, 5, 5, 3))):
        x = rng.normal(size=shape).astype("float32")
        layer(x)
        layer.bias.assign(rng.normal(size=layer.bias.shape).astype("float32"))
        before = np.asarray(layer(x))
        fold_equalized_scales(layer)
        assert layer.weight_scale == 1.0 and layer.bias_scale == 1.0
        np.testing.assert_allclose(layer(x), before, rtol=1e-5, atol=1e-5)
