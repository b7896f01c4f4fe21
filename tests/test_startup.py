"""Console scripts start quietly: TensorFlow's C++ log lines only with --verbose or
TF_CPP_MIN_LOG_LEVEL; importing the library changes nothing; a failure while importing
TensorFlow still shows what it printed.

Only what this project controls is asserted (the environment it sets, the lines it prints),
never TensorFlow's own start-up lines, which differ between CPUs.
"""

import os
import subprocess
import sys

import pytest
from helpers import BIN

from alae_tf import cli


@pytest.mark.parametrize("argv, verbose, strategy", [
    (["--help"], False, None),
    (["runs/a"], False, None),
    (["--verbose", "2"], True, None),
    (["--verbose", "0"], False, None),  # alae-train's Keras verbosity 0: less output
    (["--verbose=0", "--epochs", "3"], False, None),
    (["r", "o", "--verbose"], True, None),
    (["r", "--verbose=1", "--strategy", "multi_worker"], True, "multi_worker"),
    (["--strategy=mirrored"], False, "mirrored"),
])
def test_early_flags(argv, verbose, strategy):
    assert cli.early_flags(argv) == (verbose, strategy)


def test_quiet_only_without_verbose_or_a_log_level():
    assert cli.quiet_wanted(False, {}) is True
    assert cli.quiet_wanted(True, {}) is False
    assert cli.quiet_wanted(False, {"TF_CPP_MIN_LOG_LEVEL": "0"}) is False


def test_quiet_tensorflow_sets_the_log_level_and_verbose_leaves_it(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.quiet_tensorflow(verbose=True) is False
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert cli.quiet_tensorflow(verbose=False) is True
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")  # the user's choice is kept
    assert cli.quiet_tensorflow(verbose=False) is False
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def _run(args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**environ, **env})


@pytest.mark.system
def test_importing_the_library_and_the_demo_changes_nothing():
    """No environment change, no TensorFlow, no descriptor games: importing alae_tf and the
    demo server (which never needs TensorFlow) leaves the process as it was."""
    code = ("import os, sys; before = dict(os.environ); "
            "import alae_tf, alae_tf.cli, alae_tf.errors, alae_tf.web_demo.server; "
            "print(dict(os.environ) == before, 'tensorflow' in sys.modules, "
            "'keras' in sys.modules)")
    result = _run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "False", "False"]
    assert result.stderr == ""


@pytest.mark.slow
@pytest.mark.system
def test_console_scripts_print_only_their_own_lines(tmp_path):
    result = _run([str(BIN / "alae-train"), "--help"])
    assert result.returncode == 0 and result.stdout.startswith("usage: alae-train")
    assert result.stderr == ""
    for script in ("alae-eval", "alae-sample"):
        result = _run([str(BIN / script), str(tmp_path / "none")])
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"{script}: error: {str(tmp_path / 'none')!r} is not a run directory (no "
            "config.json); train one with alae-train --run-dir DIR"]


def test_a_failure_inside_the_capture_is_replayed(capfd):
    with pytest.raises(RuntimeError), cli.stderr_captured():
        os.write(2, b"the C++ side said why\n")
        raise RuntimeError("import failed")
    assert "the C++ side said why" in capfd.readouterr().err
    with cli.stderr_captured():
        os.write(2, b"noise\n")
    assert "noise" not in capfd.readouterr().err
