"""StyleALAE's image networks: the StyleGAN-like generator G and the style encoder E.

Both are ladders of one block layer per resolution. Block i of G makes resolution 4 * 2^i; the
encoder's blocks read the same resolutions from the top down. Progressive growing runs a
prefix of the ladder: at level of detail ``lod`` G stops at 4 * 2^lod pixels and E starts
there, and during a fade-in (``alpha`` < 1) the newest block is blended with the previous
level's output. ``lod`` is a Python int (the shapes depend on it, so each level is its own
trace); ``alpha`` may be a tensor.

Layer names follow the resolution, so checkpoint keys read like
``generator/block_16x16/conv1/kernel`` and ``encoder/block_8x8/style0/kernel``.

Reference: ALAE paper section 5 (StyleALAE); podgorskiy/ALAE net.py (generator and
EncoderDefault).
"""

import math

import keras
from keras import ops

from alae_tf.models.layers import EqualizedDense
from alae_tf.models.style.layers import (
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


def block_name(side):
    return f"block_{side}x{side}"


def _is_full(alpha):
    """True when ``alpha`` is the Python number 1 (no fade: skip the blend in the graph)."""
    return isinstance(alpha, float | int) and alpha == 1


@keras.saving.register_keras_serializable(package="alae_tf")
class GeneratorBlock(keras.layers.Layer):
    """One resolution of G: [upsample, conv, blur] and two AdaIN halves, plus a ToRGB.

    Each half is [conv] -> noise -> bias -> LeakyReLU 0.2 -> AdaIN with its own style slot. The
    4x4 block starts from a learned constant and has no first conv; later blocks upsample the
    previous block's features (nearest x2 + 3x3 conv below 128 px, a fused stride-2 transposed
    conv from 128 px) and blur them. The ToRGB (1x1 conv, gain 0.03) lets any level be the
    output.

    call(x, styles, noise=None):
        x: the previous block's features [N, side/2, side/2, in_channels]; for the 4x4 block,
            any tensor whose first axis is the batch (the constant replaces it).
        styles: [N, 2, latent], the block's two style slots.
        noise: None (drawn inside) or a pair of [N, side, side, 1] per-pixel noise tensors.
        Returns features [N, side, side, filters]; ``to_rgb(features)`` gives the image.

    Args:
        side: output resolution of the block.
        in_channels: channels of the previous block's features (ignored for the 4x4 block).
        filters: channels of this block.
        image_channels: channels of the ToRGB output.
        latent_dim: size of w.

    Reference: podgorskiy/ALAE net.py (generator blocks); Karras et al. 2019 (StyleGAN), Figure 1.
    """

    def __init__(self, side, in_channels, filters, image_channels, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.side = int(side)
        self.in_channels = int(in_channels)
        self.filters = int(filters)
        self.image_channels = int(image_channels)
        self.latent_dim = int(latent_dim)
        self.is_first = self.side == 4
        self.fused = self.side >= FUSED_RESOLUTION
        if self.is_first:
            self.constant = LearnedConstant(self.filters, name="constant")
        elif self.fused:
            self.conv0 = FusedUpsampleConv2D(self.filters, use_bias=False, name="conv0")
        else:
            self.upsample = Upsample2x(name="upsample")
            self.conv0 = EqualizedConv2D(self.filters, 3, use_bias=False, name="conv0")
        self.blur = Blur(name="blur")
        self.conv1 = EqualizedConv2D(self.filters, 3, use_bias=False, name="conv1")
        self.noise0, self.noise1 = (NoiseInjection(name=f"noise{h}") for h in (0, 1))
        self.bias0, self.bias1 = (Bias(name=f"bias{h}") for h in (0, 1))
        self.style0, self.style1 = (StyleModulation(self.filters, name=f"style{h}")
                                    for h in (0, 1))
        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")
        self.to_rgb = EqualizedConv2D(self.image_channels, 1, gain=0.03, name="to_rgb")

    def build(self, input_shape=None):
        features = (None, self.side, self.side, self.filters)
        if self.is_first:
            self.constant.build((None, self.latent_dim))
        elif self.fused:
            self.conv0.build((None, self.side // 2, self.side // 2, self.in_channels))
        else:
            self.conv0.build((None, self.side, self.side, self.in_channels))
        self.conv1.build(features)
        for noise, bias, style in ((self.noise0, self.bias0, self.style0),
                                   (self.noise1, self.bias1, self.style1)):
            noise.build(features)
            bias.build(features)
            style.build(features, (None, self.latent_dim))
        self.to_rgb.build(features)
        self.built = True

    def call(self, x, styles, noise=None):
        noise0, noise1 = noise if noise is not None else (None, None)
        if self.is_first:
            x = self.constant(x)  # [N, 4, 4, C]
        else:
            if not self.fused:
                x = self.upsample(x)
            x = self.blur(self.conv0(x))  # [N, side, side, C]
        x = self.style0(self.activation(self.bias0(self.noise0(x, noise0))), styles[:, 0])
        x = self.conv1(x)
        return self.style1(self.activation(self.bias1(self.noise1(x, noise1))), styles[:, 1])

    def get_config(self):
        return {**super().get_config(), "side": self.side, "in_channels": self.in_channels,
                "filters": self.filters, "image_channels": self.image_channels,
                "latent_dim": self.latent_dim}


@keras.saving.register_keras_serializable(package="alae_tf")
class EncoderBlock(keras.layers.Layer):
    """One resolution of E: two convs whose instance statistics become styles, and a downsample.

    conv 3x3 -> bias -> LeakyReLU -> style_0 = [mean, std] over H, W -> instance norm -> blur ->
    downsample (3x3 conv + 2x2 average pool below 128 px, a fused stride-2 conv from 128 px) ->
    bias -> LeakyReLU -> style_1 = [mean, std] -> instance norm. The block's contribution to w is
    Dense(2 C_in -> latent)(style_0) + Dense(2 C_out -> latent)(style_1). The 4x4 block is built
    the same way (it downsamples to 2x2), as in the reference's EncoderDefault. ``from_rgb``
    (1x1 conv + LeakyReLU, applied twice as in the reference) turns an image into the block's
    input features when the block is the first one run.

    call(x) with features x [N, side, side, in_channels] returns
    (features [N, side/2, side/2, out_channels], w contribution [N, latent]).

    Args:
        side: input resolution of the block.
        in_channels: channels of its input features.
        out_channels: channels after the downsampling conv.
        image_channels: channels of the images ``from_rgb`` reads.
        latent_dim: size of w.
        norm_epsilon: epsilon of the instance norms (``InstanceStatistics``).
        std_epsilon: epsilon of the std statistic; None: ``norm_epsilon``.

    Reference: ALAE paper section 5 (the encoder's "multilinear map" of styles);
    podgorskiy/ALAE net.py, EncoderDefault.
    """

    def __init__(self, side, in_channels, out_channels, image_channels, latent_dim,
                 norm_epsilon=1e-8, std_epsilon=None, **kwargs):
        super().__init__(**kwargs)
        self.norm_epsilon = float(norm_epsilon)
        self.std_epsilon = self.norm_epsilon if std_epsilon is None else float(std_epsilon)
        self.side = int(side)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.image_channels = int(image_channels)
        self.latent_dim = int(latent_dim)
        self.fused = self.side >= FUSED_RESOLUTION
        self.from_rgb_conv = EqualizedConv2D(self.in_channels, 1, name="from_rgb")
        self.conv0 = EqualizedConv2D(self.in_channels, 3, use_bias=False, name="conv0")
        if self.fused:
            self.conv1 = FusedDownsampleConv2D(self.out_channels, use_bias=False, name="conv1")
        else:
            self.conv1 = EqualizedConv2D(self.out_channels, 3, use_bias=False, name="conv1")
            self.pool = Downsample2x(name="pool")
        self.bias0, self.bias1 = Bias(name="bias0"), Bias(name="bias1")
        self.style0, self.style1 = (EqualizedDense(self.latent_dim, name=f"style{h}")
                                    for h in (0, 1))
        self.statistics = InstanceStatistics(self.norm_epsilon, self.std_epsilon,
                                             name="instance_statistics")
        self.blur = Blur(name="blur")
        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")

    def build(self, input_shape=None):
        side, half = self.side, self.side // 2
        self.from_rgb_conv.build((None, side, side, self.image_channels))
        self.conv0.build((None, side, side, self.in_channels))
        self.bias0.build((None, side, side, self.in_channels))
        self.style0.build((None, 2 * self.in_channels))
        self.conv1.build((None, side, side, self.in_channels))
        self.bias1.build((None, half, half, self.out_channels))
        self.style1.build((None, 2 * self.out_channels))
        self.built = True

    def from_rgb(self, image):
        return self.activation(self.activation(self.from_rgb_conv(image)))

    def call(self, x):
        x = self.activation(self.bias0(self.conv0(x)))
        x, style0 = self.statistics(x)
        x = self.conv1(self.blur(x))
        if not self.fused:
            x = self.pool(x)
        x = self.activation(self.bias1(x))
        x, style1 = self.statistics(x)
        return x, self.style0(style0) + self.style1(style1)

    def get_config(self):
        return {**super().get_config(), "side": self.side, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "image_channels": self.image_channels,
                "latent_dim": self.latent_dim, "norm_epsilon": self.norm_epsilon,
                "std_epsilon": self.std_epsilon}


class _StyleLadder(keras.Model):
    """What G and E share: the image size, the channel plan's constants and their config."""

    def __init__(self, resolution, channels, latent_dim, startf=32, maxf=256, **kwargs):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.latent_dim = int(latent_dim)
        self.startf = int(startf)
        self.maxf = int(maxf)
        self.num_blocks = num_blocks(self.resolution)
        self.image_shape = (self.resolution, self.resolution, self.channels)

    def check_lod(self, lod):
        """``lod`` as an int in [0, num_blocks); None means the full resolution."""
        lod = self.num_blocks - 1 if lod is None else int(lod)
        if not 0 <= lod < self.num_blocks:
            raise ValueError(f"lod must be in [0, {self.num_blocks - 1}], got {lod}")
        return lod

    def build(self, input_shape=None):
        for block in self.blocks:
            block.build()
        self.built = True

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
    """G: w -> image through a StyleGAN ladder of ``GeneratorBlock``s.

    Block i makes resolution 4 * 2^i with min(maxf, startf * 2^(L-1-i)) channels and uses style
    slots 2i and 2i + 1 (2L slots in all).

    call(w, lod=None, alpha=1.0, noise=None):
        w: [N, latent] (every slot gets the same w) or [N, 2L, latent] (per-slot w).
        lod: level of detail, output resolution 4 * 2^lod (default: the full resolution).
        alpha: fade-in weight of block ``lod``; the output is
            lerp(upsample(ToRGB_{lod-1}), ToRGB_lod, alpha).
        noise: None (drawn with tf.random.normal), or a list of 2 * (lod + 1) tensors
            [N, H, W, 1], one per half block (``noise_shapes(lod)``): the output is then a
            deterministic function of w.

    Args:
        resolution: output side, 4 * 2^(L-1).
        channels: output image channels.
        latent_dim: size of w.
        startf: channels of the last (largest) block; doubles toward the start.
        maxf: channel cap.

    Reference: podgorskiy/ALAE net.py (generator); Karras et al. 2019 (StyleGAN).
    """

    def __init__(self, resolution, channels, latent_dim, startf=32, maxf=256, **kwargs):
        super().__init__(resolution, channels, latent_dim, startf, maxf, **kwargs)
        self.num_styles = 2 * self.num_blocks
        widths = [min(self.maxf, self.startf * 2 ** (self.num_blocks - 1 - i))
                  for i in range(self.num_blocks)]
        self.blocks = [
            GeneratorBlock(4 * 2**i, widths[i - 1] if i else widths[0], filters, self.channels,
                           self.latent_dim, name=block_name(4 * 2**i))
            for i, filters in enumerate(widths)
        ]
        self.upsample = Upsample2x(name="upsample")

    def noise_shapes(self, lod=None):
        """(H, W) of the noise of each half block used at ``lod``: 2 * (lod + 1) entries."""
        lod = self.check_lod(lod)
        return [(4 * 2**i, 4 * 2**i) for i in range(lod + 1) for _ in range(2)]

    def call(self, w, lod=None, alpha=1.0, noise=None):
        lod = self.check_lod(lod)
        if len(w.shape) == 2:  # one w for every style slot
            w = ops.repeat(w[:, None, :], self.num_styles, axis=1)  # [N, 2L, latent]
        x = w
        for i, block in enumerate(self.blocks[:lod + 1]):
            previous = x
            x = block(x, w[:, 2 * i:2 * i + 2],
                      noise=None if noise is None else noise[2 * i:2 * i + 2])
        image = self.blocks[lod].to_rgb(x)
        if lod == 0 or _is_full(alpha):
            return image
        faded = self.upsample(self.blocks[lod - 1].to_rgb(previous))
        return faded + ops.cast(alpha, image.dtype) * (image - faded)


@keras.saving.register_keras_serializable(package="alae_tf")
class StyleEncoder(_StyleLadder):
    """E: image -> w as the sum of every ``EncoderBlock``'s instance-statistics styles.

    Block i reads resolution R / 2^i with C_in = min(maxf, startf * 2^i) channels (block 0:
    startf) and writes C_out = min(maxf, startf * 2^(i+1)).

    call(x, lod=None, alpha=1.0): x is [N, 4 * 2^lod, 4 * 2^lod, C]. During a fade-in the new
    block's styles are scaled by ``alpha`` and its output is blended with FromRGB of the
    2x-downsampled image (as the next block's input).

    Args:
        resolution: input side, 4 * 2^(L-1).
        channels: input image channels.
        latent_dim: size of w.
        startf: channels of the first (largest) block.
        maxf: channel cap.
        norm_epsilon: epsilon of the blocks' instance norms (the reference: 1e-5).
        std_epsilon: epsilon of their std statistics (the reference: 0); None:
            ``norm_epsilon``.

    Reference: ALAE paper section 5 (the encoder's "multilinear map" of styles);
    podgorskiy/ALAE net.py, EncoderDefault.
    """

    def __init__(self, resolution, channels, latent_dim, startf=32, maxf=256,
                 norm_epsilon=1e-8, std_epsilon=None, **kwargs):
        super().__init__(resolution, channels, latent_dim, startf, maxf, **kwargs)
        self.norm_epsilon = float(norm_epsilon)
        self.std_epsilon = self.norm_epsilon if std_epsilon is None else float(std_epsilon)
        # Block 0 reads startf channels even above maxf, as the reference's EncoderDefault.
        self.blocks = [
            EncoderBlock(self.resolution // 2**i,
                         min(self.maxf, self.startf * 2**i) if i else self.startf,
                         min(self.maxf, self.startf * 2 ** (i + 1)), self.channels,
                         self.latent_dim, self.norm_epsilon, self.std_epsilon,
                         name=block_name(self.resolution // 2**i))
            for i in range(self.num_blocks)
        ]
        self.pool = Downsample2x(name="pool")

    def call(self, x, lod=None, alpha=1.0):
        lod = self.check_lod(lod)
        first = self.num_blocks - 1 - lod
        features, w = self.blocks[first](self.blocks[first].from_rgb(x))
        if lod > 0 and not _is_full(alpha):
            alpha = ops.cast(alpha, w.dtype)
            w = alpha * w
            previous = self.blocks[first + 1].from_rgb(self.pool(x))
            features = previous + alpha * (features - previous)
        for block in self.blocks[first + 1:]:
            features, w_block = block(features)
            w = w + w_block
        return w

    def get_config(self):
        return {**super().get_config(), "norm_epsilon": self.norm_epsilon,
                "std_epsilon": self.std_epsilon}
