"""StyleALAE primitive layers: the Keras contract, and each layer's math against a reference."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers.layers import check_config_round_trip, check_layer

from alae_tf.models.style.layers import (
    Blur,
    Downsample2x,
    EqualizedConv2D,
    FusedDownsampleConv2D,
    FusedUpsampleConv2D,
    InstanceStatistics,
    LearnedConstant,
    NoiseInjection,
    StyleModulation,
    Upsample2x,
)


def check_multi_io_layer(layer, input_shapes, output_shapes, expected_num_weights):
    """check_layer for layers with several positional inputs or several outputs."""
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=shape).astype("float32") for shape in input_shapes]
    eager = layer(*inputs)
    eager = eager if isinstance(eager, tuple) else (eager,)
    for out, shape in zip(eager, output_shapes, strict=True):
        assert tuple(out.shape) == tuple(shape)
        assert np.all(np.isfinite(np.asarray(out)))
    symbolic = layer(*[keras.KerasTensor((None, *shape[1:])) for shape in input_shapes])
    symbolic = symbolic if isinstance(symbolic, tuple) else (symbolic,)
    for out, shape in zip(symbolic, output_shapes, strict=True):
        assert tuple(out.shape) == (None, *shape[1:])
    assert len(layer.weights) == expected_num_weights
    return eager


def random_images(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def set_random_bias(layer, seed=2):
    layer.bias.assign(np.random.default_rng(seed).normal(size=layer.bias.shape).astype("float32"))


@pytest.mark.parametrize("strides, padding, output_size", [(1, "same", 8), (2, "valid", 3)])
def test_equalized_conv2d_is_tf_conv_with_scaled_kernel(strides, padding, output_size):
    layer = EqualizedConv2D(6, 3, strides=strides, padding=padding, gain=2.0, lr_mul=0.5)
    check_layer(layer, (2, 8, 8, 4), (2, output_size, output_size, 6), expected_num_weights=2)
    set_random_bias(layer)
    x = random_images((2, 8, 8, 4))
    scale = 2.0 * 0.5 / math.sqrt(3 * 3 * 4)
    expected = tf.nn.conv2d(x, layer.kernel * scale, strides, padding.upper()) + layer.bias * 0.5
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
    check_config_round_trip(layer)


def test_equalized_conv2d_stores_kernel_of_scale_one_over_lr_mul():
    keras.utils.set_random_seed(0)
    layer = EqualizedConv2D(16, 3, lr_mul=0.1, use_bias=False)
    layer.build((None, 8, 8, 16))
    assert layer.bias is None and len(layer.weights) == 1
    assert abs(np.std(layer.kernel.numpy()) - 10.0) < 0.5
    # The run-time kernel has He scale sqrt(2 / fan_in), whatever lr_mul is.
    effective = layer.kernel.numpy() * layer.weight_scale
    assert abs(np.std(effective) - math.sqrt(2 / (3 * 3 * 16))) < 0.005


def test_fused_upsample_conv_equals_nearest_upsample_then_conv():
    fused = FusedUpsampleConv2D(6, lr_mul=0.5, name="fused")
    check_layer(fused, (2, 8, 8, 4), (2, 16, 16, 6), expected_num_weights=2)
    set_random_bias(fused)
    conv = EqualizedConv2D(6, 3, lr_mul=0.5)
    conv.build((None, 16, 16, 4))
    conv.set_weights(fused.get_weights())
    x = random_images((2, 8, 8, 4))
    # The derivation in FusedUpsampleConv2D's docstring finds no border effect: the zero
    # padding of the upsampled image is exactly the missing input row of the transposed conv.
    # So the whole image must match, not just the interior.
    np.testing.assert_allclose(fused(x), conv(Upsample2x()(x)), rtol=1e-5, atol=1e-5)
    check_config_round_trip(fused)


def test_fused_upsample_conv_in_its_depth_to_space_form_computes_the_same():
    fused = FusedUpsampleConv2D(5, lr_mul=0.5)
    fused.build((None, 6, 7, 3))  # odd width: both phases at a border
    set_random_bias(fused)
    x = random_images((2, 6, 7, 3))
    transposed = np.asarray(fused(x))
    fused.form = "depth_to_space"
    np.testing.assert_allclose(fused(x), transposed, rtol=1e-5, atol=1e-5)
    assert "form" not in fused.get_config()  # how it is computed is not part of the model


def test_fused_upsample_conv_uses_the_shift_summed_4x4_kernel():
    # One input pixel of one channel: a transposed conv stamps its (mirrored, see the
    # docstring) 4x4 kernel; per dimension [a, b, c] -> [c, b + c, a + b, a].
    fused = FusedUpsampleConv2D(1, gain=1.0, use_bias=False)
    fused.build((None, 4, 4, 1))
    w = np.arange(1, 10, dtype="float32").reshape(3, 3)
    fused.kernel.assign(w[:, :, None, None] * 3.0)  # fan-in 9: run-time scale 1 / 3
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 1, 1, 0] = 1.0
    padded = np.pad(w[::-1, ::-1], 1)
    stamp = padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]
    out = np.asarray(fused(x))[0, :, :, 0]
    # Input pixel 1 covers output pixels 2..3; the 4 taps start one pixel before (padding 1).
    np.testing.assert_allclose(out[1:5, 1:5], stamp, rtol=1e-5)
    assert np.count_nonzero(out) == np.count_nonzero(stamp)


def test_fused_downsample_conv_equals_conv_then_average_pool():
    fused = FusedDownsampleConv2D(6, lr_mul=0.5)
    check_layer(fused, (2, 8, 8, 4), (2, 4, 4, 6), expected_num_weights=2)
    set_random_bias(fused)
    conv = EqualizedConv2D(6, 3, lr_mul=0.5)
    conv.build((None, 8, 8, 4))
    conv.set_weights(fused.get_weights())
    x = random_images((2, 8, 8, 4))
    # Exact everywhere as well: on an even length, TF 'SAME' pads the stride-2 4-tap conv by
    # one pixel each side, the same zeros the 3x3 'same' conv reads (derivation in the class).
    np.testing.assert_allclose(fused(x), Downsample2x()(conv(x)), rtol=1e-5, atol=1e-5)
    check_config_round_trip(fused)


def test_blur_is_the_normalised_binomial_filter():
    layer = Blur()
    check_layer(layer, (2, 8, 8, 3), (2, 8, 8, 3), expected_num_weights=0)
    check_config_round_trip(layer)
    impulse = np.zeros((1, 7, 7, 2), "float32")
    impulse[0, 3, 3, 1] = 1.0
    out = np.asarray(layer(impulse))
    expected = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    np.testing.assert_allclose(out[0, 2:5, 2:5, 1], expected, rtol=1e-6)
    assert np.isclose(out.sum(), 1.0) and np.all(out[..., 0] == 0)  # weights sum to 1, per channel
    constant = np.full((2, 8, 8, 3), 0.7, "float32")
    blurred = np.asarray(layer(constant))
    np.testing.assert_allclose(blurred[:, 1:-1, 1:-1], 0.7, rtol=1e-6)
    assert np.all(blurred[:, 0] < 0.7)  # zero padding at the border, as in the reference


def test_learned_constant_starts_at_ones_and_tiles_to_the_batch():
    layer = LearnedConstant(5, size=4)
    out = check_layer(layer, (3, 8), (3, 4, 4, 5), expected_num_weights=1)
    np.testing.assert_array_equal(out, np.ones((3, 4, 4, 5)))
    check_config_round_trip(layer)
    layer.constant.assign(random_images((1, 4, 4, 5)))
    out = np.asarray(layer(np.zeros((2, 8), "float32")))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[:1], layer.constant.numpy())


def test_noise_injection_starts_as_identity_and_scales_given_noise_per_channel():
    layer = NoiseInjection()
    x = random_images((2, 8, 8, 3))
    out = check_layer(layer, (2, 8, 8, 3), (2, 8, 8, 3), expected_num_weights=1)
    np.testing.assert_array_equal(out, random_images((2, 8, 8, 3), seed=0))  # weight 0
    check_config_round_trip(layer)
    check_multi_io_layer(layer, [(2, 8, 8, 3), (2, 8, 8, 1)], [(2, 8, 8, 3)], 1)
    strengths = np.array([0.5, -1.0, 2.0], "float32")
    layer.noise_scale.assign(strengths)
    noise = random_images((2, 8, 8, 1), seed=3)
    np.testing.assert_allclose(layer(x, noise=noise), x + strengths * noise, rtol=1e-6)


def test_noise_injection_draws_fresh_noise_shared_across_channels():
    layer = NoiseInjection()
    layer.build((None, 8, 8, 3))
    layer.noise_scale.assign(np.array([1.0, 2.0, -3.0], "float32"))
    zeros = np.zeros((2, 8, 8, 3), "float32")
    first, second = np.asarray(layer(zeros)), np.asarray(layer(zeros))
    assert not np.allclose(first, second)
    assert not np.allclose(first[0], first[1])  # per sample too
    # One noise image [N, H, W, 1], scaled per channel.
    np.testing.assert_allclose(first[..., 1], 2.0 * first[..., 0], rtol=1e-6)
    np.testing.assert_allclose(first[..., 2], -3.0 * first[..., 0], rtol=1e-6)
    assert abs(np.std(first[..., 0]) - 1.0) < 0.25


def numpy_instance_norm(x, epsilon=1e-8):
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + epsilon)


def test_style_modulation_is_adain_with_a_gain_one_style_dense():
    layer = StyleModulation(4, name="style_mod")
    check_multi_io_layer(layer, [(2, 8, 8, 4), (2, 6)], [(2, 8, 8, 4)], expected_num_weights=2)
    assert layer.style_dense.name == "style_dense" and layer.style_dense.gain == 1.0
    check_config_round_trip(layer)
    x, w = random_images((2, 8, 8, 4)), random_images((2, 6), seed=4)

    layer.style_dense.kernel.assign(np.zeros((6, 8), "float32"))
    np.testing.assert_allclose(layer(x, w), numpy_instance_norm(x), rtol=1e-4, atol=1e-5)

    layer.style_dense.kernel.assign(random_images((6, 8), seed=5))
    layer.style_dense.bias.assign(random_images((8,), seed=6))
    style = w @ (layer.style_dense.kernel.numpy() / math.sqrt(6)) + layer.style_dense.bias.numpy()
    ys, yb = style[:, None, None, :4], style[:, None, None, 4:]
    expected = numpy_instance_norm(x) * (1.0 + ys) + yb
    np.testing.assert_allclose(layer(x, w), expected, rtol=1e-4, atol=1e-4)


def test_style_modulation_rejects_the_wrong_channel_count():
    with pytest.raises(ValueError, match="expected 4 channels"):
        StyleModulation(4)(np.zeros((2, 8, 8, 3), "float32"), np.zeros((2, 6), "float32"))


def test_instance_statistics_returns_normalised_features_and_mean_std_style():
    layer = InstanceStatistics()
    check_multi_io_layer(layer, [(2, 8, 8, 3)], [(2, 8, 8, 3), (2, 6)], expected_num_weights=0)
    check_config_round_trip(layer)
    x = random_images((2, 8, 8, 3)) * 3.0 + 1.5
    normalised, style = (np.asarray(t) for t in layer(x))
    mean, std = x.mean(axis=(1, 2)), np.sqrt(x.var(axis=(1, 2)) + 1e-8)
    np.testing.assert_allclose(style, np.concatenate([mean, std], axis=-1), rtol=1e-5)
    np.testing.assert_allclose(normalised, numpy_instance_norm(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(normalised.mean(axis=(1, 2)), 0.0, atol=1e-5)


def test_upsample_and_downsample_by_two():
    up, down = Upsample2x(), Downsample2x()
    check_layer(up, (2, 4, 4, 3), (2, 8, 8, 3), expected_num_weights=0)
    check_layer(down, (2, 8, 8, 3), (2, 4, 4, 3), expected_num_weights=0)
    check_config_round_trip(up)
    check_config_round_trip(down)
    x = random_images((2, 4, 4, 3))
    upsampled = np.asarray(up(x))
    np.testing.assert_array_equal(upsampled, x.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_allclose(down(upsampled), x, rtol=1e-6)
    y = random_images((2, 8, 8, 3))
    expected = y.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(down(y), expected, rtol=1e-5, atol=1e-6)
