"""Faults met by long runs: a diverging run stops at the first non-finite loss with exit 3 and
keeps its last good checkpoint; non-finite checkpoints are skipped on restore and refused by
alae-eval; a failed first attempt does not bind the run directory; a damaged newest checkpoint
is walked past by the CLIs; damaged, truncated and huge images in a folder are skipped and
counted once before training, and unusable data leaves no run directory."""

import json
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import BIN
from helpers.runs import make_run
from PIL import Image

import alae_tf.data as data_module
from alae_tf.data import DataError, DataWarning, make_dataset
from alae_tf.errors import RunDirError
from alae_tf.export import cli as export_cli
from alae_tf.runs import RunCheckpoint, load_trained_model
from alae_tf.trainer.callbacks import CheckpointCallback, NonFiniteGuard
from alae_tf.training import evaluate, sample, train


def _error_line(capsys):
    """The one line an in-process CLI printed to stderr."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.slow
def test_a_diverging_first_run_stops_with_exit_3_and_binds_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    narrow = ["--set", "hidden_units=[64,64]"]  # what is checked does not need the width
    assert train.main(["--preset", "mnist_mlp", *narrow, "--learning-rate", "1e6", "--epochs",
                       "3", "--steps-per-epoch", "5", "--verbose", "0", "--run-dir",
                       str(run)]) == 3
    out, err = capsys.readouterr()
    line = err.strip().splitlines()[-1]
    assert line.startswith("alae-train: error: training diverged at step ")
    assert "stopped without saving (no checkpoint was written)" in line
    assert "done:" not in out
    assert not (run / "checkpoints").exists() and not (run / "model.keras").exists()
    # The corrected command is a new start, not a refused "settings change".
    assert train.main(["--preset", "mnist_mlp", *narrow, "--epochs", "1", "--steps-per-epoch",
                       "2", "--verbose", "0", "--run-dir", str(run)]) == 0
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
    # Narrow: its checkpoints are copied, restored and saved again by the tests below.
    return make_run(tmp_path_factory.mktemp("faults") / "run", "mnist_mlp", hidden_units=(64, 64))


def test_eval_refuses_a_model_with_no_finite_checkpoint(mlp_run, tmp_path, capsys):
    run = tmp_path / "nan_run"
    shutil.copytree(mlp_run, run)
    model, _, _, _ = load_trained_model(str(run))
    for v in model.encoder.weights:
        v.assign(tf.fill(v.shape, np.inf))
    RunCheckpoint(model, str(run)).save(1)  # overwrite the only checkpoint with inf weights
    for script, main, extra in (("alae-eval", evaluate.main, []),
                                ("alae-sample", sample.main, []),
                                ("alae-export", export_cli.main, [str(tmp_path / "out")])):
        assert main([str(run), *extra]) == 2, script
        line = _error_line(capsys)
        assert line.startswith(f"{script}: error: no checkpoint in ")
        assert "ckpt-1: holds NaN or infinite weights" in line


@pytest.mark.slow
def test_clis_walk_past_a_truncated_newest_checkpoint(mlp_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    model, _, _, _ = load_trained_model(str(run))
    RunCheckpoint(model, str(run)).save(2)
    data = run / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:64])
    capsys.readouterr()
    assert export_cli.main([str(run), str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "warning: skipped damaged checkpoint ckpt-2 (" in err and "epoch 1" in out
    # Training on moves the damaged files aside and saves epoch 2 anew.
    assert train.main(["--preset", "mnist_mlp", "--epochs", "2", "--steps-per-epoch", "2",
                       "--verbose", "0", "--run-dir", str(run)]) == 0
    assert "moved to checkpoints/damaged/" in capsys.readouterr().err
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
    with pytest.raises(RunDirError) as error:
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


@pytest.mark.slow
@pytest.mark.system
def test_kill_9_during_training_saves_loses_nothing_and_the_run_resumes(tmp_path, capsys):
    # (Also the CLI's resume-after-kill check: one killed process serves both.) A real SIGKILL,
    # aimed at a checkpoint save: one step per epoch, so saves take most of the time; the test
    # waits for a ckpt-N_temp folder (a save in flight) to kill in it. At a quarter of the
    # width (a sixteenth of the weights) saves still take most of an epoch.
    run = tmp_path / "run"
    command = [str(BIN / "alae-train"), "--preset", "mnist_mlp", "--epochs", "40",
               "--steps-per-epoch", "1", "--grid-every", "1000", "--run-dir", str(run),
               "--set", "hidden_units=[256,256]"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    checkpoints = run / "checkpoints"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            # Three index files: checkpoint 2 is committed (its entry in ``checkpoint`` is
            # written before save 3 starts); a second one can be on disk, not yet listed.
            saved = list(checkpoints.glob("ckpt-*.index")) if checkpoints.is_dir() else []
            if len(saved) >= 3 and list(checkpoints.glob("*_temp")):
                break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert list(checkpoints.glob("*_temp")), "the kill missed every save"
    model, _, _, epoch = load_trained_model(str(run))
    assert epoch >= 2
    weights = [w.numpy() for w in model.weights]
    # The same checkpoint reads the same weights again, and the same command resumes from it.
    again, _, _, _ = load_trained_model(str(run))
    for a, b in zip(weights, [w.numpy() for w in again.weights], strict=True):
        np.testing.assert_array_equal(a, b)
    # The same command, in-process, goes on from that checkpoint: the step counter and the
    # overall progress count the run's epochs, not this process's (one step per epoch).
    assert train.main([*command[1:4], str(epoch + 1), *command[5:], "--verbose", "1"]) == 0
    out = capsys.readouterr().out
    assert f"resuming {run} from epoch {epoch} (step {epoch})" in out
    assert f"\nepoch {epoch + 1}/{epoch + 1}, " in out
    assert f"done: epoch {epoch + 1}, step {epoch + 1}" in out
    assert not list(checkpoints.glob("*_temp")) and (run / "model.keras").is_file()


def test_a_full_disk_at_model_keras_leaves_no_half_file(make_tiny_model, tmp_path, monkeypatch):
    from alae_tf.trainer import save_final_model

    model = make_tiny_model(seed=1)
    model(np.zeros((1, 8, 8, 1), "float32"))

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    with pytest.raises(RunDirError, match=r"model.keras \(No space left on device\); the "
                                          r"checkpoints are saved"):
        save_final_model(model, str(tmp_path), preset=None)  # float32: no twin to build
    assert list(tmp_path.iterdir()) == []


def test_resume_keeps_omitted_flags_and_names_the_preset(mlp_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)  # mnist_mlp, trained to epoch 1 with --steps-per-epoch 2
    assert train.main(["--run-dir", str(run), "--epochs", "2", "--verbose", "0"]) == 0
    assert "2 steps of 128 images" in capsys.readouterr().out  # the run's own steps per epoch
    assert (run / "checkpoints" / "ckpt-2.index").exists()

    assert train.main(["--run-dir", str(run), "--preset", "mnist_style_small"]) == 2
    assert _error_line(capsys) == (
        f"alae-train: error: {str(run)!r} holds a mnist_mlp run, not mnist_style_small; resume "
        "it with --preset mnist_mlp (or without --preset), or pick a new --run-dir")

    before = (run / "config.json").read_text()
    assert train.main(["--run-dir", str(run), "--epochs", "1"]) == 2
    assert _error_line(capsys) == (
        f"alae-train: error: {str(run)!r} is trained to epoch 2; --epochs 1 would go back: "
        "give --epochs above 2 to train on (nothing was changed)")
    assert (run / "config.json").read_text() == before


# ---------------------------------------------------------------- broken and huge images


def _digit_folder(root, count, rng):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img_{i:03d}.jpg", quality=90)
    return sorted(root.glob("*.jpg"))


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _huge_png(path, width, height):
    """A valid grey PNG of width x height zeros, written row by row (a few hundred KB)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    packer, row = zlib.compressobj(), b"\0" * (width + 1)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


@pytest.mark.parametrize("positions", [(0,), (11,), (23,), (0, 11, 23)])
def test_truncated_jpegs_anywhere_in_a_folder_are_skipped_and_counted_once(tmp_path,
                                                                          positions):
    files = _digit_folder(tmp_path / "digits", 24, np.random.default_rng(len(positions)))
    for index in positions:
        _truncate(files[index])
    good = 24 - len(positions)
    with pytest.warns(DataWarning) as record:
        for _ in range(3):  # training, the held-out batch and the grids each read the folder
            dataset, count = make_dataset(f"folder:{tmp_path / 'digits'}", resolution=8,
                                          channels=1, batch_size=5, seed=0)
    messages = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    assert count == good and len(messages) == 1
    assert messages[0].startswith(f"folder {tmp_path / 'digits'}: using {good} of 24 image "
                                  f"files; skipped {len(positions)} damaged or not images "
                                  f"(first: {files[positions[0]].name}: damaged (")
    # Several passes over every file: no decode error can come up mid-training.
    seen = sum(len(batch) for batch in dataset.take(3 * good // 5 + 5))
    assert seen == 5 * (3 * good // 5 + 5)


def test_a_folder_of_only_broken_images_is_one_clear_error(tmp_path):
    files = _digit_folder(tmp_path / "broken", 3, np.random.default_rng(0))
    for path in files:
        _truncate(path)
    (tmp_path / "broken" / "notes.png").write_text("my notes, not an image")
    with pytest.raises(DataError) as info:
        make_dataset(f"folder:{tmp_path / 'broken'}", resolution=8, channels=1, batch_size=2)
    message = str(info.value)
    assert message.startswith(f"none of the 4 image files in folder "
                              f"'{tmp_path / 'broken'}' can be used: 4 damaged or not images")
    assert "drop_remainder" not in message and "\n" not in message


def test_too_few_usable_images_name_the_batch_size_and_alae_train_its_flag(tmp_path, capsys):
    files = _digit_folder(tmp_path / "few", 4, np.random.default_rng(0))
    _truncate(files[0])
    with pytest.warns(DataWarning), pytest.raises(DataError) as info:
        make_dataset(f"folder:{tmp_path / 'few'}", resolution=8, channels=1, batch_size=8)
    assert "3 usable images" in str(info.value) and info.value.setting == "batch_size"
    assert "drop_remainder" not in str(info.value) and "--" not in str(info.value)
    # alae-train's line adds the flag (its data check runs before any TensorFlow work).
    run = tmp_path / "run"
    assert train.main(["--preset", "mnist_mlp", "--dataset", f"folder:{tmp_path / 'few'}",
                       "--batch-size", "8", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("add images or lower the batch size; --batch-size sets it"), err
    assert not run.exists()


def test_an_application_adds_its_flag_to_a_data_warning_about_a_setting(capsys):
    import warnings

    from alae_tf.cli import run_main

    def body():
        warnings.warn(DataWarning("folder f: skipped 1 (raise max_image_pixels to use them)",
                                  setting="max_image_pixels"), stacklevel=1)
        warnings.warn(DataWarning("folder f: skipped 1 damaged"), stacklevel=1)
        return 0

    assert run_main("alae-train", body, hints=train.HINTS) == 0
    assert capsys.readouterr().err.splitlines() == [
        "alae-train: warning: folder f: skipped 1 (raise max_image_pixels to use them); "
        "--max-image-pixels sets it",
        "alae-train: warning: folder f: skipped 1 damaged"]


def test_huge_images_are_skipped_by_an_explicit_limit_that_a_setting_raises(tmp_path):
    folder = tmp_path / "mixed"
    _digit_folder(folder, 4, np.random.default_rng(0))
    _huge_png(folder / "huge.png", 20000, 20000)  # valid, but above PIL's bomb guard
    with pytest.warns(DataWarning, match=r"skipped 1 above the limit of 40,000,000 pixels "
                      r"\(first: huge\.png: 20000x20000; raise max_image_pixels to use "
                      r"them\)$") as record:
        _, count = make_dataset(f"folder:{folder}", resolution=8, channels=1, batch_size=2)
    assert count == 4 and record[0].message.setting == "max_image_pixels"
    # The limit is the caller's: 28 x 28 = 784 pixels is above 700.
    with pytest.raises(DataError, match="5 above the limit of 700 pixels"):
        make_dataset(f"folder:{folder}", resolution=8, channels=1, batch_size=2,
                     max_image_pixels=700)
    with pytest.raises(DataError, match="max_image_pixels must be a positive integer"):
        make_dataset(f"folder:{folder}", resolution=8, channels=1, batch_size=2,
                     max_image_pixels=0)


def test_folder_checks_are_cached_per_file_and_redone_when_a_file_changes(tmp_path,
                                                                          monkeypatch):
    files = _digit_folder(tmp_path / "cached", 6, np.random.default_rng(0))
    decoded = []
    real = data_module.image_checks._decode_errors
    monkeypatch.setattr(data_module.image_checks, "_decode_errors",
                        lambda paths: decoded.append(len(paths)) or real(paths))
    source = f"folder:{tmp_path / 'cached'}"
    assert make_dataset(source, resolution=8, channels=1, batch_size=2)[1] == 6
    assert make_dataset(source, resolution=8, channels=1, batch_size=2)[1] == 6
    assert decoded == [6]  # the second call decoded nothing
    _truncate(files[2])
    with pytest.warns(DataWarning, match=files[2].name):
        assert make_dataset(source, resolution=8, channels=1, batch_size=2)[1] == 5
    assert decoded == [6, 1]  # only the changed file again


@pytest.mark.slow
@pytest.mark.system
def test_alae_train_skips_a_truncated_jpeg_with_one_warning_line(tmp_path):
    files = _digit_folder(tmp_path / "digits", 12, np.random.default_rng(0))
    _truncate(files[5])
    run = tmp_path / "run"
    # As a user runs it: no TF_CPP_MIN_LOG_LEVEL, so the CLI's own quiet start-up applies.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [str(BIN / "alae-train"), "--preset", "mnist_mlp", "--set", "hidden_units=[64,64]",
         "--dataset",
         f"folder:{tmp_path / 'digits'}", "--batch-size", "4", "--epochs", "2",
         "--steps-per-epoch", "4", "--max-image-pixels", "1000", "--run-dir", str(run)],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"alae-train: warning: folder {tmp_path / 'digits'}: using 11 of 12 image files; "
        f"skipped 1 damaged or not images (first: {files[5].name}: damaged (jpeg::Uncompress "
        "failed. Invalid JPEG data or crop window.))"]
    assert "Traceback" not in result.stderr and "(11 images)" in result.stdout
    assert json.loads((run / "config.json").read_text())["preset"]["max_image_pixels"] == 1000


def test_alae_train_on_unusable_data_leaves_no_run_directory(tmp_path, capsys):
    files = _digit_folder(tmp_path / "broken", 2, np.random.default_rng(0))
    for path in files:
        _truncate(path)
    run = tmp_path / "new_run"
    assert train.main(["--preset", "mnist_mlp", "--dataset", f"folder:{tmp_path / 'broken'}",
                       "--run-dir", str(run)]) == 2
    assert _error_line(capsys).startswith("alae-train: error: none of the 2 image files")
    assert not run.exists()
