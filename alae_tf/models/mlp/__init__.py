"""MLP-ALAE, the paper's MNIST family: fully connected E and G (paper section 5.1)."""
