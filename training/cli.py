"""Command-line plumbing shared by the console scripts: one-line usage errors, validators."""

import argparse
import os
import re
import sys
import warnings


class UsageError(Exception):
    """A bad flag value or a run directory that cannot be used; exit status 2."""


class TrainingDiverged(Exception):
    """Training met a non-finite loss and stopped without saving; exit status 3."""


class WorkerLost(Exception):
    """A multi-worker run lost contact with another worker; exit status 4."""


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (``prog: error: ...``) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum, words):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {words}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "at least 1")
non_negative_int = _int_at_least(0, "0 or more")


MAX_SEED = 2**31 - 1


def seed_int(text):
    """A seed: a whole number in [0, 2^31 - 1], what every RNG this project feeds accepts
    (Keras/NumPy take up to 2^32 - 1; the run adds the epoch to it for each data order)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_SEED}], got {value}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def unit_interval(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def write_error_reason(error):
    """Why a write failed, in a few words: "No space left on device", "Permission denied".

    Takes an OSError (its strerror) or a TensorFlow file error, whose message ends in
    "...; No space left on device [Op:SaveV2]".
    """
    text = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
    return re.sub(r"\s*\[Op:\w+\]$", "", text.strip().rsplit("; ", 1)[-1])


def add_verbose_flag(parser):
    """--verbose: TensorFlow's C++ start-up log lines, hidden by default (alae_tf/_startup.py)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ log lines (hidden unless this flag or "
                        "TF_CPP_MIN_LOG_LEVEL is given)")


def ensure_writable_dir(path):
    """Creates ``path`` if needed and checks a file can be written in it."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_probe_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UsageError(
            f"cannot write to run directory {path!r} ({e.strerror or e}); choose another --run-dir"
        ) from None


def run_main(prog, body):
    """Runs ``body()`` and turns the project's expected failures into one line and an exit code.

    UsageError -> exit 2; alae_tf.data.DataError and FileNotFoundError -> exit 2 as well (the
    user's input is wrong); TrainingDiverged -> exit 3; WorkerLost -> exit 4;
    KeyboardInterrupt -> exit 130
    (checkpoints already written stay).
    """
    from alae_tf.data import DataError, DataWarning

    show_warning = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
        else:
            show_warning(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line
    try:
        return body()
    except (UsageError, DataError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 3
    except WorkerLost as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = show_warning
