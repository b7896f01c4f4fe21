"""The library's exceptions, and the one cleaner of TensorFlow's error text.

The library raises these (never the command-line kit's ``UsageError``); every application turns
them into one line and an exit status (``alae_tf.cli.run_main``). TensorFlow's own errors carry
graph debris around the sentence a user needs (``{{function_node ...}}`` prefixes, ``[Op:Name]``
suffixes, ``Detected at node`` traces, gRPC status dictionaries, the bracketed arguments of
``tf.debugging`` assertions); ``clean_message`` keeps the sentence. This module imports nothing
heavy, so that applications that never load TensorFlow (``alae-demo``) can use it."""

import os
import re


class AlaeError(Exception):
    """Base of the library's errors. ``str(e)`` is one line about the thing (a file, a run, a
    setting) and what to do about it, never about a command-line flag: the applications map
    each kind to an exit status and add the flag that sets the thing (``alae_tf.cli``).

    Args:
        message: the one line.
        setting: the name of the run setting or preset field the remedy changes (e.g.
            "batch_size"), for an application to name its flag; None when there is none.
    """

    def __init__(self, message="", setting=None):
        super().__init__(message)
        self.setting = setting


class ConfigError(AlaeError, ValueError):
    """A preset, a config file or a run setting whose values cannot be used."""


class CheckpointError(AlaeError):
    """A checkpoint file that cannot be read, is damaged, or does not fit the model."""


class RunDirError(AlaeError):
    """A run directory that cannot be used as asked: it holds another run, is trained past the
    requested epoch, or cannot be written."""


class NotARunError(RunDirError):
    """A directory that holds no run (no config.json): the applications say how to make one."""


# The file that makes a directory a run directory (alae_tf.runs writes and reads it).
RUN_CONFIG_NAME = "config.json"


def require_run_directory(run_dir):
    """Raises ``NotARunError`` unless ``run_dir`` holds a run's config file; needs no
    TensorFlow, so an application can refuse a wrong path before loading it."""
    if not os.path.isfile(os.path.join(run_dir, RUN_CONFIG_NAME)):
        raise NotARunError(f"{run_dir!r} is not a run directory (no {RUN_CONFIG_NAME})")


class DataError(AlaeError, ValueError):
    """Bad data or data settings. ``str(e)`` is one line naming the problem and what to do."""


class FaceError(AlaeError, ValueError):
    """A photo, a face in it, landmarks or attribute directions that cannot be used as asked
    (``alae_tf.faces``)."""


class MetricError(AlaeError, ValueError):
    """A metric that cannot be computed as asked: an unusable feature network or LPIPS file,
    too few images."""


class DataWarning(UserWarning):
    """Files of a data source that were skipped. ``str(w.message)`` is one line; ``setting``
    as for ``AlaeError`` (the limit that skipped them), or None."""

    def __init__(self, message="", setting=None):
        super().__init__(message)
        self.setting = setting


class TrainingDiverged(AlaeError):
    """Training met a non-finite loss and stopped without saving; exit status 3."""


class WorkerLost(AlaeError):
    """A multi-worker run lost contact with another worker; exit status 4."""


_DEBRIS = ("Graph execution error", "Detected at node", "<stack traces unavailable>")


def clean_message(error):
    """The user-facing text of an exception (TensorFlow's or any other), on one line.

    Drops ``{{function_node ...}}`` prefixes, ``[Op:Name]`` suffixes and what follows them,
    graph traces, and for collective failures keeps gRPC's own message. A failed
    ``tf.debugging.assert_*`` keeps its message and the values it printed, not its condition.
    """
    text = str(getattr(error, "message", None) or error)
    grpc = re.search(r'"grpc_message":"([^"]+)"', text)
    if grpc:
        return grpc.group(1)
    text = text.split("\n\t [[")[0]
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith(_DEBRIS)]
    message = re.sub(r"\s*\[Op:[^\]]*\].*$", "", " ".join(lines))
    if message.startswith("assertion failed: "):
        # "[our message] [Condition x > 0 did not hold] [x = ] [0]": our message and its values.
        groups = [g.strip() for g in re.findall(r"\[([^\[\]]*)\]", message) if g.strip()]
        if len(groups) > 1 and groups[1].startswith("Condition"):
            groups = groups[:1]
        message = " ".join(groups)
    return message


def short_reason(error, with_type=True, limit=160):
    """The first line of ``clean_message`` cut to ``limit`` characters, prefixed with the
    exception's type by default: the reason inside a one-line error such as "skipped damaged
    checkpoint (...)" (what follows a message's first line is detail: a traceback, a hint)."""
    text = str(getattr(error, "message", None) or error).strip()
    message = clean_message(text.splitlines()[0] if text else "")
    if not message:
        return type(error).__name__
    reason = f"{type(error).__name__}: {message}" if with_type else message
    return reason if len(reason) <= limit else reason[:limit - 3] + "..."


def write_error_reason(error):
    """Why a write failed, in a few words: "No space left on device", "Permission denied".

    Takes an OSError (its strerror) or a TensorFlow file error, whose message ends in
    "...; No space left on device [Op:SaveV2]".
    """
    text = getattr(error, "strerror", None) or clean_message(error)
    return text.strip().rsplit("; ", 1)[-1]
