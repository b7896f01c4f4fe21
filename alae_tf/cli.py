"""The command-line kit every application uses: one-line errors, exit codes, flag validators,
and the quiet start of a console script.

Exit codes: 0 done; 2 a usage or data error (the user's input is wrong); 3 training diverged;
4 a multi-worker run lost a worker; 130 interrupted. Each failure is one line
``PROG: error: ...`` on stderr, never a traceback.

This module imports nothing heavy: ``alae-demo`` uses it without loading TensorFlow.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import warnings

from alae_tf.errors import (
    AlaeError,
    DataWarning,
    NotARunError,
    TrainingDiverged,
    WorkerLost,
    require_run_directory,
)

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
MAX_SEED = 2**31 - 1


class UsageError(Exception):
    """A bad flag value; exit status 2. The applications raise it, never the library (which
    raises ``alae_tf.errors.AlaeError`` kinds that the applications map)."""


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (``prog: error: ...``) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text, kind, words, accept):
    try:
        value = kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"must be {words}, got {text}")
    return value


def positive_int(text):
    return _number(text, int, "at least 1", lambda v: v >= 1)


def non_negative_int(text):
    return _number(text, int, "0 or more", lambda v: v >= 0)


def seed_int(text):
    """A seed: a whole number in [0, 2^31 - 1], what every RNG this project feeds accepts
    (Keras/NumPy take up to 2^32 - 1; the run adds the epoch to it for each data order)."""
    return _number(text, int, f"in [0, {MAX_SEED}]", lambda v: 0 <= v <= MAX_SEED)


def positive_float(text):
    return _number(text, float, "a positive finite number",
                   lambda v: 0 < v < float("inf"))


def unit_interval(text):
    return _number(text, float, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)


def add_verbose_flag(parser):
    """--verbose: TensorFlow's C++ start-up log lines, hidden by default (``quiet_tensorflow``)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ log lines (hidden unless this flag or "
                        "TF_CPP_MIN_LOG_LEVEL is given)")


@contextlib.contextmanager
def stderr_captured():
    """Sends file descriptor 2 to a temporary file; replays it if the block raises.

    C++ libraries write to the descriptor, not to ``sys.stderr``, so this catches what
    TensorFlow logs before its log level is read.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet_wanted(verbose, environ=None):
    """A console script starts quietly unless given --verbose or TF_CPP_MIN_LOG_LEVEL."""
    environ = os.environ if environ is None else environ
    return not verbose and LOG_LEVEL not in environ


def early_flags(argv=None):
    """(verbose, strategy) from ``argv``, read before an application builds its full parser,
    whose choices come from modules that load TensorFlow. ``--verbose 0`` (alae-train's Keras
    verbosity) asks for less output, so it counts as not verbose."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--verbose", nargs="?", const="1", default=None)
    parser.add_argument("--strategy", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.verbose not in (None, "0"), known.strategy


def quiet_tensorflow(verbose, first_op=True):
    """Configures a console-script process from its parsed flags: unless ``quiet_wanted`` says
    otherwise, sets TF_CPP_MIN_LOG_LEVEL=3 and imports TensorFlow with descriptor 2 captured, so
    that the dozen C++ lines TensorFlow prints while loading (some before its log level applies)
    stay hidden. Called by the applications' ``main``, never at import.

    Args:
        verbose: the --verbose flag.
        first_op: also run one op inside the capture (device set-up logs happen there). A
            multi-worker run passes False: its strategy must exist before any op.

    Returns:
        True when it quieted the process.
    """
    if not quiet_wanted(verbose):
        return False
    os.environ[LOG_LEVEL] = "3"
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    with stderr_captured():
        import tensorflow as tf

        if first_op:
            tf.constant(0)
    return True


# What every application adds to these library errors.
COMMON_HINTS = {NotARunError: "train one with alae-train --run-dir DIR"}


def hint_for(problem, hints):
    """The text ``hints`` holds for ``problem`` (a library error or warning), or None: a key is
    an error class (``isinstance``) or the name of the setting the problem is about (its
    ``setting`` attribute, e.g. "batch_size")."""
    setting = getattr(problem, "setting", None)
    for key, text in hints.items():
        if key == setting if isinstance(key, str) else isinstance(problem, key):
            return text
    return None


def run_main(prog, body, hints=None):
    """Runs ``body()`` and turns the project's expected failures into one line and an exit code
    (see the module docstring); checkpoints already written stay.

    Args:
        prog: the application's name, the line's prefix.
        body: the application's work; returns the exit status.
        hints: {library error class or setting name: text}: what the application adds to the
            library's message (and to a ``DataWarning``), e.g. the flag that sets the thing
            the message is about; ``COMMON_HINTS`` come after them.
    """
    hints = {**(hints or {}), **COMMON_HINTS}
    show_warning = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            hint = hint_for(message, hints)
            print(f"{prog}: warning: {message}{'; ' + hint if hint else ''}", file=sys.stderr,
                  flush=True)
        else:
            show_warning(message, category, filename, lineno, file, line)

    codes = ((TrainingDiverged, 3), (WorkerLost, 4), (UsageError, 2), (AlaeError, 2))
    warnings.showwarning = one_line
    try:
        return body()
    except tuple(kind for kind, _ in codes) as e:
        hint = hint_for(e, hints)
        print(f"{prog}: error: {e}{'; ' + hint if hint else ''}", file=sys.stderr)
        return next(code for kind, code in codes if isinstance(e, kind))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = show_warning


def refuse_a_missing_run(prog, run_dir):
    """The exit code of ``prog``'s one-line refusal when ``run_dir`` holds no run, else 0.
    Needs no TensorFlow: an application calls it before ``quiet_tensorflow``, so a wrong path
    costs no TensorFlow start-up."""
    return run_main(prog, lambda: require_run_directory(run_dir)) or 0
