"""Run directories: the recorded config, checkpoints, and rebuilding a trained model.

A run directory holds::

    config.json        the preset (with flag overrides) and the run's settings
    checkpoints/       tf.train checkpoints: networks, EMA networks, step, average w,
                       both optimizers and the epoch counter
    logs/              TensorBoard logs (loss scalars, image grids)
    samples/           PNG grids written during training and by alae-sample
    model.keras        the trained model, written when training finishes
    metrics.json       written by alae-eval

Checkpoints are atomic: TensorFlow writes a checkpoint's files under a temporary name and only
then points the ``checkpoint`` index at it, so a process killed mid-save leaves the previous
checkpoint as the latest.
"""

import dataclasses
import json
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

from alae_tf.data import make_dataset
from alae_tf.errors import (
    RUN_CONFIG_NAME,
    CheckpointError,
    ConfigError,
    DataError,
    RunDirError,
    require_run_directory,
    short_reason,
    write_error_reason,
)
from alae_tf.models.alae import EMA_NETWORK_NAMES, NETWORK_NAMES, OPTIMIZER_NAMES
from alae_tf.models.presets import Preset, build_model

CONFIG_NAME = RUN_CONFIG_NAME
# Fields a resumed run may change: how long to train, how many checkpoints to keep, and the
# image-size limit of a folder source.
RESUMABLE_FIELDS = ("epochs", "keep_checkpoints", "max_image_pixels")
PROGRESS_NAME = "progress.json"
DEFAULT_KEEP_CHECKPOINTS = 3


class SettingChanged(RunDirError):
    """Settings that would change a recorded run instead of resuming it.

    Args:
        run_dir: the run directory.
        field: the first field that differs.
        before: its recorded value.
        after: the value asked for.
    """

    def __init__(self, run_dir, field, before, after):
        super().__init__(f"{run_dir!r} holds a run with {field}={before!r}, not {after!r}; "
                         "re-run with the same settings to resume")
        self.run_dir, self.field, self.before, self.after = run_dir, field, before, after


class RunDirNotWritable(RunDirError):
    """A run directory that cannot be created or written to.

    Args:
        path: the directory.
        reason: why, in a few words ("Permission denied").
    """

    def __init__(self, path, reason):
        super().__init__(f"cannot write to run directory {path!r} ({reason})")
        self.path, self.reason = path, reason


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything a training run is asked to do, resolved once from the caller's arguments,
    the recorded config and the preset (``alae_tf.trainer.resolve_settings``). ``config.json``
    records the preset and the fields up to ``precision``; the others belong to one run.

    Args:
        preset: the ``Preset``, with its field overrides applied.
        seed: seed of weights, data order and training noise.
        steps_per_epoch: training steps per epoch; None is one pass over the data.
        keep_checkpoints: newest checkpoints kept; 0 keeps every one.
        precision: compute precision (``alae_tf.models.precision.PRECISIONS``); runs recorded
            before it existed trained in float32.
        run_dir: the run directory.
        jit_compile: compile the training step with XLA.
        strategy: tf.distribute strategy name: default, mirrored or multi_worker.
        checkpoint_every: epochs between checkpoints.
        grid_every: epochs between image grids.
        time_budget: minutes of training after which the run stops at an epoch end, or None.
        verbose: Keras fit() verbosity (0, 1 or 2).
    """

    preset: Preset
    seed: int = 0
    steps_per_epoch: int | None = None
    keep_checkpoints: int = DEFAULT_KEEP_CHECKPOINTS
    precision: str = "float32"
    run_dir: str = ""
    jit_compile: bool = False
    strategy: str = "default"
    checkpoint_every: int = 1
    grid_every: int = 5
    time_budget: float | None = None
    verbose: int = 2

    def recorded(self):
        """The ``settings`` section of config.json."""
        return {"seed": self.seed, "steps_per_epoch": self.steps_per_epoch,
                "keep_checkpoints": self.keep_checkpoints, "precision": self.precision}

    def check_resumes(self, recorded):
        """Checks that these settings resume the run ``recorded`` (its ``RunSettings``): the
        same preset and settings, except the ``RESUMABLE_FIELDS``.

        Raises:
            SettingChanged: naming the first field that differs.
        """
        old = {"preset": recorded.preset.to_dict(), "settings": recorded.recorded()}
        new = {"preset": self.preset.to_dict(), "settings": self.recorded()}
        for section in ("preset", "settings"):
            for key in sorted(set(old[section]) | set(new[section])):
                if key in RESUMABLE_FIELDS:
                    continue
                before = json.loads(json.dumps(old[section].get(key)))
                after = json.loads(json.dumps(new[section].get(key)))
                if before != after:
                    raise SettingChanged(self.run_dir, key, before, after)


def ensure_writable_dir(path):
    """Creates the run directory ``path`` if needed and checks a file can be written in it.

    Raises:
        RunDirNotWritable: it cannot be created or written to.
    """
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_probe_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise RunDirNotWritable(path, e.strerror or e) from None


def write_json_atomic(path, payload):
    """Writes JSON through a temporary file and os.replace, so readers never see half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_config(run_dir):
    """The ``RunSettings`` recorded in ``run_dir`` (the fields config.json holds; settings
    an older run did not record take the values it ran with).

    Raises:
        RunDirError: no run there.
        ConfigError: an unreadable config.
    """
    require_run_directory(run_dir)
    path = os.path.join(run_dir, CONFIG_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
        preset = Preset(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in payload["preset"].items()})
        return RunSettings(preset, run_dir=run_dir, **payload.get("settings", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read {path} ({e}); it was not written by this project's "
                          "training run") from None


def recorded_run(run_dir):
    """The ``RunSettings`` that bind a resumed run in ``run_dir``, or None: a directory
    without config.json, or whose first attempt failed before a checkpoint, binds nothing."""
    if not os.path.isfile(os.path.join(run_dir, CONFIG_NAME)) or not has_checkpoints(run_dir):
        return None
    return read_config(run_dir)


def record_config(settings):
    """Writes ``settings.run_dir``/config.json: the preset and the recorded settings.

    Check a resumed run first with ``RunSettings.check_resumes``.
    """
    write_json_atomic(os.path.join(settings.run_dir, CONFIG_NAME),
                      {"preset": settings.preset.to_dict(), "settings": settings.recorded()})


def has_checkpoints(run_dir):
    """True when ``run_dir/checkpoints`` holds at least one checkpoint (damaged ones count)."""
    return bool(tf.io.gfile.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.index")))


class RunCheckpoint:
    """The model's full training state in ``run_dir/checkpoints``, with an epoch counter.

    Variables are stored under explicit names (``model/generator/block_8x8/conv1/kernel``,
    ``ed_optimizer/0003_...``, see ``named_variables``) rather than through TensorFlow's
    object graph, which does not follow the lists of layers inside Keras 3 networks.

    Args:
        model: an ``ALAE`` model; when compiled, its optimizers' state is included.
        run_dir: the run directory.
        max_to_keep: how many checkpoints to keep; None keeps all.
        read_dir: the run directory restores read from, when it is not ``run_dir``: a
            multi-worker run's other workers restore the chief's checkpoints and save
            their own (which every worker must do, in step) to a temporary directory.
    """

    def __init__(self, model, run_dir, max_to_keep=3, read_dir=None):
        self.progress = ProgressLog(run_dir)
        self.model = model
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(variables=named_variables(model), epoch=self.epoch)
        # Created now, not lazily by the first restore or save: under a multi-worker strategy
        # creating a variable is a collective step, which every worker must take in the same
        # order, and only workers that find a checkpoint restore one.
        _ = self.checkpoint.save_counter
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(run_dir, "checkpoints"), max_to_keep=max_to_keep,
            checkpoint_name="ckpt",
        )
        self._reader = self.manager
        if read_dir is not None and os.path.abspath(read_dir) != os.path.abspath(run_dir):
            # max_to_keep=None: a reader never deletes (it never saves either).
            self._reader = tf.train.CheckpointManager(
                self.checkpoint, os.path.join(read_dir, "checkpoints"), max_to_keep=None,
                checkpoint_name="ckpt",
            )

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def candidates(self):
        """Checkpoint prefixes on disk to restore from, newest first (the index's list, else
        the files)."""
        listed = list(self._reader.checkpoints)
        if not listed:  # a lost or damaged ``checkpoint`` index: find the files themselves
            found = tf.io.gfile.glob(os.path.join(self._reader.directory, "ckpt-*.index"))
            listed = sorted((f[:-len(".index")] for f in found), key=_checkpoint_number)
        return listed[::-1]

    def newest_number(self):
        """The number (epoch) of the newest checkpoint on disk, 0 if none; nothing is read."""
        candidates = self.candidates()
        return _checkpoint_number(candidates[0]) if candidates else 0

    def restore_latest(self, model_only=False, quarantine=False, warn=None):
        """Restores the newest checkpoint that reads completely; returns its epoch (0 if none).

        A checkpoint whose files are missing, truncated or unreadable, or whose weights are not
        finite (a run saved after it diverged), is skipped with one line
        to ``warn`` (stderr by default) naming it and the reason, and the next older one is
        tried. Damaged checkpoints are never deleted; with ``quarantine`` (a run about to
        train on, which would write the same checkpoint numbers again) their files are moved
        to ``checkpoints/damaged/``.

        Every variable of this checkpoint object must be found in the file; with
        ``model_only`` the file may hold more (optimizer state that inference does not need).
        The model's level of detail then follows its restored ``lod`` variable.

        Raises:
            CheckpointError: checkpoints exist but none of them reads completely.
        """
        warn = warn or _warn
        candidates = self.candidates()
        if not candidates:
            return 0
        damaged = []
        for path in candidates:
            reason = self._restore(path, model_only)
            if reason:
                damaged.append((path, reason))
                continue
            for bad, reason in damaged:
                moved = self._quarantine(bad) if quarantine and self._reader is self.manager else ""
                warn(f"skipped damaged checkpoint {os.path.basename(bad)} ({reason}){moved}; "
                     f"restored {os.path.basename(path)}")
            return int(self.epoch.numpy())
        details = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in damaged)
        raise CheckpointError(f"no checkpoint in {self._reader.directory} reads completely "
                         f"({details}); "
                         "the files were left in place")

    def _restore(self, path, model_only):
        """Restores checkpoint ``path``; returns None, or why it is damaged."""
        try:
            status = self.checkpoint.restore(path)
            if model_only:
                status.expect_partial()
                status.assert_existing_objects_matched()
            else:
                status.assert_consumed()
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as e:
            return short_reason(e, with_type=False)
        if not all(np.isfinite(v.numpy()).all() for v in self.model.weights):
            return "holds NaN or infinite weights"
        self.model.sync_level()
        return None

    def restore_each(self, warn=None):
        """Restores every readable checkpoint in turn, oldest first, for inference; yields
        each one's epoch. Damaged ones are skipped with one line to ``warn`` each."""
        warn = warn or _warn
        for path in self.candidates()[::-1]:
            reason = self._restore(path, model_only=True)
            if reason:
                warn(f"skipped damaged checkpoint {os.path.basename(path)} ({reason})")
                continue
            yield int(self.epoch.numpy())

    def _quarantine(self, prefix):
        """Moves a damaged checkpoint's files to checkpoints/damaged/; returns a note."""
        target = os.path.join(self.directory, "damaged")
        try:
            os.makedirs(target, exist_ok=True)
            for path in tf.io.gfile.glob(prefix + ".*"):
                os.replace(path, os.path.join(target, os.path.basename(path)))
        except OSError as e:
            return f", left in place ({e.strerror})"
        return ", moved to checkpoints/damaged/"

    @property
    def directory(self):
        return self.manager.directory

    def save(self, epoch):
        """Saves checkpoint ``epoch``.

        Raises:
            RunDirError: the write failed (a full disk, lost permissions); the previous
                checkpoint is intact and the half-written temporary folder is removed.
        """
        self.epoch.assign(epoch)
        try:
            return self.manager.save(checkpoint_number=epoch)
        except (tf.errors.OpError, OSError) as e:
            stale = self.remove_stale_temps()
            reason = write_error_reason(e)
            kept = (f"the newest checkpoint is still {os.path.basename(self.latest)}"
                    if self.latest else "no earlier checkpoint")
            left = f"; could not remove {', '.join(stale)}" if stale else ""
            raise RunDirError(f"cannot write checkpoint {epoch} in {self.directory} ({reason}); "
                             f"{kept}{left}: free some space and re-run the same command to "
                             "resume") from None

    def remove_stale_temps(self):
        """Removes ``ckpt-N_temp`` folders left by a save that died (kill -9, full disk).

        Returns the names of those that could not be removed.
        """
        left = []
        for path in tf.io.gfile.glob(os.path.join(self.directory, "*_temp")):
            shutil.rmtree(path, ignore_errors=True)
            if os.path.exists(path):
                left.append(os.path.basename(path))
        return left


class ProgressLog:
    """``checkpoints/progress.json``: for each checkpoint's epoch, the training step, the
    images seen and the wall-clock seconds of training until it (for learning curves).

    Only a record: a failed write is a warning, and runs without it still load.
    """

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, "checkpoints", PROGRESS_NAME)

    def read(self):
        """{epoch: {"step", "images_seen", "train_seconds"}}; empty when missing or damaged."""
        try:
            with open(self.path, encoding="utf-8") as f:
                return {int(k): v for k, v in json.load(f).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def record(self, epoch, step, images_seen, train_seconds):
        # Entries past ``epoch`` belong to an earlier life of the run that this one replaces.
        entries = {k: v for k, v in self.read().items() if k < epoch}
        entries[epoch] = {"step": int(step), "images_seen": int(images_seen),
                          "train_seconds": round(float(train_seconds), 1)}
        try:
            write_json_atomic(self.path, {str(k): v for k, v in sorted(entries.items())})
        except OSError as e:
            _warn(f"could not record progress in {self.path} ({e.strerror or e}); the "
                  "checkpoint is saved")


def _checkpoint_number(prefix):
    try:
        return int(prefix.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _warn(message):
    print(f"warning: {message}", file=sys.stderr)


def named_variables(model):
    """{checkpoint key: tf.Variable} for the model's state and, once compiled, its optimizers'.

    Keys name the network by its attribute (``model/generator/dense_0/kernel``), whatever the
    Keras names of the model and networks are; optimizer variables are keyed by their position
    in the optimizer, which follows the fixed order of the networks' variables.

    Raises:
        ValueError: two variables map to the same key.
    """
    entries = [(f"model/{name}", variable) for name, variable in model.state_variables.items()]
    for name in (*NETWORK_NAMES, *(f"{n}_ema" for n in EMA_NETWORK_NAMES)):
        for variable in model.network(name).weights:
            inner_path = variable.path.split("/", 1)[1]  # drop the network's own name
            entries.append((f"model/{name}/{inner_path}", variable))
    for name in OPTIMIZER_NAMES:
        optimizer = getattr(model, name)
        if optimizer is not None:
            entries += [(f"{name}/{i:04d}_{v.name}", v) for i, v in enumerate(optimizer.variables)]
    named = {}
    for key, variable in entries:
        if key in named:
            raise ValueError(f"two variables are both named {key!r}")
        named[key] = variable.value if isinstance(variable, keras.Variable) else variable
    return named


def load_trained_model(run_dir):
    """Rebuilds the model of ``run_dir`` and restores its latest checkpoint (for eval/sampling).

    Returns (model, preset, settings, epoch), ``settings`` the recorded ``RunSettings``.

    Raises:
        RunDirError: not a run directory, or no checkpoint yet.
        ConfigError: an unreadable config.
        CheckpointError: no checkpoint reads completely.
    """
    settings = read_config(run_dir)
    preset = settings.preset
    model = build_model(preset, seed=settings.seed)
    checkpoint = RunCheckpoint(model, run_dir)
    if not checkpoint.candidates():
        raise RunDirError(f"{run_dir!r} has no checkpoint yet; train at least one epoch first")
    epoch = checkpoint.restore_latest(model_only=True)
    return model, preset, settings, epoch


def held_out_images(preset, count, pool=4096):
    """``count`` real images in the model's pixel range, from the test split when there is one.

    Used for reconstruction grids and interpolations, so that they show images the model was
    not trained on whenever the data source allows it. The images are spread evenly over the
    first ``pool`` images of the split (the embedded MNIST splits are ordered by class).
    """
    def first_batch(split):
        dataset, _ = make_dataset(
            preset.dataset, resolution=preset.resolution, channels=preset.channels,
            batch_size=pool, pixel_range=preset.pixel_range, split=split, shuffle=False,
            repeat=False, drop_remainder=False, max_image_pixels=preset.max_image_pixels,
        )
        return np.asarray(next(iter(dataset)))

    try:
        images = first_batch("test")
    except DataError:  # e.g. a folder of images has only a train split
        images = first_batch("train")
    return images[np.linspace(0, len(images) - 1, count).round().astype(int)]
