"""Analytic FLOP counts of the four networks and of one training step, per image.

What is counted: the multiply-adds of every matrix product and convolution (plain, strided,
transposed, depthwise: the dense layers, the fused upsampling and downsampling convolutions
and the blur) in the graph of a forward pass at a given level of detail, from the shapes of
that graph; one multiply-add is 2 FLOPs. A convolution costs its kernel's size at every
position of the grid it slides over: the output for a plain or strided one, the input for a
transposed one. Element-wise work (biases, activations, AdaIN, noise, instance statistics,
pooling, the optimizer's update) is left out: it is a few percent of the total and its speed
is bound by memory, not by arithmetic. TensorFlow's profiler counts a transposed or strided
convolution as if it ran on the dense input or output grid, and counts the step's
element-wise ops; this count does neither, so use it for StyleALAE. Nothing is computed: the
forward pass is only traced.

A training step (Algorithm 1, as ``ALAE.train_step`` runs it) costs, per image, in units of
each network's forward pass (a backward pass to inputs and weights costs 2 forwards, to the
inputs alone 1):

- step 1 (E and D): F and G forward (1 each); E and D on the fakes forward and backward
  (3); on the reals forward (1), R1's input gradient (1), and the outer gradient through
  both the forward (2) and the input gradient (2): 6; so F + G + 9 (E + D);
- step 2 (F and G): F and G forward and backward (3); E and D forward and back to their
  inputs (2): 3 (F + G) + 2 (E + D);
- step 3 (E, G and F): F and G forward and backward (3), E forward and backward (3).

In all: 7 F + 7 G + 14 E + 11 D. With lazy R1 every k steps, R1's 5 (E + D) are paid on one
step in k. For MLP-ALAE the count is checked against the TF profiler (tests/test_flops.py).
"""

import math

import numpy as np
import tensorflow as tf

# Forward passes per image of one training step (module docstring).
STEP_PASSES = {"mapping_f": 7, "generator": 7, "encoder": 14, "mapping_d": 11}
R1_PASSES = {"encoder": 5, "mapping_d": 5}  # the part of STEP_PASSES that R1 costs
# Convolutions: (index of the input whose grid the kernel slides over, or None for the
# output's; index of the filter [kh, kw, C_in, C_out], or [kh, kw, C, multiplier]).
_CONVOLUTIONS = {"Conv2D": (None, 1), "DepthwiseConv2dNative": (None, 1),
                 "Conv2DBackpropInput": (2, 1)}  # a transposed convolution: (sizes, filter, x)
# Matrix products: the attribute that says the first operand is transposed.
_MATMULS = {"MatMul": "transpose_a", "BatchMatMulV2": "adj_x"}


def _op_macs(op):
    if op.type in _CONVOLUTIONS:
        grid, kernel = _CONVOLUTIONS[op.type]
        grid_shape = (op.outputs[0] if grid is None else op.inputs[grid]).shape
        return math.prod(grid_shape[:-1]) * math.prod(op.inputs[kernel].shape)
    if op.type in _MATMULS:
        x = op.inputs[0].shape
        inner = x[-2] if op.get_attr(_MATMULS[op.type]) else x[-1]  # the summed dimension
        return math.prod(op.outputs[0].shape) * inner
    return 0


def count_macs(function, *specs):
    """Multiply-adds of the matrix products and convolutions ``function`` runs on inputs of
    ``specs`` (``tf.TensorSpec``s with static shapes), and its output's spec.

    ``function`` is traced, not run.
    """
    concrete = tf.function(function).get_concrete_function(*specs)
    macs = sum(_op_macs(op) for op in concrete.graph.get_operations())
    output = concrete.structured_outputs
    return macs, tf.TensorSpec(output.shape, output.dtype)


def forward_flops(model, level=None):
    """FLOPs of one image through each network at ``level`` (default: the last), at the end
    of its fade-in. Returns {network name: FLOPs}; the model's level and fade are restored
    after."""
    saved = [(v, v.numpy()) for v in model.state_variables.values()]  # level, fade, step
    level = model.max_level if level is None else level
    model.set_level(level)
    try:
        side = model.level_resolution
        result = {}
        macs, w = count_macs(model.mapping_f, tf.TensorSpec((1, model.latent_dim)))
        result["mapping_f"] = 2 * macs
        generator_inputs = [w]
        if hasattr(model, "noise_shapes"):  # StyleALAE's noise inputs (element-wise work)
            generator_inputs.append([tf.TensorSpec((1, h, w_, 1))
                                     for h, w_ in model.noise_shapes()])
        macs, _ = count_macs(lambda *inputs: model.run_generator(model.generator, *inputs),
                             *generator_inputs)
        result["generator"] = 2 * macs
        macs, w_rec = count_macs(lambda x: model.run_encoder(model.encoder, x),
                                 tf.TensorSpec((1, side, side, model.image_shape[-1])))
        result["encoder"] = 2 * macs
        result["mapping_d"] = 2 * count_macs(model.mapping_d, w_rec)[0]
        return result
    finally:
        for variable, value in saved:
            variable.assign(value)
        model.sync_level()


def step_flops(forward, r1_interval=1):
    """FLOPs per image of one training step, from ``forward_flops``'s counts."""
    total = sum(STEP_PASSES[name] * flops for name, flops in forward.items())
    r1 = sum(R1_PASSES.get(name, 0) * flops for name, flops in forward.items())
    return total - r1 + r1 / r1_interval


def schedule_flops(model, preset, num_examples):
    """Per level: (level, resolution, epochs, images, step FLOPs per image, total FLOPs) of
    ``preset``'s whole schedule over ``num_examples`` training images per epoch, for
    ``model``, the preset's networks (``presets.build_model(preset)``)."""
    schedule = preset.schedule
    epochs_at = np.zeros(schedule.num_levels, dtype=np.int64)
    for epoch in range(preset.epochs):
        epochs_at[schedule.level_at_epoch(epoch)] += 1
    rows = []
    for level in range(schedule.num_levels):
        if not epochs_at[level]:
            continue
        per_image = step_flops(forward_flops(model, level), preset.r1_interval)
        images = int(epochs_at[level]) * num_examples
        rows.append((level, 4 * 2**level if model.max_level else preset.resolution,
                     int(epochs_at[level]), images, per_image, per_image * images))
    return rows
