"""The metrics room: MNIST representation scores, FID, PPL, LPIPS and FLOPs."""
