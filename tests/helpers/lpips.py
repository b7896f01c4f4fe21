"""Seeded random LPIPS weights and image pairs, shared by the test and by the script that
computed tests/data/lpips_reference.json with the lpips package (the real weights are
downloads). Imports numpy only, so that script can run where TensorFlow is not installed."""

import numpy as np

from alae_tf.metrics.lpips import expected_shapes


def random_lpips_weights(seed=0):
    """He-normal convolutions, small biases, non-negative linear layers (as trained ones are)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in expected_shapes().items():
        if key.startswith("lin"):
            weights[key] = rng.uniform(0.0, 1.0, shape).astype(np.float32)
        elif key.endswith("bias"):
            weights[key] = rng.normal(0.0, 0.05, shape).astype(np.float32)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            weights[key] = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    return weights


def reference_inputs(seed=1, n=4, side=32):
    """Pairs of RGB images in [0, 1]: the second a perturbed copy of the first, growing."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 1.0, (n, side, side, 3)).astype(np.float32)
    noise = rng.normal(0.0, 1.0, a.shape).astype(np.float32)
    scale = np.linspace(0.02, 0.3, n, dtype=np.float32)[:, None, None, None]
    return a, np.clip(a + scale * noise, 0.0, 1.0)
