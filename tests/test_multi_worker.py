"""Multi-worker training: two alae-train processes on 127.0.0.1, each with its own TF_CONFIG
and one CPU device, train as one MultiWorkerMirroredStrategy.

What is checked: both workers end with identical weights (the same fingerprint); the chief
alone writes the run (config, checkpoints, grids, logs, model.keras) and the other worker's
temporary directory is gone at the end; the result matches one process (alae-train in the
test's own process) training on the same global batch (a StyleALAE through a level change, from
scratch; an MLP-ALAE's epoch resumed from a checkpoint); a worker killed mid-run makes the other
stop with one line, and restarting both resumes from the chief's newest checkpoint, where a
time budget stops both at the same epoch.

Tolerance against one process: the per-worker halves of a batch are summed in another order,
so weights differ by rounding, which Adam (beta_1 = 0) can turn into a sign: a parameter with
a gradient near 0 moves +lr or -lr. The test asks that at least 99.5% of all weight values
are within 1e-4 of the single process's after each level's step (measured: 100% for the
MLP-ALAE, largest difference 6e-6; 99.99% and 99.96% for the StyleALAE, largest 0.006), and
that the first step's logged losses agree to 1e-3 relative.
"""

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import BIN

from alae_tf.distribute import ClusterError, cluster_from_tf_config, is_chief_task
from alae_tf.training import train

# The tests that run worker processes on 127.0.0.1 are marked slow and system; the TF_CONFIG
# parsing tests are plain unit tests.

TIMEOUT = 300  # seconds for one worker process
MLP_ARGS = ["--preset", "mnist_mlp", "--set", "hidden_units=[64,64]", "--batch-size", "32",
            "--precision", "float32", "--verbose", "2", "--grid-every", "1"]
STYLE_ARGS = ["--preset", "mnist_style_small", "--set", "startf=8", "--set", "maxf=16",
              "--set", "epochs_per_lod=1", "--batch-size", "8", "--precision", "float32",
              "--verbose", "2"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(**extra):
    # One thread pool per worker: two workers share this 2-core machine.
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1", **extra}


def _start_workers(run_dir, args, tmp_path, tag):
    """Starts two workers of one cluster; returns their Popen objects (stdout+stderr to files)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        temp = tmp_path / f"tmp_{tag}_{index}"
        temp.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        log = open(tmp_path / f"{tag}_{index}.log", "w")  # noqa: SIM115 (closed by _finish)
        process = subprocess.Popen(
            [str(BIN / "alae-train"), "--strategy", "multi_worker", "--run-dir", str(run_dir),
             *args],
            stdout=log, stderr=subprocess.STDOUT, text=True,
            env=_env(TF_CONFIG=tf_config, TMPDIR=str(temp)))
        process.log, process.temp = log, temp
        workers.append(process)
    return workers


def _finish(workers, timeout=TIMEOUT):
    """Waits for every worker; returns [(exit code, output)]. Kills all on a timeout."""
    deadline = time.time() + timeout
    results = []
    try:
        for process in workers:
            process.wait(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        for process in workers:
            process.kill()
        for process in workers:
            process.wait()
        outputs = [Path(p.log.name).read_text()[-3000:] for p in workers]
        pytest.fail("a worker timed out:\n" + "\n----\n".join(outputs))
    for process in workers:
        process.log.close()
        results.append((process.returncode, Path(process.log.name).read_text()))
    return results


def _train_pair(run_dir, args, tmp_path, tag):
    results = _finish(_start_workers(run_dir, args, tmp_path, tag))
    for code, output in results:
        assert code == 0, output[-3000:]
    return [output for _, output in results]


def _single(run_dir, args):
    """One process on the same global batch: alae-train in this process (its default strategy:
    one device), its output as printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = train.main(["--run-dir", str(run_dir), *args])
    assert code == 0, printed.getvalue()[-3000:]
    return printed.getvalue()


def _fingerprint(output):
    found = re.findall(r"weights fingerprint ([0-9a-f]{16})", output)
    assert len(found) == 1, output[-2000:]
    return found[0]


def _first_epoch_losses(output):
    line = next(line for line in output.splitlines() if "loss/d:" in line)
    return {k: float(v) for k, v in re.findall(r"(loss/\w+): ([-0-9.e]+)", line)}


def _close_fraction(checkpoint_a, checkpoint_b, tolerance=1e-4):
    """(fraction of model weight values within ``tolerance``, the largest difference)."""
    a, b = tf.train.load_checkpoint(checkpoint_a), tf.train.load_checkpoint(checkpoint_b)
    close = total = 0
    largest = 0.0
    for name in a.get_variable_to_shape_map():
        if not name.startswith("variables/model"):
            continue
        x, y = a.get_tensor(name), b.get_tensor(name)
        if x.dtype.kind != "f" or not x.size:
            continue
        difference = np.abs(x.astype(np.float64) - y)
        close += int((difference <= tolerance).sum())
        total += difference.size
        largest = max(largest, float(difference.max()))
    assert total > 0
    return close / total, largest


def _assert_like_one_process(multi_dir, single_dir, multi_output, single_output, epoch):
    multi_losses, single_losses = (_first_epoch_losses(multi_output),
                                   _first_epoch_losses(single_output))
    assert multi_losses.keys() == single_losses.keys() and multi_losses
    for name, value in single_losses.items():
        assert multi_losses[name] == pytest.approx(value, rel=1e-3, abs=1e-3), name
    fraction, largest = _close_fraction(multi_dir / "checkpoints" / f"ckpt-{epoch}",
                                        single_dir / "checkpoints" / f"ckpt-{epoch}")
    print(f"epoch {epoch}: {fraction:.4%} of the weights within 1e-4, largest difference "
          f"{largest:.2g}")  # shown with pytest -s
    assert fraction >= 0.995, (fraction, largest)


# --- TF_CONFIG ---------------------------------------------------------------------------

def _config(cluster, task):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}


@pytest.mark.parametrize("environ, message", [
    ({}, "TF_CONFIG is not set"),
    ({"TF_CONFIG": "{cluster"}, "TF_CONFIG is not valid JSON"),
    ({"TF_CONFIG": "[]"}, "needs a \"cluster\" object"),
    (_config({"ps": ["a:1"]}, {"type": "ps", "index": 0}), "has no \"worker\" or \"chief\""),
    (_config({"worker": ["nohost"]}, {"type": "worker", "index": 0}), "host:port"),
    (_config({"worker": ["a:1"]}, {"type": "evaluator", "index": 0}), "task type 'evaluator'"),
    (_config({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 2}), "task index 2"),
    (_config({"worker": ["a:1"]}, {"type": "worker", "index": True}), "task index True"),
])
def test_a_bad_tf_config_is_named(environ, message):
    with pytest.raises(ClusterError, match=re.escape(message)):
        cluster_from_tf_config(environ)


def test_the_chief_is_the_chief_task_else_worker_0():
    task_type, index, cluster = cluster_from_tf_config(
        _config({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}))
    assert (task_type, index) == ("worker", 1)
    assert is_chief_task("worker", 0, cluster) and not is_chief_task("worker", 1, cluster)
    with_chief = {"chief": ["c:3"], "worker": ["a:1"]}
    assert is_chief_task("chief", 0, with_chief) and not is_chief_task("worker", 0, with_chief)


@pytest.mark.slow
@pytest.mark.system
def test_alae_train_without_tf_config_is_one_line_and_writes_nothing(tmp_path):
    env = _env()
    env.pop("TF_CONFIG", None)
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # as a user runs it: TensorFlow's start-up lines hidden
    result = subprocess.run(
        [str(BIN / "alae-train"), "--strategy", "multi_worker", "--run-dir",
         str(tmp_path / "run"), "--preset", "mnist_mlp"], capture_output=True, text=True,
        timeout=TIMEOUT, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "alae-train: error: --strategy multi_worker: TF_CONFIG is not set; every worker needs "
        "it, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
        "\"task\": {\"type\": \"worker\", \"index\": 0}}' (see docs/distributed.md)"]
    assert not (tmp_path / "run").exists()


# --- two workers -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def style_pair(tmp_path_factory):
    """(multi-worker run dir, single-process run dir, chief output, other output, single
    output, root): StyleALAE trained 2 epochs of 1 step (level 0, then the fade into 8 px) by
    two workers, and by one process."""
    root = tmp_path_factory.mktemp("style_pair")
    multi, single = root / "multi", root / "single"
    args = [*STYLE_ARGS, "--epochs", "2", "--steps-per-epoch", "1"]
    chief, other = _train_pair(multi, args, root, "style")
    return multi, single, chief, other, _single(single, args), root


@pytest.mark.slow
@pytest.mark.system
def test_two_workers_train_style_alae_through_a_level_change_as_one_process(style_pair):
    multi, single, chief, other, single_output, root = style_pair
    assert _fingerprint(chief) == _fingerprint(other)
    assert "worker 0 of 2 workers" in chief and "Next: alae-eval" in chief
    assert "the chief wrote the run's files" in other and "Next: alae-eval" not in other
    assert "\nepoch 2/2, " in chief and "\nepoch 2/2, " in other
    assert "level 1 (8 px)" in chief

    # The chief wrote the run; the other worker's temporary directory is gone.
    for name in ("config.json", "model.keras", "checkpoints/ckpt-2.index",
                 "checkpoints/progress.json", "samples", "logs"):
        assert (multi / name).exists(), name
    assert os.listdir(root / "tmp_style_1") == []
    assert json.loads((multi / "config.json").read_text())["preset"]["maxf"] == 16

    # Like one process on the global batch, at level 0 and after the level change.
    _assert_like_one_process(multi, single, chief, single_output, epoch=1)
    fraction, largest = _close_fraction(multi / "checkpoints" / "ckpt-2",
                                        single / "checkpoints" / "ckpt-2")
    print(f"level 1: {fraction:.4%} of the weights within 1e-4, largest difference "
          f"{largest:.2g}")
    assert fraction >= 0.995, (fraction, largest)


@pytest.mark.slow
@pytest.mark.system
def test_workers_that_see_different_run_directories_stop_before_training(style_pair, tmp_path):
    # A run directory that is not shared: the chief's holds checkpoints, worker 1's path
    # holds nothing. Both must stop with one line, and nothing is written on either side.
    run = tmp_path / "run"
    shutil.copytree(style_pair[0], run)  # trained to epoch 2
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index, run_dir in enumerate((run, tmp_path / "elsewhere")):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen(
            [str(BIN / "alae-train"), "--strategy", "multi_worker", "--run-dir", str(run_dir),
             *STYLE_ARGS, "--epochs", "3", "--steps-per-epoch", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(TF_CONFIG=tf_config)))
    for process in workers:
        _, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 2, stderr[-2000:]
        last = stderr.strip().splitlines()[-1]
        assert "the workers see different checkpoints" in last, stderr[-2000:]
        assert "(newest epoch by worker: 2, 0; 0 means none)" in last
        assert "Traceback" not in stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
@pytest.mark.system
def test_a_killed_worker_stops_the_other_and_both_resume_from_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [*MLP_ARGS, "--epochs", "4", "--steps-per-epoch", "5"]
    chief, other = _start_workers(run, args, tmp_path, "first")
    deadline = time.time() + TIMEOUT
    while not (run / "checkpoints" / "ckpt-1.index").exists():
        assert time.time() < deadline and chief.poll() is None and other.poll() is None, (
            Path(chief.log.name).read_text()[-3000:])
        time.sleep(0.1)
    other.send_signal(signal.SIGKILL)
    (chief_code, chief_output), (other_code, _) = _finish([chief, other])
    assert other_code == -signal.SIGKILL
    if chief_code != 0:  # it may have finished its epoch's collectives before the kill
        assert chief_code == 4, chief_output[-3000:]
        last = chief_output.strip().splitlines()[-1]
        assert last.startswith("alae-train: error: worker 0 of 2 workers: lost contact with "
                               "the other workers ("), last
        assert last.endswith(f"the checkpoints in {run} are kept: restart every worker with "
                             "the same command to resume from the newest"), last
        assert "Traceback" not in chief_output

    # The checkpoints the workers restart from, for one process to resume too.
    single = tmp_path / "single"
    shutil.copytree(run, single)

    # Both restarted with the same command and a time budget (0.001 minutes) that is over
    # during their first epoch: every worker resumes from the chief's newest checkpoint and
    # stops at the same epoch, with the same weights.
    chief, other = _train_pair(run, [*args, "--time-budget", "0.001"], tmp_path, "again")
    resumed = re.search(r"resuming \S+ from epoch (\d+)", chief)
    assert resumed and 1 <= int(resumed.group(1)) < 3, chief[-3000:]
    epoch = int(resumed.group(1)) + 1
    assert f"resuming {run} from epoch {epoch - 1}" in other
    for output in (chief, other):
        assert f"stopped after epoch {epoch} of 4" in output, output[-3000:]
    assert _fingerprint(chief) == _fingerprint(other)
    assert (run / "checkpoints" / f"ckpt-{epoch}.index").exists()
    assert (run / "model.keras").exists() and not list((run / "checkpoints").glob("*_temp"))

    # The MLP-ALAE's resumed epoch on two workers is one process's on the same global batch.
    single_output = _single(single, [*MLP_ARGS, "--epochs", str(epoch), "--steps-per-epoch", "5"])
    assert f"resuming {single} from epoch {epoch - 1}" in single_output
    _assert_like_one_process(run, single, chief, single_output, epoch=epoch)
