"""The two latent-space networks shared by every ALAE family: F (z -> w) and D (w -> logit)."""

import keras
from keras import ops

from alae_tf import distribute
from alae_tf.models.layers import EqualizedDense, PixelNorm


@keras.saving.register_keras_serializable(package="alae_tf")
class MappingF(keras.Model):
    """F: maps a prior sample z to a point w of the learned latent space W.

    pixel_norm(z), then ``num_layers`` x [equalized Dense(latent -> latent) + LeakyReLU 0.2];
    the last layer keeps its activation, as in the reference. F also owns the running average
    of w and the truncation trick that pulls samples toward it.

    call(z, truncation_psi=None, update_w_avg=False):
        z: [N, latent] samples of N(0, 1).
        truncation_psi: None, or a scalar (float or tensor) or one value per example [N]:
            w <- w_avg + psi (w - w_avg) on the first ``truncation_cutoff`` style slots (on w
            itself without slots). A tensor psi traces once for every value; psi = 1 is the
            identity.
        update_w_avg: move the running average toward this batch's mean w,
            w_avg <- lerp(mean(w), w_avg, w_avg_decay), averaged over replicas (training).
        Returns w [N, latent], or [N, num_styles, latent] with the same w in every slot when
        ``num_styles`` > 0 (a style generator's input, ready for mixing and truncation).

    Args:
        latent_dim: size of z and w.
        num_layers: depth of the mapping (6 for MNIST MLP, 8 for the face presets).
        lr_mul: learning-rate multiplier of every layer (0.1 in the paper).
        num_styles: style slots of the generator it feeds (0: one w, no slot axis).
        w_avg_decay: decay of the running average w (0.995 per generated batch).
        truncation_cutoff: slots that truncation pulls toward the average w (the first 8 in
            StyleGAN); ignored when ``num_styles`` is 0.

    Reference: ALAE paper section 4; podgorskiy/ALAE net.py, MappingF; model.py (average w
    and truncation).
    """

    def __init__(self, latent_dim, num_layers, lr_mul=0.1, num_styles=0, w_avg_decay=0.995,
                 truncation_cutoff=8, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.num_layers = int(num_layers)
        self.lr_mul = float(lr_mul)
        self.num_styles = int(num_styles)
        self.w_avg_decay = float(w_avg_decay)
        self.truncation_cutoff = int(truncation_cutoff)
        self.pixel_norm = PixelNorm(name="pixel_norm")
        self.dense_layers = [
            EqualizedDense(self.latent_dim, lr_mul=self.lr_mul, name=f"dense_{i}")
            for i in range(self.num_layers)
        ]
        self.activation = keras.layers.LeakyReLU(0.2, name="lrelu")

    def build(self, input_shape=None):
        for layer in self.dense_layers:
            layer.build((None, self.latent_dim))
        # Not trained by an optimizer: written by update_w_avg, copied (not averaged) into
        # the EMA copy of F.
        self.w_avg = self.add_weight(
            name="w_avg", shape=(self.latent_dim,), initializer="zeros", trainable=False,
            aggregation="only_first_replica", autocast=False,  # float32 in mixed precision
        )
        self.built = True

    def call(self, z, truncation_psi=None, update_w_avg=False):
        w = self.pixel_norm(z)  # [N, latent]
        for layer in self.dense_layers:
            w = self.activation(layer(w))
        if update_w_avg:
            batch_mean = distribute.all_reduce_mean(
                ops.mean(ops.cast(ops.stop_gradient(w), "float32"), axis=0))
            # lerp(batch_mean, w_avg, decay)
            new_avg = batch_mean + self.w_avg_decay * (self.w_avg - batch_mean)
            distribute.assign_synced([self.w_avg], [new_avg])
        if self.num_styles:
            w = ops.repeat(w[:, None, :], self.num_styles, axis=1)  # [N, slots, latent]
        if truncation_psi is not None:
            w = self.truncate(w, truncation_psi)
        return w

    def truncate(self, w, truncation_psi):
        """w_avg + psi (w - w_avg), on the first ``truncation_cutoff`` slots when w has slots.

        ``truncation_psi`` is a scalar or one value per example ([N]).
        """
        psi = ops.cast(truncation_psi, w.dtype)
        if len(psi.shape) == 1:  # per example: [N] -> [N, 1] or [N, 1, 1]
            psi = ops.reshape(psi, (-1,) + (1,) * (len(w.shape) - 1))
        w_avg = ops.cast(self.w_avg, w.dtype)
        truncated = w_avg + psi * (w - w_avg)
        if not self.num_styles:
            return truncated
        slots = ops.arange(self.num_styles)[None, :, None]
        return ops.where(slots < self.truncation_cutoff, truncated, w)

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "num_layers": self.num_layers,
            "lr_mul": self.lr_mul,
            "num_styles": self.num_styles,
            "w_avg_decay": self.w_avg_decay,
            "truncation_cutoff": self.truncation_cutoff,
        }


def single_style(w):
    """The w behind an unmixed style tensor: w [N, latent] itself, or slot 0 of [N, slots, latent].

    The latent reconstruction target: without mixing every slot holds the same w.
    """
    return w if len(w.shape) == 2 else w[:, 0]


@keras.saving.register_keras_serializable(package="alae_tf")
class MappingD(keras.Model):
    """D: scores a latent code w; one column of the last layer (``logit_index``) is the logit.

    ``num_layers`` equalized Dense layers latent -> ... -> ``output_dim``. The reference has no
    activations between them (the authors call that a bug they kept so their published numbers
    stand), which makes D an affine map of w; ``use_activations=True`` inserts LeakyReLU 0.2.

    Args:
        latent_dim: size of w.
        num_layers: number of Dense layers (3 in every reference config).
        output_dim: width of the last layer (latent for MNIST, 2 * latent for StyleALAE); column
            ``logit_index`` is the logit.
        lr_mul: learning-rate multiplier (0.1).
        use_activations: put LeakyReLU 0.2 between the layers (off in the reference presets).
        logit_index: the output column that is the logit. The reference's StyleALAE D reads
            column ``latent`` of its 2 * latent outputs (``x[:, 0, x.shape[2] // 2]``), its
            MNIST MLP column 0; a D trained from scratch is the same in distribution either
            way, an imported one must read the reference's column.

    Reference: podgorskiy/ALAE net.py, MappingD.
    """

    def __init__(
        self, latent_dim, num_layers=3, output_dim=None, lr_mul=0.1, use_activations=False,
        logit_index=0, **kwargs,
    ):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.num_layers = int(num_layers)
        self.output_dim = int(output_dim or latent_dim)
        self.lr_mul = float(lr_mul)
        self.use_activations = bool(use_activations)
        self.logit_index = int(logit_index)
        if not 0 <= self.logit_index < self.output_dim:
            raise ValueError(f"logit_index must be in [0, {self.output_dim}), got {logit_index}")
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
        return x[:, self.logit_index]

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "num_layers": self.num_layers,
            "output_dim": self.output_dim,
            "lr_mul": self.lr_mul,
            "use_activations": self.use_activations,
            "logit_index": self.logit_index,
        }
