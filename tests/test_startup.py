"""Console scripts start quietly: TensorFlow's C++ log lines only with --verbose or
TF_CPP_MIN_LOG_LEVEL, and a failure while importing TensorFlow still shows what it printed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alae_tf._startup import stderr_captured, wants_quiet

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("argv, environ, quiet", [
    (["/x/bin/alae-train", "--help"], {}, True),
    (["/x/bin/alae-eval", "runs/a"], {}, True),
    (["/x/bin/alae-train", "--verbose", "2"], {}, False),
    (["/x/bin/alae-train", "--verbose", "0"], {}, True),  # Keras verbosity 0: less output
    (["/x/bin/alae-train", "--verbose=0", "--epochs", "3"], {}, True),
    (["/x/bin/alae-export", "r", "o", "--verbose"], {}, False),
    (["/x/bin/alae-sample", "r", "--verbose=1"], {}, False),
    (["/x/bin/alae-train"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, False),
    (["python", "-c", "import alae_tf"], {}, False),  # a library user: untouched
    ([], {}, False),
])
def test_who_gets_a_quiet_start(argv, environ, quiet):
    assert wants_quiet(argv, environ) is quiet


def _run(args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**environ, **env})


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


def test_verbose_or_a_log_level_shows_tensorflow_again(tmp_path):
    quiet = _run([str(BIN / "alae-eval"), str(tmp_path / "none")])
    loud = _run([str(BIN / "alae-eval"), str(tmp_path / "none"), "--verbose"])
    assert loud.returncode == quiet.returncode == 2
    # oneDNN's start-up line is printed by every CPU build of TensorFlow 2.19.
    assert "oneDNN" in loud.stderr and "oneDNN" not in quiet.stderr
    level = _run([str(BIN / "alae-eval"), str(tmp_path / "none")], TF_CPP_MIN_LOG_LEVEL="0")
    assert "oneDNN" in level.stderr


def test_a_failure_inside_the_capture_is_replayed(capfd):
    with pytest.raises(RuntimeError), stderr_captured():
        os.write(2, b"the C++ side said why\n")
        raise RuntimeError("import failed")
    assert "the C++ side said why" in capfd.readouterr().err
    with stderr_captured():
        os.write(2, b"noise\n")
    assert "noise" not in capfd.readouterr().err
