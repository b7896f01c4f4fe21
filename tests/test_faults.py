"""Faults met by long runs: a diverging run stops at the first non-finite loss with exit 3 and
keeps its last good checkpoint; non-finite checkpoints are skipped on restore and refused by
alae-eval; a failed first attempt does not bind the run directory; a damaged newest checkpoint
is walked past by the CLIs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from run_helpers import make_run

from alae_tf.training.callbacks import CheckpointCallback, NonFiniteGuard
from alae_tf.training.runs import RunCheckpoint, load_trained_model

BIN = Path(sys.executable).parent


def _cli(*args):
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _last_line(result):
    return result.stderr.strip().splitlines()[-1]


def test_a_diverging_first_run_stops_with_exit_3_and_binds_nothing(tmp_path):
    run = tmp_path / "run"
    result = _cli("alae-train", "--preset", "mnist_mlp", "--learning-rate", "1e6", "--epochs",
                  "3", "--steps-per-epoch", "5", "--run-dir", str(run))
    assert result.returncode == 3, result.stderr[-2000:]
    line = _last_line(result)
    assert line.startswith("alae-train: error: training diverged at step ")
    assert "stopped without saving (no checkpoint was written)" in line
    assert "Traceback" not in result.stderr and "done:" not in result.stdout
    assert not (run / "checkpoints").exists() and not (run / "model.keras").exists()
    # The corrected command is a new start, not a refused "settings change".
    again = _cli("alae-train", "--preset", "mnist_mlp", "--epochs", "1", "--steps-per-epoch",
                 "2", "--run-dir", str(run))
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run / "checkpoints" / "ckpt-1.index").exists()


def test_divergence_after_a_checkpoint_keeps_it_newest(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=1)
    model.compile()
    rng = np.random.default_rng(0)
    good = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    bad = np.full_like(good, np.nan)
    batches = tf.data.Dataset.from_tensor_slices(np.stack([good, good, good, bad]))
    checkpoint = RunCheckpoint(model, str(tmp_path))
    guard = NonFiniteGuard()
    model.fit(batches, epochs=2, steps_per_epoch=2, verbose=0, shuffle=False,
              callbacks=[guard, CheckpointCallback(checkpoint, guard=guard)])
    assert guard.tripped is not None
    step, epoch, name, value = guard.tripped
    assert (step, epoch) == (4, 2) and name.startswith("loss") and not np.isfinite(value)
    assert os.path.basename(checkpoint.latest) == "ckpt-1"  # epoch 2 was not saved
    restored = make_tiny_model(seed=2)
    restored.compile()
    assert RunCheckpoint(restored, str(tmp_path)).restore_latest() == 1
    assert all(np.isfinite(v.numpy()).all() for v in restored.weights)


def test_restore_skips_a_checkpoint_with_nan_weights(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=1)
    checkpoint = RunCheckpoint(model, str(tmp_path))
    checkpoint.save(1)
    kernel = model.generator.weights[0]
    kernel.assign(tf.fill(kernel.shape, np.nan))
    checkpoint.save(2)
    warnings = []
    fresh = make_tiny_model(seed=3)
    assert RunCheckpoint(fresh, str(tmp_path)).restore_latest(
        model_only=True, warn=warnings.append) == 1
    assert warnings == ["skipped damaged checkpoint ckpt-2 (holds NaN or infinite weights); "
                        "restored ckpt-1"]


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("faults") / "run", "mnist_mlp")


def test_eval_refuses_a_model_with_no_finite_checkpoint(mlp_run, tmp_path):
    run = tmp_path / "nan_run"
    shutil.copytree(mlp_run, run)
    model, _, _, _ = load_trained_model(str(run))
    for v in model.encoder.weights:
        v.assign(tf.fill(v.shape, np.inf))
    RunCheckpoint(model, str(run)).save(1)  # overwrite the only checkpoint with inf weights
    for script in ("alae-eval", "alae-sample", "alae-export"):
        args = [script, str(run)] + ([str(tmp_path / "out")] if script == "alae-export" else [])
        result = _cli(*args)
        assert result.returncode == 2, (script, result.stderr[-2000:])
        line = _last_line(result)
        assert line.startswith(f"{script}: error: no checkpoint in ")
        assert "ckpt-1: holds NaN or infinite weights" in line and "Traceback" not in result.stderr


def test_clis_walk_past_a_truncated_newest_checkpoint(mlp_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    model, _, _, _ = load_trained_model(str(run))
    RunCheckpoint(model, str(run)).save(2)
    data = run / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:64])
    result = _cli("alae-export", str(run), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: skipped damaged checkpoint ckpt-2 (" in result.stderr
    assert "epoch 1" in result.stdout
    # Training on moves the damaged files aside and saves epoch 2 anew.
    result = _cli("alae-train", "--preset", "mnist_mlp", "--epochs", "2", "--steps-per-epoch",
                  "2", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "moved to checkpoints/damaged/" in result.stderr
    assert (run / "checkpoints" / "damaged" / "ckpt-2.data-00000-of-00001").stat().st_size == 64
    assert RunCheckpoint(model, str(run)).restore_latest(model_only=True) == 2
