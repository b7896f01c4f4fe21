"""The authors' trained models: reading podgorskiy/ALAE checkpoints and configs without PyTorch.

``torch_file`` reads the checkpoint files, ``config`` the YAML configs, and ``weights`` maps
the tensors onto this project's StyleALAE. ``alae-import`` (training/import_official.py) puts
them together into a run directory.
"""
