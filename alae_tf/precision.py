"""Mixed precision: the Keras dtype policy the networks are built under.

``float32`` computes and stores everything in float32. ``mixed_bfloat16`` and
``mixed_float16`` compute every layer in the 16-bit type and keep the variables in float32
(Keras's mixed policies). Whatever the policy, the ALAE model keeps these in float32: D's
logits, the losses, R1's input gradient and penalty, the running average w and the EMA
weights (``alae_tf.model``). ``mixed_float16`` also wraps each optimizer in a
``keras.optimizers.LossScaleOptimizer``; bfloat16 has float32's exponent range and needs no
loss scaling.
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@contextlib.contextmanager
def policy_scope(precision):
    """Builds networks under ``precision`` (one of PRECISIONS) inside the block, then puts
    the previous global dtype policy back."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
