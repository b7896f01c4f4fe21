"""Training entry points (installed as ``alae_tf.training``): alae-train, alae-eval, alae-sample."""
