"""The two latent-space networks shared by every ALAE family: F (z -> w) and D (w -> logit)."""

import keras

from alae_tf.layers import EqualizedDense, PixelNorm


@keras.saving.register_keras_serializable(package="alae_tf")
class MappingF(keras.Model):
    """F: maps a prior sample z to a point w of the learned latent space W.

    pixel_norm(z), then ``num_layers`` x [equalized Dense(latent -> latent) + LeakyReLU 0.2];
    the last layer keeps its activation, as in the reference.

    Args:
        latent_dim: size of z and w.
        num_layers: depth of the mapping (6 for MNIST MLP, 8 for the face presets).
        lr_mul: learning-rate multiplier of every layer (0.1 in the paper).

    Reference: ALAE paper section 4; ALAE_SPEC.md section 1.
    """

    def __init__(self, latent_dim, num_layers, lr_mul=0.1, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.num_layers = int(num_layers)
        self.lr_mul = float(lr_mul)
        self.pixel_norm = PixelNorm(name="pixel_norm")
        self.dense_layers = [
            EqualizedDense(self.latent_dim, lr_mul=self.lr_mul, name=f"dense_{i}")
            for i in range(self.num_layers)
        ]
        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")

    def build(self, input_shape=None):
        for layer in self.dense_layers:
            layer.build((None, self.latent_dim))
        self.built = True

    def call(self, z):  # z: [N, latent] -> w: [N, latent]
        x = self.pixel_norm(z)
        for layer in self.dense_layers:
            x = self.activation(layer(x))
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "num_layers": self.num_layers,
            "lr_mul": self.lr_mul,
        }


@keras.saving.register_keras_serializable(package="alae_tf")
class MappingD(keras.Model):
    """D: scores a latent code w; only column 0 of the last layer is the logit.

    ``num_layers`` equalized Dense layers latent -> ... -> ``output_dim``. The reference has no
    activations between them (the authors call that a bug they kept so their published numbers
    stand), which makes D an affine map of w; ``use_activations=True`` inserts LeakyReLU 0.2.

    Args:
        latent_dim: size of w.
        num_layers: number of Dense layers (3 in every reference config).
        output_dim: width of the last layer (latent for MNIST, 2 * latent for StyleALAE); only
            column 0 is used.
        lr_mul: learning-rate multiplier (0.1).
        use_activations: put LeakyReLU 0.2 between the layers (off in the reference presets).

    Reference: ALAE_SPEC.md section 1.
    """

    def __init__(
        self, latent_dim, num_layers=3, output_dim=None, lr_mul=0.1, use_activations=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.num_layers = int(num_layers)
        self.output_dim = int(output_dim or latent_dim)
        self.lr_mul = float(lr_mul)
        self.use_activations = bool(use_activations)
        widths = [self.latent_dim] * (self.num_layers - 1) + [self.output_dim]
        self.dense_layers = [
            EqualizedDense(units, lr_mul=self.lr_mul, name=f"dense_{i}")
            for i, units in enumerate(widths)
        ]
        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")

    def build(self, input_shape=None):
        fan_in = self.latent_dim
        for layer in self.dense_layers:
            layer.build((None, fan_in))
            fan_in = layer.units
        self.built = True

    def call(self, w):  # w: [N, latent] -> logit: [N]
        x = w
        for i, layer in enumerate(self.dense_layers):
            x = layer(x)
            if self.use_activations and i < self.num_layers - 1:
                x = self.activation(x)
        return x[:, 0]

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "num_layers": self.num_layers,
            "output_dim": self.output_dim,
            "lr_mul": self.lr_mul,
            "use_activations": self.use_activations,
        }
