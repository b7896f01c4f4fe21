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
from alae_tf.training.cli import UsageError
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


def test_a_full_disk_at_a_save_is_one_error_and_keeps_the_last_checkpoint(
        make_tiny_model, tmp_path, monkeypatch):
    model = make_tiny_model(seed=1)
    checkpoint = RunCheckpoint(model, str(tmp_path))
    checkpoint.save(1)
    temp = tmp_path / "checkpoints" / "ckpt-2_temp"

    def full_disk(**kwargs):  # what SaveV2 raises on ENOSPC, after starting its temp folder
        temp.mkdir()
        (temp / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(b"half")
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{temp}/part-00000-of-00001.data; No space left on device [Op:SaveV2]")

    monkeypatch.setattr(checkpoint.manager, "save", full_disk)
    with pytest.raises(UsageError) as error:
        checkpoint.save(2)
    assert str(error.value) == (
        f"cannot write checkpoint 2 in {tmp_path / 'checkpoints'} (No space left on device); "
        "the newest checkpoint is still ckpt-1: free some space and re-run the same command "
        "to resume")
    assert not temp.exists()
    assert RunCheckpoint(make_tiny_model(seed=2), str(tmp_path)).restore_latest(
        model_only=True) == 1


def test_stale_temporary_checkpoint_folders_are_removed(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=1)
    checkpoint = RunCheckpoint(model, str(tmp_path))
    checkpoint.save(1)
    (tmp_path / "checkpoints" / "ckpt-2_temp").mkdir()  # a save killed by kill -9
    assert checkpoint.remove_stale_temps() == []
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]


def test_a_full_disk_at_model_keras_leaves_no_half_file(make_tiny_model, tmp_path, monkeypatch):
    from alae_tf.training.train import _save_final_model

    model = make_tiny_model(seed=1)
    model(np.zeros((1, 8, 8, 1), "float32"))

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    with pytest.raises(UsageError, match=r"model.keras \(No space left on device\); the "
                                         r"checkpoints are saved"):
        _save_final_model(model, str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_resume_keeps_omitted_flags_and_names_the_preset(mlp_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)  # mnist_mlp, trained to epoch 1 with --steps-per-epoch 2
    result = _cli("alae-train", "--run-dir", str(run), "--epochs", "2", "--verbose", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 steps of 128 images" in result.stdout  # the run's own steps per epoch
    assert (run / "checkpoints" / "ckpt-2.index").exists()

    result = _cli("alae-train", "--run-dir", str(run), "--preset", "mnist_style_small")
    assert result.returncode == 2
    assert _last_line(result) == (
        f"alae-train: error: {str(run)!r} holds a mnist_mlp run, not mnist_style_small; resume "
        "it with --preset mnist_mlp (or without --preset), or pick a new --run-dir")

    before = (run / "config.json").read_text()
    result = _cli("alae-train", "--run-dir", str(run), "--epochs", "1")
    assert result.returncode == 2
    assert _last_line(result) == (
        f"alae-train: error: {str(run)!r} is trained to epoch 2; --epochs 1 would go back: "
        "give --epochs above 2 to train on (nothing was changed)")
    assert (run / "config.json").read_text() == before
