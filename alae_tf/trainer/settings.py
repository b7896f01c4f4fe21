"""The settings of a training run, from plain arguments: the preset with checked field
overrides, and for a run directory that already holds a run, the recorded values of every
argument left out (what resuming means)."""

import dataclasses
import os

from alae_tf.errors import ConfigError, RunDirError
from alae_tf.models.presets import Preset, get_preset
from alae_tf.runs import RunSettings, recorded_run

DEFAULT_PRESET = "mnist_mlp"
# Preset fields that identify the preset rather than configure it.
_FIXED_FIELDS = ("name", "family")
_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
          tuple: "a JSON list"}


class FieldError(ConfigError):
    """A preset field override that names no field, or whose value has the wrong type.

    Args:
        field: the field's name.
        message: what is wrong and what the field takes.
    """

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


class OtherPreset(RunDirError):
    """A run directory that holds a run of another preset than the one asked for.

    Args:
        run_dir: the run directory.
        recorded: the name of the run's preset.
        asked: the name asked for.
    """

    def __init__(self, run_dir, recorded, asked):
        super().__init__(f"{run_dir!r} holds a {recorded} run, not {asked}")
        self.run_dir, self.recorded, self.asked = run_dir, recorded, asked


def settable_fields():
    """The names of the preset fields an override may set, sorted."""
    return sorted(f.name for f in dataclasses.fields(Preset) if f.name not in _FIXED_FIELDS)


def checked_fields(preset, overrides):
    """``overrides`` ({field: value}) made to fit the field types of ``preset``: a list becomes
    a tuple and an integer a float where the field is a float; anything else must already
    have the field's type.

    Raises:
        FieldError: an unknown field, or a value of another type, e.g. "r1_gamma takes a
            number (now 10.0), not 'abc'".
    """
    fields = settable_fields()
    checked = {}
    for key, value in overrides.items():
        if key not in fields:
            raise FieldError(key, f"{key!r} is not a preset field; the fields are "
                             f"{', '.join(fields)}")
        default = getattr(preset, key)
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            kind = _KINDS.get(type(default), "another type")
            raise FieldError(key, f"{key} takes {kind} (now {default!r}), not {value!r}")
        checked[key] = value
    return checked


def resolve_settings(run_dir=None, preset=None, fields=None, *, seed=None,
                     steps_per_epoch=None, keep_checkpoints=None, precision=None,
                     jit_compile=False, strategy="default", checkpoint_every=1, grid_every=5,
                     time_budget=None, verbose=2):
    """The ``RunSettings`` of a run asked for with these arguments.

    When ``run_dir`` holds a run with a checkpoint, the preset and every recorded setting
    left out (None) come from that run, so that the same call resumes it; otherwise from the
    named preset and the defaults. ``Trainer.run`` then refuses a recorded setting that
    changes.

    Args:
        run_dir: the run directory (default: ``runs/PRESET``).
        preset: a preset name (``alae_tf.models.presets.PRESETS``; default: the run's own,
            else ``DEFAULT_PRESET``).
        fields: {preset field: value} overrides (``checked_fields``), e.g. ``{"epochs": 3}``.
        seed: seed of weights, data order and training noise (default: the run's, else 0).
        steps_per_epoch: steps per epoch (default: the run's, else one pass over the data).
        keep_checkpoints: newest checkpoints kept, 0 for all (default: the run's, else 3).
        precision: "auto" or one of ``alae_tf.models.precision.PRECISIONS`` (default: the
            run's, else "auto": mixed_bfloat16 where the CPU computes it natively).
        jit_compile, strategy, checkpoint_every, grid_every, time_budget, verbose: as in
            ``RunSettings``.

    Returns:
        (settings, recorded): ``recorded`` is the run's recorded ``RunSettings`` (None for
        a new run).

    Raises:
        OtherPreset: ``preset`` names another preset than the run's.
        FieldError: an override that does not fit the preset.
    """
    run_dir = run_dir or os.path.join("runs", preset or DEFAULT_PRESET)
    recorded = recorded_run(run_dir)
    if recorded is not None and preset not in (None, recorded.preset.name):
        raise OtherPreset(run_dir, recorded.preset.name, preset)
    base = recorded.preset if recorded else get_preset(preset or DEFAULT_PRESET)
    chosen = dataclasses.replace(base, **checked_fields(base, fields or {}))
    previous = recorded or RunSettings(chosen, precision="auto")
    precision = precision or previous.precision
    settings = RunSettings(
        chosen, run_dir=run_dir,
        seed=previous.seed if seed is None else seed,
        steps_per_epoch=previous.steps_per_epoch if steps_per_epoch is None else steps_per_epoch,
        keep_checkpoints=(previous.keep_checkpoints if keep_checkpoints is None
                          else keep_checkpoints),
        precision=auto_precision(chosen.family) if precision == "auto" else precision,
        jit_compile=jit_compile, strategy=strategy, checkpoint_every=checkpoint_every,
        grid_every=grid_every, time_budget=time_budget, verbose=verbose)
    return settings, recorded


def auto_precision(family):
    """The compute precision "auto" stands for on this machine, for a model ``family``."""
    import tensorflow as tf

    from alae_tf.models.precision import default_precision

    return default_precision(bool(tf.config.list_physical_devices("GPU")), family)
