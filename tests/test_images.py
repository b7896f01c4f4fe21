"""Tests of alae_tf.images: uint8 conversion, grid geometry, PNG files."""

import os

import numpy as np
import pytest
from PIL import Image

from alae_tf import images


def test_to_uint8_maps_range_ends_and_clips():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 5.0], dtype=np.float32)
    out = images.to_uint8(x, pixel_range=(-1.0, 1.0))
    assert out.dtype == np.uint8
    # 0 sits at 127.5; rint rounds half to even.
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])


def test_to_uint8_default_range_keeps_shape():
    x = np.linspace(0.0, 1.0, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    out = images.to_uint8(x)
    assert out.shape == x.shape
    assert out.min() == 0 and out.max() == 255
    assert images.to_uint8(np.array([0.2]))[0] == 51  # 0.2 * 255


def test_to_uint8_rejects_empty_range():
    with pytest.raises(ValueError):
        images.to_uint8(np.zeros(3), pixel_range=(1.0, 1.0))


def test_make_grid_geometry_placement_and_padding():
    n, height, width, channels, ncols, pad = 5, 4, 6, 3, 3, 2
    # Image i is uniformly i / 10, so every cell can be identified by its value.
    x = np.broadcast_to(
        (np.arange(n) / 10.0)[:, None, None, None], (n, height, width, channels)
    ).copy()
    grid = images.make_grid(x, ncols=ncols, padding=pad, pad_value=7)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * (height + pad) + pad, ncols * (width + pad) + pad, channels)
    filled = np.zeros(grid.shape[:2], dtype=bool)
    for i in range(n):
        top = pad + (i // ncols) * (height + pad)
        left = pad + (i % ncols) * (width + pad)
        cell = grid[top : top + height, left : left + width]
        np.testing.assert_array_equal(cell, images.to_uint8(x[i]))
        filled[top : top + height, left : left + width] = True
    # Everything else, including the empty last cell, is padding.
    assert np.all(grid[~filled] == 7)
    assert np.sum(~filled) == grid.shape[0] * grid.shape[1] - n * height * width


def test_make_grid_single_channel_without_padding_is_a_tiling():
    x = np.random.default_rng(0).uniform(size=(4, 3, 5, 1))
    grid = images.make_grid(x, ncols=2, padding=0)
    u8 = images.to_uint8(x)
    expected = np.concatenate(
        [np.concatenate([u8[0], u8[1]], axis=1), np.concatenate([u8[2], u8[3]], axis=1)], axis=0
    )
    np.testing.assert_array_equal(grid, expected)


def test_make_grid_rejects_bad_channels():
    with pytest.raises(ValueError):
        images.make_grid(np.zeros((2, 4, 4, 2)), ncols=2)
    with pytest.raises(ValueError):
        images.make_grid(np.zeros((2, 4, 4)), ncols=2)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_png_round_trip(tmp_path, channels, mode):
    grid = np.random.default_rng(1).integers(0, 256, size=(9, 13, channels), dtype=np.uint8)
    path = tmp_path / "a" / "b" / "grid.png"
    images.save_png(path, grid)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == mode
        loaded = np.asarray(img)
    np.testing.assert_array_equal(loaded.reshape(grid.shape), grid)
    assert os.listdir(path.parent) == ["grid.png"]


def test_save_png_overwrites_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "grid.png"
    images.save_png(path, np.zeros((4, 4, 1), dtype=np.uint8))
    images.save_png(str(path), np.full((4, 4, 1), 200, dtype=np.uint8))
    with Image.open(path) as img:
        assert np.all(np.asarray(img) == 200)
    assert os.listdir(tmp_path) == ["grid.png"]


def test_save_png_failed_rename_keeps_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "grid.png"
    images.save_png(path, np.zeros((4, 4, 1), dtype=np.uint8))

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(images.os, "replace", failing_replace)
    with pytest.raises(OSError):
        images.save_png(path, np.full((4, 4, 1), 200, dtype=np.uint8))
    assert os.listdir(tmp_path) == ["grid.png"]
    with Image.open(path) as img:
        assert np.all(np.asarray(img) == 0)


def test_save_png_rejects_float():
    with pytest.raises(ValueError):
        images.save_png("unused.png", np.zeros((4, 4, 3), dtype=np.float32))


def test_side_by_side_interleaves_pairs_in_grid_columns():
    n = 3
    originals = np.full((n, 2, 2, 1), 0.0) + np.arange(n)[:, None, None, None] / 10.0
    reconstructions = originals + 0.5
    pairs = images.side_by_side(originals, reconstructions)
    assert pairs.shape == (2 * n, 2, 2, 1)
    np.testing.assert_array_equal(pairs[0::2], originals)
    np.testing.assert_array_equal(pairs[1::2], reconstructions)
    # With ncols 2 each grid row is one (original, reconstruction) pair.
    grid = images.make_grid(pairs, ncols=2, padding=0)
    np.testing.assert_array_equal(grid[2:4, 0:2], images.to_uint8(originals[1]))
    np.testing.assert_array_equal(grid[2:4, 2:4], images.to_uint8(reconstructions[1]))


def test_side_by_side_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        images.side_by_side(np.zeros((2, 4, 4, 1)), np.zeros((3, 4, 4, 1)))
