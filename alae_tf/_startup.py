"""Quiet start-up for the console scripts: TensorFlow's C++ log lines only when asked for.

On a CPU machine TensorFlow prints a dozen lines while it loads (CUDA, cuDNN, cuFFT and cuBLAS
factories, oneDNN, CPU instruction sets), several of them before its own log level applies.
``alae_tf/__init__.py`` calls ``quiet_tensorflow_startup()`` before anything imports
TensorFlow; it acts only in this project's console scripts, and not when the user set
``TF_CPP_MIN_LOG_LEVEL`` or passed ``--verbose``. This module imports nothing heavy.
"""

import contextlib
import os
import sys
import tempfile

CONSOLE_SCRIPTS = ("alae-train", "alae-eval", "alae-sample", "alae-export", "alae-serve",
                   "alae-demo")
LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_quiet = False


def is_quiet():
    """True when quiet_tensorflow_startup() acted (a console script without --verbose)."""
    return _quiet


def wants_quiet(argv, environ):
    """True for a console script run without --verbose and without TF_CPP_MIN_LOG_LEVEL."""
    if not argv or os.path.basename(argv[0]) not in CONSOLE_SCRIPTS:
        return False
    if LOG_LEVEL in environ:
        return False
    args = list(argv[1:])
    for i, arg in enumerate(args):
        # alae-train's --verbose takes a Keras verbosity; "--verbose 0" asks for less output.
        value = arg.split("=", 1)[1] if arg.startswith("--verbose=") else (
            args[i + 1] if arg == "--verbose" and i + 1 < len(args) else None)
        if (arg == "--verbose" or arg.startswith("--verbose=")) and value != "0":
            return False
    return True


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


def quiet_tensorflow_startup(argv=None, environ=None):
    """In a console script: TF_CPP_MIN_LOG_LEVEL=3, and TensorFlow imported with fd 2 captured.

    Returns True when it acted.
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if not wants_quiet(argv, environ):
        return False
    global _quiet
    _quiet = True
    environ[LOG_LEVEL] = "3"
    environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    with stderr_captured():
        import tensorflow as tf

        if not _wants_multi_worker(argv):
            # Device set-up logs (cuInit on a machine without a GPU) happen at the first op.
            # A multi-worker strategy must come before any op: alae-train creates it inside
            # stderr_captured() itself.
            tf.constant(0)
    return True


def _wants_multi_worker(argv):
    args = list(argv[1:])
    return any(arg == "--strategy=multi_worker" or (
        arg == "--strategy" and i + 1 < len(args) and args[i + 1] == "multi_worker")
        for i, arg in enumerate(args))
