"""The console scripts end to end: train, resume after kill -9, evaluate, sample, bad input."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import BIN
from PIL import Image

from alae_tf import progress as progress_lines
from alae_tf.training import evaluate, sample, train

TINY = ["--set", "hidden_units=[64,64]", "--batch-size", "16", "--steps-per-epoch", "3",
        "--grid-every", "1", "--verbose", "2"]


def _script(name):
    path = BIN / name
    if not path.exists():
        pytest.fail(f"console script {name} is not installed next to {sys.executable}")
    return str(path)


def _run(args, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def _checkpointed_epochs(run_dir):
    index = Path(run_dir) / "checkpoints" / "checkpoint"
    if not index.exists():
        return 0
    text = index.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("model_checkpoint_path"))
    return int(line.split("ckpt-")[1].rstrip('"'))


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--dataset", "--epochs", "--steps-per-epoch", "--batch-size",
                 "--learning-rate", "--run-dir", "--seed", "--jit-compile", "--strategy",
                 "--checkpoint-every", "--grid-every", "--dry-run"):
        assert flag in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "nope"], "invalid choice: 'nope'"),
        (["--batch-size", "0"], "must be at least 1"),
        (["--learning-rate", "-0.1"], "must be a positive finite number"),
        (["--epochs", "two"], "expected a whole number"),
        (["--dataset", "tfds:no_such_dataset_xyz"], "no_such_dataset_xyz"),
        (["--dataset", "cifar"], "cifar"),
        (["--seed", "-1"], "must be in [0, 2147483647], got -1"),
        (["--seed", "4294967296"], "must be in [0, 2147483647], got 4294967296"),
    ],
)
def test_bad_flags_are_one_line_usage_errors(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        code = train.main([*argv, "--run-dir", str(tmp_path / "run")])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("alae-train: error:") and message in err
    if argv[0] == "--seed":  # refused before anything is written
        assert not (tmp_path / "run").exists()


def test_unwritable_run_dir_and_bad_folders_are_usage_errors(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--run-dir", str(blocker / "run")], "cannot write to run directory"),
        (["--dataset", f"folder:{empty}", "--run-dir", str(tmp_path / "r1")], str(empty)),
        (["--dataset", f"folder:{tmp_path / 'missing'}", "--run-dir", str(tmp_path / "r2")],
         "missing"),
    ]
    for argv, message in cases:
        assert train.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    # Nothing was recorded for the failed data settings.
    assert not (tmp_path / "r1" / "config.json").exists()


def test_eval_and_sample_of_a_missing_run_are_usage_errors(capsys, tmp_path):
    assert evaluate.main([str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert sample.main([str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_dry_run_prints_parameter_counts(capsys):
    assert train.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "mapping_f" in out and "15,300" in out  # 6 x (50 * 50 + 50)
    assert "encoder" in out and "1,904,690" in out  # 784*1024+1024 + 1024^2+1024 + 1024*50+50


def test_overall_progress_is_epoch_k_of_n_with_the_time_left_across_levels(capsys,
                                                                            monkeypatch):
    from alae_tf.trainer import callbacks

    now = [0.0]
    monkeypatch.setattr(callbacks, "time", SimpleNamespace(time=lambda: now[0]))
    progress = callbacks.OverallProgress(150, start=0.0)

    def epochs(first, count, seconds):
        for epoch in range(first, first + count):
            progress.on_epoch_begin(epoch)
            now[0] += seconds
            progress.on_epoch_end(epoch)

    progress.on_train_begin()
    epochs(0, 12, 80 / 12)  # 1m20s for 12 epochs: 138 more at 6.7 s are about 15m
    progress.on_train_begin()  # the next level's fit(): its own, slower epochs
    epochs(12, 1, 20.0)
    epochs(13, 137, 0.25)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "epoch 1/150, 7s elapsed, about 17m left"
    assert lines[11] == "epoch 12/150, 1m20s elapsed, about 15m left"
    assert lines[12] == "epoch 13/150, 1m40s elapsed, about 46m left"
    assert lines[-1] == "epoch 150/150, 2m14s elapsed"
    assert progress_lines.format_duration(3 * 3600 + 125) == "3h02m"


@pytest.mark.slow
@pytest.mark.system
def test_train_eval_sample_end_to_end(tmp_path, capsys):
    # The console script itself once; the other commands in-process.
    run_dir = tmp_path / "run"
    result = _run([_script("alae-train"), "--epochs", "2", "--run-dir", str(run_dir), *TINY])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: epoch 2, step 6" in result.stdout
    assert re.search(r"^epoch 1/2, \d+s elapsed, about \d+s left$", result.stdout, re.M)
    assert re.search(r"^epoch 2/2, \d+s elapsed$", result.stdout, re.M)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"]["name"] == "mnist_mlp" and config["preset"]["batch_size"] == 16
    assert sorted(config["settings"]) == ["keep_checkpoints", "precision", "seed",
                                          "steps_per_epoch"]
    assert (run_dir / "model.keras").exists()
    assert _checkpointed_epochs(run_dir) == 2
    assert list((run_dir / "logs").rglob("events.out.tfevents*"))
    grid = Image.open(run_dir / "samples" / "epoch_0002_samples.png")
    assert grid.size == (8 * 30 + 2, 8 * 30 + 2)

    # Same command again: already done, nothing to do, exit 0.
    assert train.main(["--epochs", "2", "--run-dir", str(run_dir), *TINY]) == 0
    assert "nothing to do" in capsys.readouterr().out

    assert evaluate.main([str(run_dir), "--max-train", "600", "--num-samples", "200",
                          "--classifier-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "1-NN" in out and "digit classifier" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["step"] == 6 and metrics["num_test"] == 2004
    for name in ("w/ema", "w/raw", "features/ema", "features/raw", "pixels", "pca50"):
        scores = metrics["representation"][name]
        assert 0.0 <= scores["knn1"] <= 1.0 and 0.0 <= scores["svm"] <= 1.0
    # Raw-pixel 1-NN on real digits is far above chance even with 600 training digits.
    assert metrics["representation"]["pixels"]["knn1"] > 0.8
    assert metrics["reconstruction_mse"] > 0
    assert 0.0 <= metrics["samples"]["confident_fraction"] <= 1.0

    assert sample.main([str(run_dir), "--mix"]) == 2
    assert "needs a StyleALAE model" in capsys.readouterr().err

    out_dir = tmp_path / "grids"
    assert sample.main([str(run_dir), "--num", "16", "--out-dir", str(out_dir),
                        "--truncation-psi", "0.7"]) == 0
    for name in ("samples", "reconstructions", "interpolations"):
        image = np.asarray(Image.open(out_dir / f"{name}.png"))
        assert image.ndim >= 2 and image.std() > 0


@pytest.mark.slow
def test_same_seed_gives_the_same_weights(tmp_path):
    from alae_tf.runs import load_trained_model

    weights = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        assert train.main(["--epochs", "1", "--run-dir", str(run_dir), "--seed", "5",
                           *TINY]) == 0
        model = load_trained_model(str(run_dir))[0]
        weights.append([w.numpy() for w in model.weights])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_resuming_with_other_settings_is_refused(capsys, tmp_path):
    from alae_tf.models.presets import get_preset
    from alae_tf.runs import RunSettings, record_config

    run_dir = str(tmp_path)
    record_config(RunSettings(get_preset("mnist_mlp"), run_dir=run_dir, steps_per_epoch=3))
    (tmp_path / "checkpoints").mkdir()  # a run with a checkpoint binds its settings
    (tmp_path / "checkpoints" / "ckpt-1.index").write_bytes(b"")
    before = (tmp_path / "config.json").read_text()
    code = train.main(["--run-dir", run_dir, "--learning-rate", "0.01", "--steps-per-epoch", "3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "config.json").read_text() == before


@pytest.mark.slow
def test_style_preset_grows_then_evaluates_and_samples(tmp_path, capsys):
    run_dir = tmp_path / "style"
    command = ["--preset", "mnist_style_small", "--steps-per-epoch", "2", "--batch-size", "8",
               "--set", "startf=8", "--set", "maxf=16",
               "--set", "epochs_per_lod=1", "--grid-every", "2", "--verbose", "2", "--run-dir",
               str(run_dir)]
    # Up a level every epoch: epoch 2 fades in 8 px.
    assert train.main([*command, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "level 0 (4 px), epochs 1..1" in out
    assert "level 1 (8 px), epochs 2..2" in out
    assert "\nepoch 1/2, " in out and "\nepoch 2/2, " in out  # one count across the levels
    grid = Image.open(run_dir / "samples" / "epoch_0002_samples.png")
    assert grid.size == (8 * 10 + 2, 8 * 10 + 2)  # 8 px images at level 1

    assert evaluate.main([str(run_dir)]) == 2
    assert "level of detail 1 of 3" in capsys.readouterr().err

    # Resume up to the full 32 px level, then evaluate and sample.
    assert train.main([*command, "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert "level 2 (16 px), epochs 3..3" in out and "level 3 (32 px), epochs 4..4" in out
    assert evaluate.main([str(run_dir), "--max-train", "300", "--num-samples", "100",
                          "--classifier-epochs", "1"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["step"] == 8 and 0.0 <= metrics["representation"]["w/raw"]["knn1"] <= 1.0
    assert sample.main([str(run_dir), "--num", "8", "--mix", "--direction", "mnist:3",
                        "mnist:8", "--save-direction", "three_to_eight"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"direction mnist:3 -> mnist:8: a linear SVM separates the sets' codes "
                     r"[\d.]+%", printed), printed
    from alae_tf.faces.directions import load_directions

    (normal,) = load_directions(run_dir, 32).values()
    assert np.linalg.norm(normal) == pytest.approx(1.0)
    assert Image.open(run_dir / "samples" / "interpolations.png").size[1] == 8 * 34 + 2
    assert Image.open(run_dir / "samples" / "mixing.png").size == (7 * 34 + 2, 7 * 34 + 2)
    assert Image.open(run_dir / "samples" / "direction.png").size == (8 * 34 + 2, 8 * 34 + 2)
    capsys.readouterr()
    assert sample.main([str(run_dir), "--direction", "mnist:x", "mnist:8"]) == 2
    assert "mnist:0 .. mnist:9" in capsys.readouterr().err
    assert sample.main([str(run_dir), "--save-direction", "eights"]) == 2
    assert "--save-direction NAME needs --direction" in capsys.readouterr().err


@pytest.mark.slow
def test_celeba_hq256_trains_on_a_folder_of_rgb_images(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "faces" / "nested"
    folder.mkdir(parents=True)
    for i in range(6):
        pixels = rng.integers(0, 256, size=(40 + i, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"face_{i}.png")
    run_dir = tmp_path / "run"
    # The preset's architecture (7 levels to 256 px, RGB) at narrow widths: its 256-wide
    # layers would only make the checkpoint and model.keras slow to write.
    assert train.main(["--preset", "celeba_hq256", "--dataset", f"folder:{tmp_path / 'faces'}",
                       "--set", "startf=8", "--set", "maxf=16", "--epochs", "1",
                       "--steps-per-epoch", "2", "--batch-size", "2", "--verbose", "2",
                       "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "done: epoch 1, step 2" in out
    assert "level 0 (4 px)" in out
