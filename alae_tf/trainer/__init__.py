"""The training run as a library object: what alae-train calls, and what a notebook calls.

::

    from alae_tf.trainer import train
    result = train(preset="mnist_mlp_fast", run_dir="runs/x", epochs=3)
    result.model_path                               # runs/x/model.keras

or in two steps, with the settings in hand::

    from alae_tf.trainer import Trainer, resolve_settings
    settings, recorded = resolve_settings("runs/x", "mnist_mlp_fast", {"r1_gamma": 5.0})
    result = Trainer(settings).run()

The modules: ``settings`` (arguments -> ``RunSettings``, checked preset overrides), ``loop``
(the ``Trainer``: levels, checkpoints, resuming, the time budget, the final model.keras),
``roles`` (strategies and the multi-worker roles), ``callbacks`` (the Keras callbacks of a run).
"""

from alae_tf.trainer.loop import (
    BatchDoesNotSplit,
    EpochsGoBack,
    Trainer,
    TrainResult,
    UnbuildablePreset,
    architecture_lines,
    save_final_model,
    train,
)
from alae_tf.trainer.settings import (
    DEFAULT_PRESET,
    FieldError,
    OtherPreset,
    checked_fields,
    resolve_settings,
    settable_fields,
)

__all__ = ["DEFAULT_PRESET", "BatchDoesNotSplit", "EpochsGoBack", "FieldError", "OtherPreset",
           "TrainResult", "Trainer", "UnbuildablePreset", "architecture_lines",
           "checked_fields", "resolve_settings", "save_final_model", "settable_fields", "train"]
