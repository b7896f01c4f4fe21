"""The README's editable install, done by the pip that `python -m venv` bundles, gives working
console scripts.

That pip (23.2 with Python 3.11) installs `-e .` through the legacy `setup.py develop` when the
repository has no pyproject.toml, and that path drops setup.py's package_dir mapping
(training/ -> alae_tf.training, export/ -> alae_tf.export): every console script then dies with
"No module named 'alae_tf.training'". The test suite itself runs in a venv set up by whichever
pip it happened to have, so only a fresh venv with the bundled pip catches this.
"""

import ast
import ensurepip
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _console_scripts():
    """The script names setup.py declares, read from its source so this list cannot drift."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return [spec.split("=")[0].strip() for spec in ast.literal_eval(value)]
    raise AssertionError("setup.py declares no console_scripts")


CONSOLE_SCRIPTS = _console_scripts()


def _run(args, cwd, timeout=300):
    # The version self-check would reach for PyPI; the test must work offline.
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A new venv with its bundled pip and alae-tf installed editable, as the README does it."""
    work = tmp_path_factory.mktemp("packaging")
    venv = work / "venv"
    # The base interpreter, as the README's `python3 -m venv` uses: this test runs inside .venv.
    made = _run([sys._base_executable, "-m", "venv", str(venv)], cwd=work)
    assert made.returncode == 0, made.stdout + made.stderr
    python = venv / "bin" / "python"

    # Installing the ~3 GB lock would take minutes, so the fresh venv borrows this
    # environment's packages instead: a .pth line is appended to sys.path after the fresh
    # venv's own site-packages (its pip and setuptools still win), and .pth files inside the
    # borrowed directory are not processed, so this environment's own editable alae_tf hook
    # stays out.
    found = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=work
    )
    assert found.returncode == 0, found.stdout + found.stderr
    borrowed = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    (Path(found.stdout.strip()) / "borrowed-deps.pth").write_text("\n".join(borrowed) + "\n")

    # --no-build-isolation keeps the install offline: with isolation pip would download
    # setuptools from an index into a throwaway build environment. The PEP 660 path is still
    # the one taken, since pip chooses it from pyproject.toml's [build-system], not from
    # isolation. The build then uses the setuptools the fresh venv sees first (its bundled 65.5
    # on Python 3.11) and the borrowed `wheel`, which the lock installs too (astunparse needs it).
    # --no-index makes any attempt to reach an index fail at once instead of hanging.
    installed = _run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-e",
            str(ROOT),
        ],
        cwd=work,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


@pytest.mark.slow
@pytest.mark.system
def test_fresh_venv_keeps_the_bundled_pip(fresh_venv):
    # pip 25.3 and later take the PEP 660 path even without pyproject.toml, so an upgraded
    # pip would hide the bug.
    result = _run([str(fresh_venv / "bin" / "pip"), "--version"], cwd=fresh_venv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"pip {ensurepip.version()} from {fresh_venv}"), result.stdout


# Runs every console script of the fresh venv with --help in one interpreter (each would load
# TensorFlow in a process of its own): the script files themselves, as their shebang would.
_HELP_ALL = """
import contextlib, io, json, runpy, sys
results = {}
for path in sys.argv[1:]:
    out = io.StringIO()
    sys.argv = [path, "--help"]
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(path, run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code or 0
        except BaseException as e:
            code = repr(e)
    results[path] = [code, out.getvalue()]
print(json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.system
def test_console_scripts_print_usage(fresh_venv):
    scripts = [str(fresh_venv / "bin" / script) for script in CONSOLE_SCRIPTS]
    result = _run([str(fresh_venv / "bin" / "python"), "-c", _HELP_ALL, *scripts],
                  cwd=fresh_venv, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(result.stdout.strip().splitlines()[-1])
    for script in scripts:
        code, out = results[script]
        assert code == 0 and "usage:" in out, (script, code, out[-500:])
    # And one script started as a program, through its shebang line.
    direct = _run([str(fresh_venv / "bin" / "alae-demo"), "--help"], cwd=fresh_venv)
    assert direct.returncode == 0 and "usage:" in direct.stdout, direct.stdout + direct.stderr
