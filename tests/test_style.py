"""StyleALAE networks: shapes per level of detail, fade-in, fused resampling, sizes."""

import numpy as np
import pytest
import tensorflow as tf
from layer_checks import check_config_round_trip, check_layer

from alae_tf.style import StyleEncoder, StyleGenerator, num_blocks


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
    features, expected = e._block(0, e._from_rgb(0, x))
    for i in (1, 2):
        features, w_i = e._block(i, features)
        expected = expected + w_i
    assert features is None
    np.testing.assert_allclose(e(x), expected, atol=1e-5)


def test_fused_resampling_from_128_pixels():
    g = StyleGenerator(128, 3, 4, startf=1, maxf=2)
    e = StyleEncoder(128, 3, 4, startf=1, maxf=2)
    g.build()
    e.build()
    assert type(g.first_convs[5]).__name__ == "FusedUpsampleConv2D"  # 128 px
    assert type(g.first_convs[4]).__name__ == "EqualizedConv2D"  # 64 px
    assert type(e.downs[0]).__name__ == "FusedDownsampleConv2D"  # reads 128 px
    assert type(e.downs[1]).__name__ == "EqualizedConv2D"  # reads 64 px
    image = g(tf.random.normal((1, 4), seed=7))
    assert image.shape == (1, 128, 128, 3)
    assert e(image).shape == (1, 4)


def _expected_generator_params(resolution, channels, latent, startf, maxf):
    blocks = num_blocks(resolution)
    widths = [min(maxf, startf * 2 ** (blocks - 1 - i)) for i in range(blocks)]
    total = 16 * widths[0]  # learned constant
    for i, c in enumerate(widths):
        total += 9 * widths[i - 1] * c if i else 0  # first (upsampling) conv, no bias
        total += 9 * c * c  # second conv
        total += 2 * (c + c)  # two noise scales, two biases
        total += 2 * (latent * 2 * c + 2 * c)  # two style Dense layers
        total += c * channels + channels  # ToRGB
    return total


def _expected_encoder_params(resolution, channels, latent, startf, maxf):
    blocks = num_blocks(resolution)
    total = 0
    for i in range(blocks):
        c_in, c_out = min(maxf, startf * 2**i), min(maxf, startf * 2 ** (i + 1))
        total += channels * c_in + c_in  # FromRGB
        total += 9 * c_in * c_in + c_in  # conv + bias
        total += 2 * c_in * latent + latent  # style_1 Dense
        if i == blocks - 1:
            total += 16 * c_in * c_out + c_out + c_out * latent + latent  # Dense, bias, style_2
        else:
            total += 9 * c_in * c_out + c_out + 2 * c_out * latent + latent
    return total


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
    from alae_tf.presets import get_preset
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
