"""The MLP-ALAE networks of the paper's MNIST experiment: E (image -> w) and G (w -> image).

Both use equalized Dense layers with lr_mul 1 (the reference's linear layers carry the same
run-time He scaling).
"""

import math

import keras
from keras import ops

from alae_tf.models.layers import EqualizedDense


@keras.saving.register_keras_serializable(package="alae_tf")
class MLPEncoder(keras.Model):
    """E: flattens an image and maps it to w through a stack of Dense layers.

    784 -> 1024 -> 1024 -> 50 for MNIST: LeakyReLU 0.2 after each hidden layer, LeakyReLU 0.01
    on the output. The activations of the last hidden layer are the "long" features of the
    paper's representation evaluation.

    Args:
        latent_dim: size of w (50).
        image_shape: (H, W, C) of the input images.
        hidden_units: widths of the hidden layers ((1024, 1024)).

    Reference: ALAE paper section 6.1 ("MNIST"); podgorskiy/ALAE branch mnist_ref, net.py.
    """

    def __init__(self, latent_dim, image_shape=(28, 28, 1), hidden_units=(1024, 1024), **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.hidden_layers = [
            EqualizedDense(units, name=f"dense_{i}") for i, units in enumerate(self.hidden_units)
        ]
        self.output_layer = EqualizedDense(self.latent_dim, name="dense_out")
        self.hidden_activation = keras.layers.LeakyReLU(0.2, name="lrelu_hidden")
        self.output_activation = keras.layers.LeakyReLU(0.01, name="lrelu_out")

    def build(self, input_shape=None):
        fan_in = math.prod(self.image_shape)
        for layer in self.hidden_layers:
            layer.build((None, fan_in))
            fan_in = layer.units
        self.output_layer.build((None, fan_in))
        self.built = True

    def features(self, x):
        """The last hidden layer's activations ("long" features): [N, H, W, C] -> [N, 1024]."""
        h = ops.reshape(x, (-1, math.prod(self.image_shape)))
        for layer in self.hidden_layers:
            h = self.hidden_activation(layer(h))
        return h

    def call(self, x):  # x: [N, H, W, C] -> w: [N, latent]
        return self.output_activation(self.output_layer(self.features(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "hidden_units": list(self.hidden_units),
        }


# G's output: the reference's linear one, or squashed into the data range.
OUTPUT_ACTIVATIONS = {"linear": lambda x: x, "sigmoid": ops.sigmoid, "tanh": ops.tanh}


@keras.saving.register_keras_serializable(package="alae_tf")
class MLPGenerator(keras.Model):
    """G: maps w to an image through a stack of Dense layers.

    50 -> 1024 -> 1024 -> 784 for MNIST, LeakyReLU 0.01 on the hidden layers and a linear
    output. The output is not clipped, as in the reference: pixels may leave the data range
    during training and are clipped only when turned into pictures. ``output_activation``
    "sigmoid" (data in [0, 1]) or "tanh" (data in [-1, 1]) keeps them inside it instead.

    Args:
        latent_dim: size of w (50).
        image_shape: (H, W, C) of the output images.
        hidden_units: widths of the hidden layers ((1024, 1024)).
        output_activation: "linear" (the reference), "sigmoid" or "tanh".

    Reference: ALAE paper section 6.1; podgorskiy/ALAE branch mnist_ref, net.py.
    """

    def __init__(self, latent_dim, image_shape=(28, 28, 1), hidden_units=(1024, 1024),
                 output_activation="linear", **kwargs):
        super().__init__(**kwargs)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)}, "
                             f"got {output_activation!r}")
        self.output_activation = output_activation
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.hidden_layers = [
            EqualizedDense(units, name=f"dense_{i}") for i, units in enumerate(self.hidden_units)
        ]
        self.output_layer = EqualizedDense(math.prod(self.image_shape), name="dense_out")
        self.hidden_activation = keras.layers.LeakyReLU(0.01, name="lrelu_hidden")

    def build(self, input_shape=None):
        fan_in = self.latent_dim
        for layer in self.hidden_layers:
            layer.build((None, fan_in))
            fan_in = layer.units
        self.output_layer.build((None, fan_in))
        self.built = True

    def call(self, w):  # w: [N, latent] -> x: [N, H, W, C]
        h = w
        for layer in self.hidden_layers:
            h = self.hidden_activation(layer(h))
        x = OUTPUT_ACTIVATIONS[self.output_activation](self.output_layer(h))
        return ops.reshape(x, (-1, *self.image_shape))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "hidden_units": list(self.hidden_units),
            "output_activation": self.output_activation,
        }
