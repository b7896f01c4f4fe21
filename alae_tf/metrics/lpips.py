"""LPIPS on VGG16 (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018; version 0.1), the distance of published perceptual path lengths.

Its weights are downloads (torchvision's ImageNet VGG16 and the LPIPS linear layers), so they
come from the user as one ``.npz`` file holding the state dict of the ``lpips`` package's
``LPIPS(net="vgg")`` under its own names (docs/metrics.md shows the one-line conversion):
``net.sliceK.I.weight`` / ``.bias`` for the 13 convolutions and ``linK.model.1.weight`` for the
five 1x1 layers.

The distance of two images: both go to [-1, 1], are shifted and scaled per channel, pass VGG16
to relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3; at each of those the features are divided by
their norm over channels, the squared difference is weighted per channel by the linear layer
and averaged over the image; the five averages are summed.
"""

import numpy as np

from alae_tf.errors import MetricError

# (slice, index in torchvision's vgg16.features) of the 13 convolutions, and a max-pool before
# slices 2 to 5.
_CONVS = ((1, 0), (1, 2), (2, 5), (2, 7), (3, 10), (3, 12), (3, 14), (4, 17), (4, 19), (4, 21),
          (5, 24), (5, 26), (5, 28))
_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
# LPIPS's ScalingLayer: the ImageNet statistics of inputs in [-1, 1].
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


def expected_shapes():
    """{key: shape} of the weights an LPIPS file must hold (PyTorch layouts)."""
    shapes = {}
    channels = 3
    for (block, index), width in zip(_CONVS, _WIDTHS, strict=True):
        shapes[f"net.slice{block}.{index}.weight"] = (width, channels, 3, 3)
        shapes[f"net.slice{block}.{index}.bias"] = (width,)
        channels = width
    for k, width in enumerate((64, 128, 256, 512, 512)):
        shapes[f"lin{k}.model.1.weight"] = (1, width, 1, 1)
    return shapes


class LPIPS:
    """The LPIPS distance (VGG16, version 0.1) with weights from an ``.npz`` file.

    Args:
        weights: {key: array} as ``expected_shapes`` lists (PyTorch layouts).
        batch_size: image pairs per call of the network.
    """

    def __init__(self, weights, batch_size=16):
        import tensorflow as tf

        shapes = expected_shapes()
        missing = sorted(set(shapes) - set(weights))
        if missing:
            raise MetricError(f"the LPIPS weights lack {len(missing)} tensors (first: "
                              f"{missing[0]}); give the state dict of lpips.LPIPS(net='vgg')")
        for key, shape in shapes.items():
            if tuple(np.shape(weights[key])) != shape:
                raise MetricError(f"LPIPS weight {key} has shape {tuple(np.shape(weights[key]))}, "
                                  f"expected {shape}")
        # PyTorch [out, in, kh, kw] -> TensorFlow [kh, kw, in, out].
        self.convs = [(block, tf.constant(np.transpose(weights[f"net.slice{block}.{i}.weight"],
                                                       (2, 3, 1, 0)), tf.float32),
                       tf.constant(weights[f"net.slice{block}.{i}.bias"], tf.float32))
                      for block, i in _CONVS]
        self.lins = [tf.constant(np.reshape(weights[f"lin{k}.model.1.weight"], (-1,)),
                                 tf.float32) for k in range(5)]
        self.batch_size = batch_size
        self._distance = tf.function(self._distance_graph)

    @classmethod
    def from_file(cls, path, **kwargs):
        """Reads the weights from an ``.npz`` file (no pickled objects are loaded)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = {key: data[key] for key in data.files}
        except (OSError, ValueError) as e:
            raise MetricError(f"cannot read LPIPS weights {path!r} ({e}); give an .npz of "
                              "lpips.LPIPS(net='vgg').state_dict() (docs/metrics.md)") from None
        return cls(weights, **kwargs)

    def _features(self, x):
        """The five normalised VGG16 activations of images in [-1, 1] ([N, H, W, 3])."""
        import tensorflow as tf

        x = (x - _SHIFT) / _SCALE
        out, block = [], 1
        for conv_block, kernel, bias in self.convs:
            if conv_block != block:  # a new slice: keep the last activation, then max-pool
                out.append(x)
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
                block = conv_block
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
        out.append(x)
        return [f / (tf.sqrt(tf.reduce_sum(f * f, axis=-1, keepdims=True)) + 1e-10)
                for f in out]

    def _distance_graph(self, a, b):
        import tensorflow as tf

        total = 0.0
        for fa, fb, lin in zip(self._features(a), self._features(b), self.lins, strict=True):
            total += tf.reduce_mean(tf.reduce_sum((fa - fb) ** 2 * lin, axis=-1), axis=[1, 2])
        return total

    def distance_tensors(self, a, b):
        """Differentiable distances ``[N]`` of RGB image tensors ``[N, H, W, 3]`` in [0, 1],
        for optimising through (``alae_tf.faces.photos.FacePipeline.refine``)."""
        return self._distance_graph(a * 2 - 1, b * 2 - 1)

    def __call__(self, a, b):
        """Distances ``[N]`` of image pairs ``[N, H, W, C]`` in [0, 1] (grey ones as RGB)."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if a.shape[-1] == 1:
            a, b = np.repeat(a, 3, axis=-1), np.repeat(b, 3, axis=-1)
        out = [self._distance(a[i:i + self.batch_size] * 2 - 1, b[i:i + self.batch_size] * 2 - 1)
               for i in range(0, len(a), self.batch_size)]
        return np.concatenate([np.asarray(o) for o in out])
