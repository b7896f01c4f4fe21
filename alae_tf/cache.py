"""The user's cache folder: results that are slow to make and the same every time they are
made (the folder image checks of ``alae_tf.data``, the digit classifier of
``alae_tf.metrics``). ``$ALAE_TF_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/alae_tf`` or
``~/.cache/alae_tf``. Deleting it is always safe: what it held is made again when needed.
"""

import os
import pathlib


def cache_dir():
    """The cache folder (not created here)."""
    if os.environ.get("ALAE_TF_CACHE_DIR"):
        return pathlib.Path(os.environ["ALAE_TF_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "alae_tf"
