"""Sources from TensorFlow Datasets: the ``image`` feature of a dataset, downloaded and
prepared on first use (needs a network)."""

import logging

from alae_tf.data.base import Source, decode_square
from alae_tf.errors import DataError, short_reason

_log = logging.getLogger(__name__)


def open_tfds(name, split, resolution, channels):
    """The split of tfds dataset ``name`` as a stream source, its images center-cropped and
    resized like a folder's. Fails before any download for an unknown name or split."""
    tfds = _import_tfds()
    # A name may carry a config and a version ("celeb_a/2.0.1", "mnist:3.*.*"); the registry
    # lists bare names. list_builders reads the installed package only: no network.
    base_name = name.split("/")[0].split(":")[0]
    if base_name not in tfds.list_builders(with_community_datasets=False):
        raise DataError(
            f"unknown tfds dataset {name!r}; see https://www.tensorflow.org/datasets/catalog "
            "for the names, or use 'folder:PATH'"
        )
    builder = _prepared_builder(tfds, name, split)
    features = builder.info.features
    if "image" not in features or not isinstance(features["image"], tfds.features.Image):
        raise DataError(
            f"tfds dataset {name!r} has no 'image' feature (it has: "
            f"{', '.join(features.keys())}); pick an image dataset"
        )

    def read_stream(shuffle, seed):
        return builder.as_dataset(
            split=split,
            shuffle_files=shuffle,
            # Encoded bytes are far smaller than pixels in the shuffle buffer; decoding
            # happens after the shuffle, in parallel.
            decoders={"image": tfds.decode.SkipDecoding()},
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        )

    def decode_example(features):
        return decode_square(features["image"], resolution, channels)

    return Source(spec=f"tfds:{name}", split=split,
                  num_examples=builder.info.splits[split].num_examples,
                  read_stream=read_stream, decode_example=decode_example)


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(
            f"'tfds:' sources need tensorflow-datasets, which does not import ({e}); "
            "pip install tensorflow-datasets"
        ) from None
    # tensorflow_datasets/__init__.py catches and logs its own import errors (for example a
    # protobuf / tensorflow-metadata version mismatch), leaving a module without its API.
    if not hasattr(tfds, "builder"):
        raise DataError(
            "tensorflow-datasets failed to initialise (its error is logged above); install "
            "versions of tensorflow-datasets, tensorflow-metadata and protobuf that match"
        )
    return tfds


def _prepared_builder(tfds, name, split):
    """The builder of ``name``, downloaded and prepared, with the split checked."""
    try:
        builder = tfds.builder(name)
        # Split names are known before the download for datasets with stored metadata: fail
        # before fetching gigabytes.
        if builder.info.splits:
            _check_tfds_split(name, split, builder.info.splits)
        builder.download_and_prepare()
    except DataError:
        raise
    except Exception as e:  # network, disk, checksum and parsing errors have many types
        _log.debug("preparing tfds dataset %r failed", name, exc_info=True)
        raise DataError(
            f"could not download/prepare tfds dataset {name!r} ({short_reason(e)}); check "
            "the network and disk space, or use 'folder:PATH' with the images on disk"
        ) from None
    _check_tfds_split(name, split, builder.info.splits)
    return builder


def _check_tfds_split(name, split, splits):
    if split not in splits:
        raise DataError(
            f"tfds dataset {name!r} has no {split!r} split (it has: "
            f"{', '.join(sorted(splits)) or 'none'}); use one of those"
        )
