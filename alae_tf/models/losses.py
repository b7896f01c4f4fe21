"""ALAE's loss terms as pure functions of tensors, one value per example.

Reduction over the batch is the caller's job: under tf.distribute each replica divides the sum
of its per-example values by the GLOBAL batch size, so that summing gradients over replicas
gives the gradient of the global mean.
"""

import tensorflow as tf


def discriminator_loss(real_logits, fake_logits):
    """Non-saturating logistic loss of D o E, per example.

    softplus(D(E(G(F(z))))) + softplus(-D(E(x)))   # -log(1 - sigmoid(fake)) - log(sigmoid(real))
    """
    return tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits)


def generator_loss(fake_logits):
    """Non-saturating generator loss, per example: softplus(-D(E(G(F(z)))))  # -log(sigmoid)."""
    return tf.nn.softplus(-fake_logits)


def r1_penalty(input_gradients, gamma):
    """R1 gradient penalty on real data, per example.

    (gamma / 2) * ||d D(E(x)) / d x||^2, the squared norm summed over every non-batch axis.
    Mescheder et al., "Which training methods for GANs do actually converge?", 2018.
    """
    axes = list(range(1, input_gradients.shape.rank))
    return 0.5 * gamma * tf.reduce_sum(tf.square(input_gradients), axis=axes)


def latent_reconstruction_loss(w_target, w_reconstructed):
    """Latent reconstruction error, per example: mean over features of (w - E(G(w)))^2."""
    return tf.reduce_mean(tf.square(w_target - w_reconstructed), axis=-1)
