"""Training data as tf.data pipelines of float image batches.

Three sources, named by a string (the ``dataset`` field of a preset):

- ``"mnist"``: the 10,000 MNIST digits embedded in the package (``assets/mnist.npz``, see
  ``assets/MNIST_PROVENANCE.md``), split 7,996 train / 2,004 test. Works offline
  (``alae_tf.data.mnist``).
- ``"tfds:NAME"``: the ``image`` feature of a TensorFlow Datasets dataset, downloaded and
  prepared on first use (needs a network; ``alae_tf.data.tfds``).
- ``"folder:PATH"``: every PNG, JPEG, BMP and GIF file below ``PATH``, each checked once
  (``alae_tf.data.folders``, ``alae_tf.data.image_checks``).

``open_source`` opens one split of a source as a ``Source`` (its number of images known,
its files checked) without building a pipeline; ``make_dataset`` builds the pipeline
(``alae_tf.data.pipeline``): shuffle, repeat, shard, batch, map to the pixel range, optional
flip and shift, prefetch. Images leave it as ``[B, H, W, C]`` float32 with no labels.
"""

from alae_tf.data.base import SPLITS, Source
from alae_tf.data.folders import DEFAULT_MAX_IMAGE_PIXELS, IMAGE_SUFFIXES
from alae_tf.data.mnist import load_embedded_mnist
from alae_tf.data.pipeline import make_dataset, shift_images
from alae_tf.data.sources import check_batch_size, open_source
from alae_tf.errors import DataError, DataWarning

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "DataError",
    "DataWarning",
    "Source",
    "check_batch_size",
    "load_embedded_mnist",
    "make_dataset",
    "open_source",
    "shift_images",
]
