"""Primitive layers of the StyleALAE generator and encoder (podgorskiy/ALAE net.py).

Convolutions use the equalized learning rate of ``alae_tf.models.layers``: the stored kernel is
drawn from N(0, 1 / lr_mul^2) and scaled at run time by ``gain * lr_mul / sqrt(fan_in)``. Kernels
are stored channels_last as [k, k, C_in, C_out], the same layout in every convolution here, so the
fused resampling convolutions and a plain 3x3 convolution can share weights.

Every op on an inference path (conv2d, conv2d_transpose, depthwise_conv2d, nearest resize,
avg_pool, means and rsqrt, tf.random.normal) exports to SavedModel and converts to TF.js.
"""


import keras
import numpy as np
import tensorflow as tf
from keras import ops

from alae_tf.models.layers import SQRT2, EqualizedDense, add_equalized_weights, scaled

# [1, 2, 1] is the binomial approximation of a Gaussian; the outer product, normalised to sum
# 1, keeps the mean intensity of an image. Symmetric, so correlation and convolution agree.
_BLUR_1D = np.array([1.0, 2.0, 1.0], dtype="float32")
BLUR_KERNEL = np.outer(_BLUR_1D, _BLUR_1D) / np.sum(_BLUR_1D) ** 2  # [3, 3]


# Nearest upsampling x2 then a 3-tap correlation [a, b, c], read at the even and the odd
# outputs, is a 3-tap correlation of the input: [a, b + c, 0] and [0, a + b, c].
_PHASE_TAPS = (np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype="float32"),
               np.array([[0, 0, 0], [1, 1, 0], [0, 0, 1]], dtype="float32"))


def _double(length):
    """Twice a spatial length, keeping an unknown length unknown."""
    return None if length is None else 2 * length


def _half(length, round_up=False):
    """Half a spatial length (rounded like 'same' or 'valid' padding), unknown stays unknown."""
    if length is None:
        return None
    return -(-length // 2) if round_up else length // 2


def instance_normalize(x, epsilon, std_epsilon=None):
    """Instance normalisation without an affine transform, and the statistics it removed.

    Returns (normalised x, mean, std) with the mean and std = sqrt(var + std_epsilon) over H, W
    of each sample and channel ([N, 1, 1, C], float32); x is normalised with
    sqrt(var + epsilon). ``std_epsilon`` None means ``epsilon``. The statistics are computed
    in float32 even under mixed precision: bfloat16 has too few mantissa bits for a mean over
    1024 x 1024 pixels. Two passes (centre, then square) avoid the cancellation of
    E[x^2] - E[x]^2.
    """
    x32 = ops.cast(x, "float32")
    mean = ops.mean(x32, axis=(1, 2), keepdims=True)  # [N, 1, 1, C]
    centred = x32 - mean
    variance = ops.mean(ops.square(centred), axis=(1, 2), keepdims=True)  # [N, 1, 1, C]
    inv_std = ops.rsqrt(variance + epsilon)
    if std_epsilon is None or std_epsilon == epsilon:
        std = 1.0 / inv_std
    else:
        std = ops.sqrt(variance + std_epsilon)
    return ops.cast(centred * inv_std, x.dtype), mean, std


def _shift_sum(kernel):
    """The 3x3 -> 4x4 kernel of a fused resampling convolution.

    Zero-pad [3, 3, ...] to [5, 5, ...] and add its four one-pixel shifts:
    w' = pad(w)[1:, 1:] + pad(w)[:-1, 1:] + pad(w)[1:, :-1] + pad(w)[:-1, :-1]. In one dimension
    w = [a, b, c] becomes [a, a + b, b + c, c]: each output tap collects the 3x3 taps that land
    on the same input pixel when the image is at twice the resolution.
    """
    padded = ops.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))  # [5, 5, C_in, C_out]
    return padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]


@keras.saving.register_keras_serializable(package="alae_tf")
class EqualizedConv2D(keras.layers.Layer):
    """2D convolution with an equalized learning rate.

    y = conv(x, K * gain * lr_mul / sqrt(k * k * C_in)) + b * lr_mul, with K ~ N(0, 1 / lr_mul^2)
    of shape [k, k, C_in, C_out] and b = 0 at initialisation.

    Args:
        filters: output channels.
        kernel_size: side of the square kernel.
        strides: stride in both spatial dimensions.
        padding: "same" (zero padding) or "valid".
        gain: the He-style gain of the run-time weight scale (sqrt 2 before a LeakyReLU;
            0.03 in the generator's ToRGB).
        lr_mul: learning-rate multiplier of the layer.
        use_bias: add a bias.

    Reference: Karras et al. 2018, section 4.1; podgorskiy/ALAE net.py (equalized convs).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        gain=SQRT2,
        lr_mul=1.0,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.padding = padding
        self.gain = float(gain)
        self.lr_mul = float(lr_mul)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        k = self.kernel_size
        add_equalized_weights(self, (k, k, int(input_shape[-1]), self.filters))

    def call(self, x):
        y = ops.conv(x, scaled(self.kernel, self.weight_scale), strides=self.strides,
                     padding=self.padding)
        if self.bias is not None:
            y = y + scaled(self.bias, self.bias_scale)
        return y

    def compute_output_shape(self, input_shape):
        def length(size):
            if size is None:
                return None
            if self.padding == "same":
                return -(-size // self.strides)
            return (size - self.kernel_size) // self.strides + 1

        return (input_shape[0], length(input_shape[1]), length(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            gain=self.gain,
            lr_mul=self.lr_mul,
            use_bias=self.use_bias,
        )
        return config


class _FusedConv3x3(keras.layers.Layer):
    """Shared weights and config of the fused resampling convolutions (not used directly).

    The stored kernel is an ordinary equalized 3x3 kernel [3, 3, C_in, C_out] with fan-in
    3 * 3 * C_in; the subclasses turn it into a 4x4 stride-2 kernel at run time.
    """

    def __init__(self, filters, gain=SQRT2, lr_mul=1.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.gain = float(gain)
        self.lr_mul = float(lr_mul)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        add_equalized_weights(self, (3, 3, int(input_shape[-1]), self.filters))

    def _add_bias(self, y):
        return y if self.bias is None else y + scaled(self.bias, self.bias_scale)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, gain=self.gain, lr_mul=self.lr_mul, use_bias=self.use_bias
        )
        return config


@keras.saving.register_keras_serializable(package="alae_tf")
class FusedUpsampleConv2D(_FusedConv3x3):
    """Nearest-neighbour upsampling x2 and a 3x3 convolution as one stride-2 transposed conv.

    [N, H, W, C_in] -> [N, 2H, 2W, filters]. The output equals
    ``EqualizedConv2D(filters, 3)(Upsample2x()(x))`` with the same stored weights, exactly,
    borders included (tests/test_style_layers.py checks it), at a quarter of the multiply-adds.

    Why: a transposed convolution is the adjoint of a correlation, so it applies its kernel
    mirrored. Per dimension, nearest-upsample-then-correlate with [a, b, c] gives
    y[2m] = a x[m-1] + (b + c) x[m] and y[2m+1] = (a + b) x[m] + c x[m+1], which is the stride-2
    transposed conv (TF 'SAME': one pixel of padding) with the 4-tap kernel
    [c, b + c, a + b, a] = shift_sum(flip([a, b, c])). The zero padding of the upsampled image
    at the borders matches the missing x[-1] and x[H] of the transposed conv, hence no border
    effect. The reference stores its transposed kernel unflipped; as the kernel is a free
    parameter with a symmetric initialisation, the two parametrise the same function family.

    Args:
        filters: output channels.
        gain: the He-style gain of the run-time weight scale.
        lr_mul: learning-rate multiplier of the layer.
        use_bias: add a bias.

    Reference: podgorskiy/ALAE net.py (upsampling at 128 px and above); Karras et al. 2019
    (StyleGAN), fused upscale2d_conv2d.

    ``form`` (an attribute, not saved) picks how the same function is computed:
    "transposed" (the default: the fewest multiply-adds) or "depth_to_space", for runtimes
    whose transposed convolution is slow (TF.js's WASM backend runs it as one scalar loop):
    one 3x3 convolution of the low-resolution input to 4 * filters channels, one group per
    output phase, then ``depth_to_space``. Per dimension the phases' 3-tap kernels are
    [a, b + c, 0] (even outputs) and [0, a + b, c] (odd outputs), read off the sums above.
    ``export.tfjs`` sets it (``browser_forms``) while it traces the graphs.
    """

    FORMS = ("transposed", "depth_to_space")
    form = "transposed"

    def call(self, x):
        if self.form == "depth_to_space":
            return self._add_bias(self._depth_to_space_form(x))
        kernel = ops.flip(scaled(self.kernel, self.weight_scale), axis=(0, 1))
        # conv_transpose wants [k, k, C_out, C_in].
        kernel = ops.transpose(_shift_sum(kernel), (0, 1, 3, 2))  # [4, 4, C_out, C_in]
        y = ops.conv_transpose(x, kernel, strides=2, padding="same")  # [N, 2H, 2W, C_out]
        return self._add_bias(y)

    def _depth_to_space_form(self, x):
        kernel = scaled(self.kernel, self.weight_scale)  # [3, 3, C_in, C_out], correlation
        # _PHASE_TAPS[p][new tap, old tap]: phase p's 3-tap kernel from [a, b, c].
        phases = [ops.einsum("ai,bj,ijcd->abcd", _PHASE_TAPS[py], _PHASE_TAPS[px], kernel)
                  for py in (0, 1) for px in (0, 1)]
        # depth_to_space reads channel (2 * py + px) * C_out + d as phase (py, px), channel d.
        y = ops.conv(x, ops.concatenate(phases, axis=-1), strides=1, padding="same")
        return tf.nn.depth_to_space(y, 2)

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            _double(input_shape[1]),
            _double(input_shape[2]),
            self.filters,
        )


@keras.saving.register_keras_serializable(package="alae_tf")
class FusedDownsampleConv2D(_FusedConv3x3):
    """A 3x3 convolution and 2x2 average pooling as one stride-2 4x4 convolution.

    [N, H, W, C_in] -> [N, H/2, W/2, filters] for even H, W. The output equals
    ``Downsample2x()(EqualizedConv2D(filters, 3)(x))`` with the same stored weights, exactly,
    borders included.

    Why: per dimension, correlating with [a, b, c] then averaging pairs gives
    z[i] = (a x[2i-1] + (a + b) x[2i] + (b + c) x[2i+1] + c x[2i+2]) / 2, a stride-2
    correlation with 0.5 * shift_sum([a, b, c]) and one pixel of zero padding each side (TF
    'SAME' for a 4-tap stride-2 kernel on an even length). Both are correlations, so no flip;
    in 2D the factor is 0.5 * 0.5 = 0.25.

    Args:
        filters: output channels.
        gain: the He-style gain of the run-time weight scale.
        lr_mul: learning-rate multiplier of the layer.
        use_bias: add a bias.

    Reference: podgorskiy/ALAE net.py, EncoderDefault (downsampling at 128 px and above);
    Karras et al. 2019 (StyleGAN), fused conv2d_downscale2d.
    """

    def call(self, x):
        kernel = 0.25 * _shift_sum(scaled(self.kernel, self.weight_scale))  # [4, 4, C_in, C_out]
        y = ops.conv(x, kernel, strides=2, padding="same")  # [N, H/2, W/2, C_out]
        return self._add_bias(y)

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            _half(input_shape[1], round_up=True),
            _half(input_shape[2], round_up=True),
            self.filters,
        )


@keras.saving.register_keras_serializable(package="alae_tf")
class Blur(keras.layers.Layer):
    """Low-pass filter applied per channel after upsampling and before downsampling.

    y = x * ([1, 2, 1]^T [1, 2, 1] / 16), depthwise, zero 'same' padding (so the border pixels
    lose the mass that falls outside the image, as in the reference). No weights.

    Reference: podgorskiy/ALAE net.py (blur); Karras et al. 2019 (StyleGAN), section 2, after Zhang,
    "Making Convolutional Networks Shift-Invariant Again", 2019.
    """

    def call(self, x):
        channels = int(x.shape[-1])
        # One copy of the filter per channel, channel multiplier 1.
        kernel = np.tile(BLUR_KERNEL[:, :, None, None], (1, 1, channels, 1))  # [3, 3, C, 1]
        kernel = ops.cast(kernel, x.dtype)
        return ops.depthwise_conv(x, kernel, strides=1, padding="same")

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="alae_tf")
class LearnedConstant(keras.layers.Layer):
    """The generator's learned input image, repeated for each sample of a batch.

    call(w) reads only the batch size N of ``w`` and returns the constant [N, size, size, C].
    The weight [1, size, size, C] starts at ones.

    Args:
        channels: channels C of the constant.
        size: its height and width.

    Reference: podgorskiy/ALAE net.py (learned constant input); Karras et al. 2019
    (StyleGAN), section 2.
    """

    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.size = int(size)

    def build(self, input_shape):
        self.constant = self.add_weight(
            name="constant",
            shape=(1, self.size, self.size, self.channels),
            initializer="ones",
        )

    def call(self, w):
        batch = ops.shape(w)[0]
        return ops.tile(self.constant, (batch, 1, 1, 1))  # [N, size, size, C]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, size=self.size)
        return config


@keras.saving.register_keras_serializable(package="alae_tf")
class NoiseInjection(keras.layers.Layer):
    """Adds per-pixel Gaussian noise scaled by a learned per-channel weight.

    y = x + s * noise with noise [N, H, W, 1] (shared by all channels) and s [C] initialised to
    0, so a fresh network is deterministic.

    call(x, noise=None): ``noise`` [N, H, W, 1] is used as given; without it the layer draws
    tf.random.normal, which converts to TF.js (seeded Keras generators do not). A training
    step that owns its randomness, and exported endpoints, pass ``noise`` explicitly.

    Reference: podgorskiy/ALAE net.py (per-pixel noise); Karras et al. 2019 (StyleGAN), section 3.2.
    """

    def build(self, input_shape):
        self.noise_scale = self.add_weight(
            name="noise_scale", shape=(int(input_shape[-1]),), initializer="zeros"
        )

    def call(self, x, noise=None):
        if noise is None:
            shape = ops.shape(x)
            noise = tf.random.normal((shape[0], shape[1], shape[2], 1), dtype=x.dtype)
        return x + self.noise_scale * ops.cast(noise, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="alae_tf")
class StyleModulation(keras.layers.Layer):
    """Adaptive instance normalisation (AdaIN): the generator's style input.

    call(x, w) with x [N, H, W, C] (not yet normalised) and w [N, latent]:
    [ys, yb] = style_dense(w) (an EqualizedDense to 2C with gain 1, ys the first C entries),
    y = instance_norm(x) * (1 + ys) + yb. The 1 + ys makes a zero style the identity on the
    normalised features.

    Args:
        channels: channels C of x.
        epsilon: added to the variance of the instance norm.

    Reference: podgorskiy/ALAE net.py (style modulation); Huang and Belongie, "Arbitrary
    Style Transfer in Real-time with Adaptive Instance Normalization", 2017; Karras et al.
    2019, section 2.
    """

    def __init__(self, channels, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.epsilon = float(epsilon)
        self.style_dense = EqualizedDense(2 * self.channels, gain=1.0, name="style_dense")

    def build(self, x_shape, w_shape):
        if x_shape[-1] != self.channels:
            raise ValueError(f"{self.name}: expected {self.channels} channels, got {x_shape}")
        self.style_dense.build(w_shape)

    def call(self, x, w):
        normalised, _, _ = instance_normalize(x, self.epsilon)
        style = self.style_dense(w)  # [N, 2C]
        style = ops.reshape(style, (-1, 1, 1, 2 * self.channels))  # [N, 1, 1, 2C]
        scale, shift = style[..., : self.channels], style[..., self.channels :]
        return normalised * (1.0 + scale) + shift

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="alae_tf")
class InstanceStatistics(keras.layers.Layer):
    """Instance normalisation that also returns what it removed: the encoder's style.

    call(x) with x [N, H, W, C] returns (normalised x [N, H, W, C], style [N, 2C]) where
    style = concat([mean, std]) over H, W per channel, std = sqrt(var + std_epsilon) and
    normalised x = (x - mean) / sqrt(var + epsilon). The encoder maps each style to W with a
    Dense and sums.

    Args:
        epsilon: added to the variance before normalising.
        std_epsilon: added to the variance of the std statistic; None: ``epsilon``. The
            reference normalises with ``nn.InstanceNorm2d``'s default 1e-5 and takes the std
            statistic with no epsilon (0); imported models use those values, this project's
            presets 1e-8 for both (a constant channel then has a finite gradient).

    Reference: Pidhorskyi et al., "Adversarial Latent Autoencoders", 2020, section 5
    (StyleALAE encoder); podgorskiy/ALAE net.py, EncodeBlock.
    """

    def __init__(self, epsilon=1e-8, std_epsilon=None, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.std_epsilon = self.epsilon if std_epsilon is None else float(std_epsilon)

    def call(self, x):
        normalised, mean, std = instance_normalize(x, self.epsilon, self.std_epsilon)
        style = ops.concatenate([mean, std], axis=-1)  # [N, 1, 1, 2C]
        style = ops.cast(ops.squeeze(style, axis=(1, 2)), x.dtype)  # [N, 2C]
        return normalised, style

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return input_shape, (input_shape[0], None if channels is None else 2 * channels)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, std_epsilon=self.std_epsilon)
        return config


@keras.saving.register_keras_serializable(package="alae_tf")
class Upsample2x(keras.layers.Layer):
    """Nearest-neighbour upsampling by 2: [N, H, W, C] -> [N, 2H, 2W, C].

    Reference: podgorskiy/ALAE net.py (generator below 128 px, progressive-growing fade-in).
    """

    def call(self, x):
        # Each pixel repeated into a 2x2 patch. Written as reshape and broadcast rather than a
        # nearest resize: XLA has no kernel for the resize's gradient, and TF.js has both ops.
        shape = ops.shape(x)
        h, w, c = shape[1], shape[2], x.shape[3]
        patches = ops.broadcast_to(ops.reshape(x, (-1, h, 1, w, 1, c)),
                                   (shape[0], h, 2, w, 2, c))
        return ops.reshape(patches, (-1, 2 * h, 2 * w, c))

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            _double(input_shape[1]),
            _double(input_shape[2]),
            input_shape[3],
        )


@keras.saving.register_keras_serializable(package="alae_tf")
class Downsample2x(keras.layers.Layer):
    """2x2 average pooling with stride 2: [N, H, W, C] -> [N, H/2, W/2, C].

    Reference: podgorskiy/ALAE net.py (encoder below 128 px) and model.py (real-image blending).
    """

    def call(self, x):
        return ops.average_pool(x, pool_size=2, strides=2, padding="valid")

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            _half(input_shape[1]),
            _half(input_shape[2]),
            input_shape[3],
        )


@keras.saving.register_keras_serializable(package="alae_tf")
class Bias(keras.layers.Layer):
    """Adds a learned per-channel bias (zeros at init), scaled by ``lr_mul``.

    StyleALAE adds its biases after blur and noise, so they cannot live in the convolution:
    a blur with zero padding would change a bias near the borders.

    Args:
        lr_mul: learning-rate multiplier of the bias.

    Reference: podgorskiy/ALAE net.py (each half block: noise -> bias -> LeakyReLU).
    """

    def __init__(self, lr_mul=1.0, **kwargs):
        super().__init__(**kwargs)
        self.lr_mul = float(lr_mul)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),),
                                    initializer="zeros")

    def call(self, x):
        return x + ops.cast(self.bias * self.lr_mul, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "lr_mul": self.lr_mul}
