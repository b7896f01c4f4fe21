"""Primitive layers shared by the ALAE networks.

Equalized learning rate (Karras et al., "Progressive Growing of GANs", 2018, section 4.1;
podgorskiy/ALAE net.py) lives entirely in the layer: the stored weight is drawn from
N(0, 1 / lr_mul^2) and scaled at run time by ``gain * lr_mul / sqrt(fan_in)``, so a stock Keras
Adam sees parameters of unit scale and the effective learning rate of a layer is
``lr * lr_mul``.
"""

import math

import keras
from keras import ops

SQRT2 = math.sqrt(2.0)


def add_equalized_weights(layer, kernel_shape):
    """Creates ``layer.kernel`` and ``layer.bias`` and sets ``layer.weight_scale``.

    The kernel [..., fan_in, units] is drawn from N(0, 1 / lr_mul^2); the bias (when
    ``layer.use_bias``) starts at zeros; weight_scale = gain * lr_mul / sqrt(fan_in), where
    fan_in is the product of every kernel dimension but the last. The layer needs the
    attributes ``gain``, ``lr_mul`` and ``use_bias``.
    """
    layer.kernel = layer.add_weight(
        name="kernel",
        shape=kernel_shape,
        initializer=keras.initializers.RandomNormal(stddev=1.0 / layer.lr_mul),
    )
    units = kernel_shape[-1]
    layer.bias = (
        layer.add_weight(name="bias", shape=(units,), initializer="zeros")
        if layer.use_bias
        else None
    )
    layer.weight_scale = layer.gain * layer.lr_mul / math.sqrt(math.prod(kernel_shape[:-1]))
    layer.bias_scale = layer.lr_mul


def scaled(weight, scale):
    """``weight * scale``, without an op when the scale is 1 (a folded layer, see below)."""
    return weight if scale == 1.0 else weight * scale


def fold_equalized_scales(layer):
    """Bakes an equalized layer's run-time scales into its stored weights, for inference.

    kernel <- kernel * weight_scale and bias <- bias * lr_mul, then both scales are 1: the
    layer computes the same function without scaling its weights at every call (for a
    1024 x 1024 Dense that multiply costs more than the matmul at batch 1). Only for copies
    used for inference: training must keep the equalized parametrisation.
    """
    layer.kernel.assign(layer.kernel * layer.weight_scale)
    layer.weight_scale = 1.0
    if layer.bias is not None:
        layer.bias.assign(layer.bias * layer.bias_scale)
    layer.bias_scale = 1.0


@keras.saving.register_keras_serializable(package="alae_tf")
class EqualizedDense(keras.layers.Layer):
    """Fully connected layer with an equalized learning rate.

    y = x @ (W * gain * lr_mul / sqrt(fan_in)) + b * lr_mul, with W ~ N(0, 1 / lr_mul^2) and
    b = 0 at initialisation.

    Args:
        units: output features.
        gain: the He-style gain of the run-time weight scale (sqrt 2 for LeakyReLU nets).
        lr_mul: learning-rate multiplier of the layer (0.1 in the mapping networks).
        use_bias: add a bias.

    Reference: Karras et al. 2018, section 4.1; podgorskiy/ALAE net.py (equalized layers).
    """

    def __init__(self, units, gain=SQRT2, lr_mul=1.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.gain = float(gain)
        self.lr_mul = float(lr_mul)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        add_equalized_weights(self, (int(input_shape[-1]), self.units))

    def call(self, x):
        # (x @ W) * scale equals x @ (W * scale), and scales the [N, units] output instead of
        # the [fan_in, units] kernel: for a 1024 x 1024 layer at batch 128, 8 times fewer
        # elements, in the forward pass and in the kernel's gradient.
        y = ops.matmul(x, self.kernel)
        if self.weight_scale != 1.0:
            y = y * self.weight_scale
        if self.bias is not None:
            y = y + scaled(self.bias, self.bias_scale)
        return y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, gain=self.gain, lr_mul=self.lr_mul, use_bias=self.use_bias
        )
        return config


@keras.saving.register_keras_serializable(package="alae_tf")
class PixelNorm(keras.layers.Layer):
    """Normalises each feature vector to unit root mean square.

    y = x / sqrt(mean(x^2 over the last axis) + epsilon)

    Args:
        epsilon: added under the square root.

    Reference: Karras et al. 2018, section 4.2; podgorskiy/ALAE net.py, MappingF (input of F).
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config
