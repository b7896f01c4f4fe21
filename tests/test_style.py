"""StyleALAE networks: shapes per level of detail, fade-in, fused resampling, sizes."""

import numpy as np
import pytest
import tensorflow as tf
from helpers.layers import check_config_round_trip, check_layer

from alae_tf.models.style.networks import (
    EncoderBlock,
    GeneratorBlock,
    StyleEncoder,
    StyleGenerator,
    num_blocks,
)


def _tiny(cls, resolution=16, **kwargs):
    net = cls(resolution, 1, 8, startf=4, maxf=8, **kwargs)
    net.build()
    return net


def _randomise(net, seed=0):
    """Non-zero noise scales and biases, so that a test sees every term."""
    rng = np.random.default_rng(seed)
    net.set_weights([w + 0.1 * rng.normal(size=w.shape) for w in net.get_weights()])


def test_num_blocks():
    assert [num_blocks(r) for r in (4, 32, 256, 1024)] == [1, 4, 7, 9]
    with pytest.raises(ValueError, match="power of 2"):
        num_blocks(48)


@pytest.mark.parametrize("lod, side", [(0, 4), (1, 8), (2, 16)])
def test_generator_and_encoder_shapes_per_lod(lod, side):
    g, e = _tiny(StyleGenerator), _tiny(StyleEncoder)
    w = tf.random.normal((2, 8), seed=1)
    image = g(w, lod=lod)
    assert image.shape == (2, side, side, 1)
    assert e(image, lod=lod).shape == (2, 8)


def test_networks_follow_the_keras_contract():
    check_layer(_tiny(StyleGenerator), (2, 8), (2, 16, 16, 1), expected_num_weights=36)
    check_layer(_tiny(StyleEncoder), (2, 16, 16, 1), (2, 8), expected_num_weights=30)
    for cls in (StyleGenerator, StyleEncoder):
        net = _tiny(cls)
        clone = check_config_round_trip(net)
        clone.build()
        assert clone.count_params() == net.count_params()


def test_generator_fade_in_blends_with_the_previous_level():
    g = _tiny(StyleGenerator)
    _randomise(g)
    w = tf.random.normal((2, 8), seed=2)
    noise = [tf.random.normal((2, 4 * 2 ** (i // 2), 4 * 2 ** (i // 2), 1), seed=i)
             for i in range(6)]
    full = g(w, lod=2, alpha=1.0, noise=noise)
    np.testing.assert_allclose(g(w, lod=2, alpha=tf.constant(1.0), noise=noise), full, atol=1e-5)
    previous = np.asarray(g(w, lod=1, noise=noise[:4]))
    upsampled = previous.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_allclose(g(w, lod=2, alpha=0.0, noise=noise), upsampled, atol=1e-5)
    half = g(w, lod=2, alpha=tf.constant(0.5), noise=noise)
    np.testing.assert_allclose(half, 0.5 * (np.asarray(full) + upsampled), atol=1e-5)


def test_generator_noise_changes_the_image_only_through_its_scale():
    g = _tiny(StyleGenerator)
    w = tf.random.normal((1, 8), seed=3)
    # The noise scales start at 0: a fresh generator ignores the noise.
    np.testing.assert_allclose(g(w), g(w), atol=1e-6)
    _randomise(g)
    assert not np.allclose(g(w), g(w))


def test_generator_style_slots():
    g = _tiny(StyleGenerator)
    _randomise(g)
    w = tf.random.normal((2, 8), seed=4)
    zeros = [tf.zeros((2, 4 * 2 ** (i // 2), 4 * 2 ** (i // 2), 1)) for i in range(6)]
    per_slot = tf.repeat(w[:, None], g.num_styles, axis=1)
    np.testing.assert_allclose(g(w, noise=zeros), g(per_slot, noise=zeros), atol=1e-6)
    mixed = tf.concat([per_slot[:, :2], tf.zeros_like(per_slot[:, 2:])], axis=1)
    assert not np.allclose(g(mixed, noise=zeros), g(per_slot, noise=zeros))


def test_encoder_fade_in_blends_with_the_downsampled_image():
    e = _tiny(StyleEncoder)
    _randomise(e)
    x = tf.random.uniform((2, 16, 16, 1), seed=5)
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    np.testing.assert_allclose(e(x, lod=2, alpha=0.0), e(pooled, lod=1), atol=1e-5)
    np.testing.assert_allclose(e(x, lod=2, alpha=tf.constant(1.0)), e(x, lod=2), atol=1e-5)


def test_encoder_w_is_the_sum_of_block_contributions():
    e = _tiny(StyleEncoder)
    _randomise(e)
    x = tf.random.uniform((2, 16, 16, 1), seed=6)
    features, expected = e.blocks[0](e.blocks[0].from_rgb(x))
    for block in e.blocks[1:]:
        features, w_i = block(features)
        expected = expected + w_i
    # The last (4x4) block downsamples like every other, as the reference's EncoderDefault.
    assert features.shape == (2, 2, 2, 8)
    np.testing.assert_allclose(e(x), expected, atol=1e-5)


def test_checkpoint_paths_name_the_block_resolution():
    g, e = _tiny(StyleGenerator), _tiny(StyleEncoder)
    assert [b.name for b in g.blocks] == ["block_4x4", "block_8x8", "block_16x16"]
    assert [b.name for b in e.blocks] == ["block_16x16", "block_8x8", "block_4x4"]
    g_paths, e_paths = {v.path for v in g.weights}, {v.path for v in e.weights}
    for path in ("block_4x4/constant/constant", "block_16x16/conv0/kernel",
                 "block_16x16/conv1/kernel", "block_16x16/noise1/noise_scale",
                 "block_8x8/style0/style_dense/kernel", "block_8x8/to_rgb/kernel"):
        assert f"{g.name}/{path}" in g_paths, path
    for path in ("block_16x16/from_rgb/kernel", "block_16x16/conv0/kernel",
                 "block_4x4/conv1/kernel", "block_4x4/style1/kernel", "block_8x8/bias0/bias"):
        assert f"{e.name}/{path}" in e_paths, path


def _generator_block_params(side, c_in, c, channels, latent):
    total = 16 * c if side == 4 else 9 * c_in * c  # learned constant, or the upsampling conv
    total += 9 * c * c  # second conv, no bias
    total += 2 * (c + c)  # two noise scales, two biases
    total += 2 * (latent * 2 * c + 2 * c)  # two style Dense layers (AdaIN)
    return total + c * channels + channels  # ToRGB


def _encoder_block_params(c_in, c_out, channels, latent):
    total = channels * c_in + c_in  # FromRGB
    total += 9 * c_in * c_in + c_in  # conv + bias
    total += 2 * c_in * latent + latent  # style_0 Dense
    return total + 9 * c_in * c_out + c_out + 2 * c_out * latent + latent  # down conv, style_1


@pytest.mark.parametrize("side, c_in, c, channels, latent",
                         [(4, 8, 8, 1, 8), (8, 8, 4, 1, 8), (128, 16, 8, 3, 4)])
def test_generator_block_shapes_and_parameter_count(side, c_in, c, channels, latent):
    block = GeneratorBlock(side, c_in, c, channels, latent)
    block.build()
    assert block.count_params() == _generator_block_params(side, c_in, c, channels, latent)
    x = tf.random.normal((2, side // 2, side // 2, c_in), seed=1) if side > 4 else None
    styles = tf.random.normal((2, 2, latent), seed=2)
    features = block(styles if x is None else x, styles)
    assert features.shape == (2, side, side, c)
    assert block.to_rgb(features).shape == (2, side, side, channels)
    assert type(getattr(block, "conv0", None)).__name__ == (
        "NoneType" if side == 4 else "FusedUpsampleConv2D" if side >= 128 else "EqualizedConv2D")


@pytest.mark.parametrize("side, c_in, c_out, channels, latent",
                         [(4, 8, 8, 1, 8), (16, 4, 8, 1, 8), (128, 4, 8, 3, 4)])
def test_encoder_block_shapes_and_parameter_count(side, c_in, c_out, channels, latent):
    block = EncoderBlock(side, c_in, c_out, channels, latent)
    block.build()
    assert block.count_params() == _encoder_block_params(c_in, c_out, channels, latent)
    features = block.from_rgb(tf.random.uniform((2, side, side, channels), seed=3))
    assert features.shape == (2, side, side, c_in)
    out, w = block(features)
    assert out.shape == (2, side // 2, side // 2, c_out) and w.shape == (2, latent)
    assert type(block.conv1).__name__ == (
        "FusedDownsampleConv2D" if side >= 128 else "EqualizedConv2D")


def _expected_generator_params(resolution, channels, latent, startf, maxf):
    blocks = num_blocks(resolution)
    widths = [min(maxf, startf * 2 ** (blocks - 1 - i)) for i in range(blocks)]
    return sum(_generator_block_params(4 * 2**i, widths[i - 1] if i else c, c, channels, latent)
               for i, c in enumerate(widths))


def _expected_encoder_params(resolution, channels, latent, startf, maxf):
    return sum(_encoder_block_params(min(maxf, startf * 2**i), min(maxf, startf * 2 ** (i + 1)),
                                     channels, latent)
               for i in range(num_blocks(resolution)))


@pytest.mark.parametrize("config", [(16, 1, 8, 4, 8), (32, 1, 32, 64, 256), (64, 3, 16, 8, 32)])
def test_parameter_counts_match_the_architecture_formulas(config):
    g, e = StyleGenerator(*config), StyleEncoder(*config)
    g.build()
    e.build()
    assert g.count_params() == _expected_generator_params(*config)
    assert e.count_params() == _expected_encoder_params(*config)


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset_name",
    ["mnist_style", "mnist_style_small", "celeba128", "celeba_hq256", "bedroom256", "ffhq1024"],
)
def test_dry_run_prints_the_architecture_counts_of_every_preset(preset_name, capsys):
    from alae_tf.models.presets import get_preset
    from alae_tf.training import train

    p = get_preset(preset_name)
    config = (p.resolution, p.channels, p.latent_dim, p.startf, p.maxf)
    mapping = p.mapping_layers * (p.latent_dim**2 + p.latent_dim)
    discriminator = 2 * (p.latent_dim**2 + p.latent_dim) + p.latent_dim * 2 * p.latent_dim + (
        2 * p.latent_dim)
    assert train.main(["--preset", preset_name, "--dry-run"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for name, expected in (("mapping_f", mapping),
                           ("generator", _expected_generator_params(*config)),
                           ("encoder", _expected_encoder_params(*config)),
                           ("mapping_d", discriminator)):
        assert f"{expected:,d} parameters" in lines[name], (name, expected, lines[name])
