"""StyleALAE: the StyleGAN generator and the symmetric style encoder (paper section 4)."""
