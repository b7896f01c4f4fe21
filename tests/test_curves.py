"""Learning curves: alae-train --keep-checkpoints and its progress record, and
alae-eval --all-checkpoints (curves.json, curves.png, TensorBoard scalars)."""

import json
import os
from pathlib import Path

import pytest
import tensorflow as tf
from PIL import Image

from alae_tf.runs import ProgressLog
from alae_tf.training import evaluate, train

TINY = ["--preset", "mnist_mlp", "--set", "hidden_units=[64,64]", "--batch-size", "16",
        "--steps-per-epoch", "3", "--grid-every", "100", "--verbose", "2"]
EVAL = ["--max-train", "600", "--num-samples", "200", "--classifier-epochs", "1"]


def test_progress_log_records_and_replaces_a_later_life(tmp_path):
    log = ProgressLog(str(tmp_path))
    assert log.read() == {}
    os.makedirs(tmp_path / "checkpoints")
    for epoch in (1, 2, 3):
        log.record(epoch, step=10 * epoch, images_seen=100 * epoch, train_seconds=1.26 * epoch)
    assert log.read()[3] == {"step": 30, "images_seen": 300, "train_seconds": 3.8}
    log.record(2, step=20, images_seen=200, train_seconds=9.0)  # resumed from epoch 1 again
    assert sorted(log.read()) == [1, 2] and log.read()[2]["train_seconds"] == 9.0
    Path(log.path).write_text("{ not json")
    assert log.read() == {}


def _scalars(log_dir):
    values = {}
    for events in Path(log_dir).glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                values.setdefault(value.tag, []).append((event.step, number))
    return values


@pytest.mark.slow
def test_all_checkpoints_are_kept_recorded_and_scored(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main([*TINY, "--epochs", "3", "--keep-checkpoints", "0",
                       "--run-dir", str(run)]) == 0
    # Resumed without the flag: the run's own setting still keeps every checkpoint.
    assert train.main([*TINY, "--epochs", "5", "--run-dir", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["settings"]["keep_checkpoints"] == 0
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("ckpt-*.index")) == [
        f"ckpt-{n}.index" for n in range(1, 6)]
    progress = ProgressLog(str(run)).read()
    assert [progress[e]["images_seen"] for e in range(1, 6)] == [48 * e for e in range(1, 6)]
    assert [progress[e]["step"] for e in range(1, 6)] == [3 * e for e in range(1, 6)]
    seconds = [progress[e]["train_seconds"] for e in range(1, 6)]
    assert seconds == sorted(seconds) and seconds[0] > 0

    data = checkpoints / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    capsys.readouterr()
    assert evaluate.main([str(run), "--all-checkpoints", *EVAL]) == 0
    assert "warning: skipped damaged checkpoint ckpt-2 (" in capsys.readouterr().err
    curves = json.loads((run / "curves.json").read_text())
    points = curves["points"]
    assert [p["epoch"] for p in points] == [1, 3, 4, 5]
    assert [p["images_seen"] for p in points] == [48, 144, 192, 240]
    for point in points:
        for key in ("w_ema_knn1", "w_ema_svm", "w_raw_knn1", "w_raw_svm", "label_agreement",
                    "confident_fraction"):
            assert 0.0 <= point[key] <= 1.0, key
        assert 0.0 < point["reconstruction_mse"] < 1.0
    # PCA-50 of pixels on real digits is far above chance even with 600 training digits.
    assert curves["pca50"]["knn1"] > 0.8
    with Image.open(run / "curves.png") as plot:
        assert plot.format == "PNG" and plot.size == (1300, 800)
    scalars = _scalars(run / "logs" / "eval")
    assert [step for step, _ in scalars["eval/w_ema_knn1"]] == [3, 9, 12, 15]
    assert [v for _, v in scalars["eval/reconstruction_mse"]] == pytest.approx(
        [p["reconstruction_mse"] for p in points])

    # The last point is what plain alae-eval gives for the newest checkpoint.
    assert evaluate.main([str(run), *EVAL]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 5
    assert metrics["representation"]["w/ema"]["knn1"] == pytest.approx(points[-1]["w_ema_knn1"])
    assert metrics["representation"]["w/raw"]["svm"] == pytest.approx(points[-1]["w_raw_svm"])
    assert metrics["reconstruction_mse"] == pytest.approx(points[-1]["reconstruction_mse"],
                                                          rel=1e-5)


def test_all_checkpoints_refuses_runs_it_cannot_score(tmp_path, capsys):
    from helpers.runs import make_run

    from alae_tf.models.presets import get_preset
    from alae_tf.runs import RunSettings, record_config

    colour = make_run(tmp_path / "colour", "mnist_mlp", channels=3)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    record_config(RunSettings(get_preset("mnist_mlp"), run_dir=str(fresh)))
    for run, message in ((colour, "scores MNIST models"), (fresh, "has no checkpoint yet"),
                         (tmp_path / "missing", "not a run directory")):
        assert evaluate.main([str(run), "--all-checkpoints"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
