"""Analytic FLOP counts of the four networks and of one training step, per image.

What is counted: the multiply-adds of every dense layer, convolution (plain, fused
upsampling, fused downsampling) and blur, from the shapes each layer actually sees in a
forward pass at a given level of detail; one multiply-add is 2 FLOPs. Element-wise work
(biases, activations, AdaIN, noise, instance statistics, pooling, the optimizer's update)
is left out: it is a few percent of the total and its speed is bound by memory, not by
arithmetic. TensorFlow's profiler counts a transposed or strided convolution as if it ran on
the dense input or output grid, and counts the step's element-wise ops; this count does
neither, so use it for StyleALAE.

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

import contextlib
import math

import numpy as np

# Forward passes per image of one training step (module docstring).
STEP_PASSES = {"mapping_f": 7, "generator": 7, "encoder": 14, "mapping_d": 11}
R1_PASSES = {"encoder": 5, "mapping_d": 5}  # the part of STEP_PASSES that R1 costs


def _macs_dense(layer, inputs, output):
    x = inputs[0]
    return math.prod(x.shape[:-1]) * int(x.shape[-1]) * layer.units


def _macs_conv(layer, inputs, output):
    n, h, w, c_out = output.shape
    return n * h * w * layer.kernel_size**2 * int(inputs[0].shape[-1]) * c_out


def _macs_fused_up(layer, inputs, output):
    # A stride-2 transposed convolution with a 4 x 4 kernel: 16 taps per input pixel.
    n, h, w, c_in = inputs[0].shape
    return n * h * w * 16 * c_in * layer.filters


def _macs_fused_down(layer, inputs, output):
    n, h, w, c_out = output.shape  # a stride-2 4 x 4 convolution: 16 taps per output pixel
    return n * h * w * 16 * int(inputs[0].shape[-1]) * c_out


def _macs_blur(layer, inputs, output):
    return math.prod(output.shape) * 9  # depthwise 3 x 3


def _counted_layers():
    from alae_tf.layers import EqualizedDense
    from alae_tf.style_layers import (
        Blur,
        EqualizedConv2D,
        FusedDownsampleConv2D,
        FusedUpsampleConv2D,
    )

    return {EqualizedDense: _macs_dense, EqualizedConv2D: _macs_conv,
            FusedUpsampleConv2D: _macs_fused_up, FusedDownsampleConv2D: _macs_fused_down,
            Blur: _macs_blur}


@contextlib.contextmanager
def counting_macs():
    """Counts the multiply-adds of the counted layers called inside the block (eagerly).

    Yields a dict that holds ``"macs"`` once the block ends.
    """
    record = {"macs": 0}
    originals = {}
    for cls, rule in _counted_layers().items():
        original = cls.__dict__["call"]
        originals[cls] = original

        def counted(self, *args, _original=original, _rule=rule, _cls=cls, **kwargs):
            output = _original(self, *args, **kwargs)
            if type(self) is _cls:  # a subclass with its own rule counts itself
                record["macs"] += int(_rule(self, args, output))
            return output

        cls.call = counted
    try:
        yield record
    finally:
        for cls, original in originals.items():
            cls.call = original


def forward_flops(model, level=None):
    """FLOPs of one image through each network at ``level`` (default: the last), at the end
    of its fade-in. Returns {network name: FLOPs}; the model's level and fade are restored
    after."""
    import tensorflow as tf

    saved = [(v, v.numpy()) for v in model.state_variables.values()]  # level, fade, step
    level = model.max_level if level is None else level
    model.set_level(level)
    try:
        resolution = model.level_resolution
        image = tf.zeros((1, resolution, resolution, model.image_shape[-1]))
        z = tf.zeros((1, model.latent_dim))
        result = {}
        with counting_macs() as count:
            w = model.mapping_f(z)
        result["mapping_f"] = 2 * count["macs"]
        noise = None
        if hasattr(model, "noise_shapes"):
            noise = [tf.zeros((1, h, w_, 1)) for h, w_ in model.noise_shapes()]
        with counting_macs() as count:
            model.run_generator(model.generator, w, noise)
        result["generator"] = 2 * count["macs"]
        with counting_macs() as count:
            w_rec = model.run_encoder(model.encoder, image)
        result["encoder"] = 2 * count["macs"]
        with counting_macs() as count:
            model.mapping_d(w_rec)
        result["mapping_d"] = 2 * count["macs"]
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


def schedule_flops(preset, num_examples, model=None):
    """Per level: (level, resolution, epochs, images, step FLOPs per image, total FLOPs) of
    a preset's whole schedule over ``num_examples`` training images per epoch."""
    from alae_tf.presets import build_model

    model = model or build_model(preset, seed=0)
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
