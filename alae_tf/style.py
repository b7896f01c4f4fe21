"""StyleALAE's image networks: the StyleGAN-like generator G and the style encoder E.

Both are ladders of per-resolution blocks. Block i of G makes resolution 4 * 2^i; block i of E
reads resolution R / 2^i for output resolution R. Progressive growing runs a prefix of the
ladder: at level of detail ``lod`` G stops at 4 * 2^lod pixels and E starts there, and during a
fade-in (``alpha`` < 1) the newest block is blended with the previous level's output.
``lod`` is a Python int (the shapes depend on it, so each level is its own trace); ``alpha``
may be a tensor.

Reference: ALAE paper section 5 (StyleALAE) and ALAE_SPEC.md section 5.
"""

import math

import keras
from keras import ops

from alae_tf.layers import EqualizedDense
from alae_tf.style_layers import (
    Bias,
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

# At and above this resolution resampling uses the fused stride-2 convolutions.
FUSED_RESOLUTION = 128


def num_blocks(resolution):
    """Blocks of the ladder for a square output of ``resolution`` = 4 * 2^(L-1) pixels."""
    blocks = round(math.log2(resolution)) - 1
    if resolution < 4 or 4 * 2 ** (blocks - 1) != resolution:
        raise ValueError(f"resolution must be 4 times a power of 2, got {resolution}")
    return blocks


def _check_lod(lod, blocks):
    lod = blocks - 1 if lod is None else int(lod)
    if not 0 <= lod < blocks:
        raise ValueError(f"lod must be in [0, {blocks - 1}], got {lod}")
    return lod


class _StyleLadder(keras.Model):
    """What G and E share: the image size, the channel plan's constants and their config."""

    def __init__(self, resolution, channels, latent_dim, startf=32, maxf=256, **kwargs):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.latent_dim = int(latent_dim)
        self.startf = int(startf)
        self.maxf = int(maxf)
        self.blocks = num_blocks(self.resolution)
        self.image_shape = (self.resolution, self.resolution, self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "resolution": self.resolution,
            "channels": self.channels,
            "latent_dim": self.latent_dim,
            "startf": self.startf,
            "maxf": self.maxf,
        }


@keras.saving.register_keras_serializable(package="alae_tf")
class StyleGenerator(_StyleLadder):
    """G: w -> image through a StyleGAN ladder of AdaIN blocks.

    Block i (resolution 4 * 2^i, channels min(maxf, startf * 2^(L-1-i))) has two halves, each
    [conv] -> noise -> bias -> LeakyReLU 0.2 -> AdaIN with its own style slot. Block 0 starts
    from a learned constant (no first conv); later blocks upsample (nearest x2 + 3x3 conv below
    128 px, a fused stride-2 transposed conv from 128 px) and blur. Each block has a ToRGB 1x1
    conv (gain 0.03) so any level can be the output. Style slots: 2 * L.

    call(w, lod=None, alpha=1.0, noise=None):
        w: [N, latent] (every slot gets the same w) or [N, 2L, latent] (per-slot w).
        lod: level of detail, output resolution 4 * 2^lod (default: the full resolution).
        alpha: fade-in weight of block ``lod``; the output is
            lerp(upsample(ToRGB_{lod-1}), ToRGB_lod, alpha).
        noise: None (draw), or a list of 2 * (lod + 1) tensors [N, H, W, 1], one per half.

    Args:
        resolution: output side, 4 * 2^(L-1).
        channels: output image channels.
        latent_dim: size of w.
        startf: channels of the last (largest) block; doubles toward the start.
        maxf: channel cap.

    Reference: ALAE_SPEC.md section 5; Karras et al. 2019 (StyleGAN).
    """

    def __init__(self, resolution, channels, latent_dim, startf=32, maxf=256, **kwargs):
        super().__init__(resolution, channels, latent_dim, startf, maxf, **kwargs)
        self.num_styles = 2 * self.blocks
        self.block_channels = [
            min(self.maxf, self.startf * 2 ** (self.blocks - 1 - i)) for i in range(self.blocks)
        ]

        self.constant = LearnedConstant(self.block_channels[0], name="constant")
        self.upsample = Upsample2x(name="upsample")
        self.blur = Blur(name="blur")
        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")
        self.first_convs, self.second_convs = [], []
        self.noises, self.biases, self.modulations = [], [], []
        self.to_rgb = []
        for i, filters in enumerate(self.block_channels):
            resolution_i = 4 * 2**i
            if i == 0:
                self.first_convs.append(None)
            elif resolution_i >= FUSED_RESOLUTION:
                self.first_convs.append(
                    FusedUpsampleConv2D(filters, use_bias=False, name=f"block{i}_up_conv"))
            else:
                self.first_convs.append(
                    EqualizedConv2D(filters, 3, use_bias=False, name=f"block{i}_conv_1"))
            self.second_convs.append(
                EqualizedConv2D(filters, 3, use_bias=False, name=f"block{i}_conv_2"))
            for half in (1, 2):
                self.noises.append(NoiseInjection(name=f"block{i}_noise_{half}"))
                self.biases.append(Bias(name=f"block{i}_bias_{half}"))
                self.modulations.append(StyleModulation(filters, name=f"block{i}_style_{half}"))
            self.to_rgb.append(
                EqualizedConv2D(self.channels, 1, gain=0.03, name=f"to_rgb_{i}"))

    def build(self, input_shape=None):
        previous = None
        for i, filters in enumerate(self.block_channels):
            side = 4 * 2**i
            if i == 0:
                self.constant.build((None, self.latent_dim))
            elif side >= FUSED_RESOLUTION:
                self.first_convs[i].build((None, side // 2, side // 2, previous))
            else:
                self.first_convs[i].build((None, side, side, previous))
            self.second_convs[i].build((None, side, side, filters))
            for half in (0, 1):
                slot = 2 * i + half
                self.noises[slot].build((None, side, side, filters))
                self.biases[slot].build((None, side, side, filters))
                self.modulations[slot].build((None, side, side, filters),
                                             (None, self.latent_dim))
            self.to_rgb[i].build((None, side, side, filters))
            previous = filters
        self.built = True

    def noise_shapes(self, lod=None):
        """(H, W) of the noise of each half block used at ``lod``: 2 * (lod + 1) entries."""
        lod = _check_lod(lod, self.blocks)
        return [(4 * 2**i, 4 * 2**i) for i in range(lod + 1) for _ in range(2)]

    def _half(self, x, slot, w, noise):
        x = self.noises[slot](x, noise)
        x = self.activation(self.biases[slot](x))
        return self.modulations[slot](x, w[:, slot])

    def _block(self, i, x, w, noise):
        side = 4 * 2**i
        if i > 0:
            if side < FUSED_RESOLUTION:
                x = self.upsample(x)
            x = self.blur(self.first_convs[i](x))
        x = self._half(x, 2 * i, w, noise[2 * i] if noise else None)
        x = self.second_convs[i](x)
        return self._half(x, 2 * i + 1, w, noise[2 * i + 1] if noise else None)

    def call(self, w, lod=None, alpha=1.0, noise=None):
        lod = _check_lod(lod, self.blocks)
        if len(w.shape) == 2:  # one w for every style slot
            w = ops.repeat(w[:, None, :], self.num_styles, axis=1)  # [N, 2L, latent]
        x = self.constant(w)  # [N, 4, 4, C0]
        for i in range(lod + 1):
            previous = x
            x = self._block(i, x, w, noise)
        image = self.to_rgb[lod](x)
        if lod == 0 or (isinstance(alpha, float | int) and alpha == 1):
            return image
        faded = self.upsample(self.to_rgb[lod - 1](previous))
        return faded + ops.cast(alpha, image.dtype) * (image - faded)


@keras.saving.register_keras_serializable(package="alae_tf")
class StyleEncoder(_StyleLadder):
    """E: image -> w as the sum of every block's instance-statistics styles.

    Block i reads resolution R / 2^i with channels C_in = min(maxf, startf * 2^i) and writes
    C_out = min(maxf, startf * 2^(i+1)): conv 3x3 -> bias -> LeakyReLU -> style_1 = [mean, std]
    over H, W -> instance norm -> blur -> downsample (3x3 conv + 2x2 average pool below 128 px,
    a fused stride-2 conv from 128 px) -> bias -> LeakyReLU -> style_2 = [mean, std] ->
    instance norm. w += Dense(2 C_in -> latent)(style_1) + Dense(2 C_out -> latent)(style_2).
    The last block (4x4) ends, as in the reference code, in a Dense from the flattened 4x4 map
    to C_out instead of a downsampling conv, and its style_2 is that Dense's activation.
    Each block has a FromRGB 1x1 conv (+ LeakyReLU, applied twice as in the reference).

    call(x, lod=None, alpha=1.0): x is [N, 4 * 2^lod, 4 * 2^lod, C]. During a fade-in the new
    block's styles are scaled by ``alpha`` and its output is blended with FromRGB of the
    2x-downsampled image.

    Args:
        resolution: input side, 4 * 2^(L-1).
        channels: input image channels.
        latent_dim: size of w.
        startf: channels of the first (largest) block.
        maxf: channel cap.

    Reference: ALAE paper section 5 (the encoder's "multilinear map" of styles);
    ALAE_SPEC.md section 5.
    """

    def __init__(self, resolution, channels, latent_dim, startf=32, maxf=256, **kwargs):
        super().__init__(resolution, channels, latent_dim, startf, maxf, **kwargs)
        self.in_channels = [min(self.maxf, self.startf * 2**i) for i in range(self.blocks)]
        self.out_channels = [min(self.maxf, self.startf * 2 ** (i + 1))
                             for i in range(self.blocks)]

        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")
        self.statistics = InstanceStatistics(name="instance_statistics")
        self.blur = Blur(name="blur")
        self.pool = Downsample2x(name="pool")
        self.from_rgb, self.convs, self.downs = [], [], []
        self.biases_1, self.biases_2, self.styles_1, self.styles_2 = [], [], [], []
        last = self.blocks - 1
        for i, (c_in, c_out) in enumerate(zip(self.in_channels, self.out_channels, strict=True)):
            side = self.resolution // 2**i
            self.from_rgb.append(EqualizedConv2D(c_in, 1, name=f"from_rgb_{i}"))
            self.convs.append(EqualizedConv2D(c_in, 3, use_bias=False, name=f"block{i}_conv_1"))
            if i == last:
                self.downs.append(EqualizedDense(c_out, use_bias=False, name=f"block{i}_dense"))
            elif side >= FUSED_RESOLUTION:
                self.downs.append(
                    FusedDownsampleConv2D(c_out, use_bias=False, name=f"block{i}_down_conv"))
            else:
                self.downs.append(
                    EqualizedConv2D(c_out, 3, use_bias=False, name=f"block{i}_conv_2"))
            self.biases_1.append(Bias(name=f"block{i}_bias_1"))
            self.biases_2.append(Bias(name=f"block{i}_bias_2"))
            self.styles_1.append(EqualizedDense(self.latent_dim, name=f"block{i}_style_1"))
            self.styles_2.append(EqualizedDense(self.latent_dim, name=f"block{i}_style_2"))

    def build(self, input_shape=None):
        last = self.blocks - 1
        for i, (c_in, c_out) in enumerate(zip(self.in_channels, self.out_channels, strict=True)):
            side = self.resolution // 2**i
            self.from_rgb[i].build((None, side, side, self.channels))
            self.convs[i].build((None, side, side, c_in))
            self.biases_1[i].build((None, side, side, c_in))
            self.styles_1[i].build((None, 2 * c_in))
            if i == last:
                self.downs[i].build((None, side * side * c_in))
                self.biases_2[i].build((None, c_out))
                self.styles_2[i].build((None, c_out))
            else:
                self.downs[i].build((None, side, side, c_in))
                self.biases_2[i].build((None, side // 2, side // 2, c_out))
                self.styles_2[i].build((None, 2 * c_out))
        self.built = True

    def _from_rgb(self, i, x):
        # The reference applies the LeakyReLU twice (inside FromRGB and after it).
        return self.activation(self.activation(self.from_rgb[i](x)))

    def _block(self, i, x):
        """Returns (features for the next block or None, this block's contribution to w)."""
        side = self.resolution // 2**i
        x = self.activation(self.biases_1[i](self.convs[i](x)))
        x, style_1 = self.statistics(x)
        w = self.styles_1[i](style_1)
        if i == self.blocks - 1:
            flat = ops.reshape(x, (-1, side * side * self.in_channels[i]))
            h = self.activation(self.biases_2[i](self.downs[i](flat)))  # [N, C_out]
            return None, w + self.styles_2[i](h)
        x = self.downs[i](self.blur(x))
        if side < FUSED_RESOLUTION:
            x = self.pool(x)
        x = self.activation(self.biases_2[i](x))
        x, style_2 = self.statistics(x)
        return x, w + self.styles_2[i](style_2)

    def call(self, x, lod=None, alpha=1.0):
        lod = _check_lod(lod, self.blocks)
        first = self.blocks - 1 - lod
        features, w = self._block(first, self._from_rgb(first, x))
        if lod > 0 and not (isinstance(alpha, float | int) and alpha == 1):
            alpha = ops.cast(alpha, w.dtype)
            w = alpha * w
            previous = self._from_rgb(first + 1, self.pool(x))
            features = previous + alpha * (features - previous)
        for i in range(first + 1, self.blocks):
            features, w_i = self._block(i, features)
            w = w + w_i
        return w
