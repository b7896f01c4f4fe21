"""The analytic FLOP counter (alae_tf.metrics.flops): each layer's rule from its shapes, the counts
of whole networks, and the training step's count against TensorFlow's profiler for MLP-ALAE."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.metrics.flops import count_macs, forward_flops, schedule_flops, step_flops
from alae_tf.models.layers import EqualizedDense
from alae_tf.models.presets import build_model, get_preset
from alae_tf.models.style.layers import (
    Blur,
    EqualizedConv2D,
    FusedDownsampleConv2D,
    FusedUpsampleConv2D,
)


def _profiled_flops(function, *specs):
    concrete = tf.function(function).get_concrete_function(*specs)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(concrete.graph, options=options).total_float_ops)


@pytest.mark.parametrize("layer, shape, macs", [
    (EqualizedDense(7), (3, 5), 3 * 5 * 7),
    (EqualizedConv2D(6, 3), (2, 8, 8, 4), 2 * 8 * 8 * 9 * 4 * 6),
    (EqualizedConv2D(6, 1), (2, 8, 8, 4), 2 * 8 * 8 * 4 * 6),
    (FusedUpsampleConv2D(6), (2, 8, 8, 4), 2 * 8 * 8 * 16 * 4 * 6),  # 16 taps per input
    (FusedDownsampleConv2D(6), (2, 8, 8, 4), 2 * 4 * 4 * 16 * 4 * 6),  # and per output
    (Blur(), (2, 8, 8, 4), 2 * 8 * 8 * 4 * 9),
])
def test_each_layer_counts_its_multiply_adds(layer, shape, macs):
    layer(tf.zeros(shape))  # build outside the trace
    count, output = count_macs(layer, tf.TensorSpec(shape))
    assert count == macs
    assert output.shape == layer.compute_output_shape(shape)


@pytest.mark.parametrize("function, shapes, macs", [
    (tf.matmul, ((3, 5), (5, 7)), 3 * 5 * 7),
    (lambda a, b: tf.matmul(a, b, transpose_a=True), ((5, 3), (5, 7)), 3 * 5 * 7),
    (tf.matmul, ((2, 3, 5), (5, 7)), 2 * 3 * 5 * 7),  # a batched product
    (lambda a, b: tf.matmul(a, b, adjoint_a=True), ((2, 5, 3), (2, 5, 7)), 2 * 3 * 5 * 7),
    (lambda a, b: tf.nn.relu(a) * 2.0 + tf.reduce_sum(b), ((3, 5), (5, 7)), 0),  # element-wise
])
def test_matrix_products_count_and_element_wise_work_does_not(function, shapes, macs):
    assert count_macs(function, *(tf.TensorSpec(s) for s in shapes))[0] == macs


def test_plain_dense_and_conv_match_the_profiler():
    keras.utils.set_random_seed(0)
    dense, conv = EqualizedDense(256, use_bias=False), EqualizedConv2D(32, 3, use_bias=False)
    for layer, shape in ((dense, (64, 256)), (conv, (1, 16, 16, 32))):
        layer(tf.zeros(shape))
        macs, _ = count_macs(layer, tf.TensorSpec(shape))
        profiled = _profiled_flops(layer, tf.TensorSpec(shape))
        # The profiler adds the run-time weight scale's multiplies (equalized learning rate).
        assert 2 * macs == pytest.approx(profiled, rel=0.01)


def test_mlp_alae_networks_are_their_dense_layers():
    model = build_model(get_preset("mnist_mlp"), seed=0)
    forward = forward_flops(model)
    hidden = 1024
    assert forward["encoder"] == 2 * (784 * hidden + hidden * hidden + hidden * 50)
    assert forward["generator"] == 2 * (50 * hidden + hidden * hidden + hidden * 784)


def test_the_mlp_training_step_is_within_the_profilers_count():
    # The profiler also counts element-wise work (biases, activations, Adam): the analytic
    # count of the matrix products must be a little below it, never above.
    preset = get_preset("mnist_mlp")
    model = build_model(preset, seed=0)
    model.compile(learning_rate=preset.learning_rate)
    batch = 128
    profiled = _profiled_flops(model.train_step,
                               tf.TensorSpec((batch, *preset.image_shape), tf.float32))
    analytic = batch * step_flops(forward_flops(model))
    assert 0.9 * profiled < analytic < profiled, (analytic, profiled)


def test_style_counts_grow_with_the_level_and_lazy_r1_saves_r1s_share(tiny_style_preset):
    model = build_model(tiny_style_preset, seed=0)
    model.set_level(1, fade_steps=10)
    low, high = forward_flops(model, 0), forward_flops(model, model.max_level)
    assert high["generator"] > 2 * low["generator"] and high["encoder"] > 2 * low["encoder"]
    assert model.level == 1 and int(model.fade_steps.numpy()) == 10  # restored
    full, lazy = step_flops(high), step_flops(high, r1_interval=4)
    r1 = 5 * (high["encoder"] + high["mapping_d"])
    assert full - lazy == pytest.approx(r1 * 3 / 4)


def test_the_schedule_counts_each_level_at_its_epochs(tiny_style_preset):
    rows = schedule_flops(build_model(tiny_style_preset), tiny_style_preset, num_examples=100)
    assert [r[0] for r in rows] == list(range(len(rows)))
    assert sum(r[2] for r in rows) == tiny_style_preset.epochs
    assert all(r[3] == r[2] * 100 and r[5] == pytest.approx(r[3] * r[4]) for r in rows)
    assert np.all(np.diff([r[4] for r in rows]) > 0)


@pytest.fixture
def tiny_style_preset():
    return get_preset("mnist_style_small", startf=8, maxf=16, epochs_per_lod=2, epochs=7)


def test_flops_asked_by_name_are_the_forward_and_step_counts():
    from alae_tf.metrics import compute

    preset = get_preset("mnist_mlp")
    model = build_model(preset, seed=0)
    forward = forward_flops(model)
    assert compute("flops", model, preset) == {
        "flops": {**forward, "step_per_image": step_flops(forward, preset.r1_interval)}}
