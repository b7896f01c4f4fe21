"""Recipe knobs for ablations: alae-train --set FIELD=VALUE, --time-budget, and the preset
fields they reach (G's output activation, Adam betas, EMA half-life)."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alae_tf.mlp import MLPGenerator
from alae_tf.presets import build_model, get_preset
from alae_tf.training.cli import UsageError
from alae_tf.training.train import _field_overrides, _preset_from_args, build_parser

BIN = Path(sys.executable).parent


def test_set_parses_json_values_by_the_fields_type():
    preset = get_preset("mnist_mlp")
    got = _field_overrides(["r1_gamma=5", "adam_betas=[0.5, 0.9]", "g_output=sigmoid",
                            "d_activations=true", "latent-dim=32"], preset)
    assert got == {"r1_gamma": 5.0, "adam_betas": (0.5, 0.9), "g_output": "sigmoid",
                   "d_activations": True, "latent_dim": 32}
    assert isinstance(got["r1_gamma"], float)


@pytest.mark.parametrize("item, message", [
    ("nope=1", "FIELD one of"),
    ("r1_gamma", "FIELD one of"),
    ("name=other", "FIELD one of"),
    ("r1_gamma=abc", "r1_gamma takes a number \\(now 10.0\\), not 'abc'"),
    ("latent_dim=2.5", "latent_dim takes an integer"),
    ("d_activations=1", "d_activations takes true or false"),
    ("adam_betas=0.5", "adam_betas takes a JSON list"),
])
def test_set_refuses_unknown_fields_and_wrong_types(item, message):
    with pytest.raises(UsageError, match=message):
        _field_overrides([item], get_preset("mnist_mlp"))


def test_set_applies_on_top_of_the_recorded_preset_when_resuming():
    args = build_parser().parse_args(["--set", "r1_gamma=2"])
    recorded = get_preset("mnist_mlp", learning_rate=0.001)
    preset = _preset_from_args(args, recorded)
    assert preset.r1_gamma == 2.0 and preset.learning_rate == 0.001
    assert isinstance(args, argparse.Namespace)


def test_generator_output_activation_keeps_pixels_in_range_and_serialises():
    generator = MLPGenerator(8, (4, 4, 1), (16,), output_activation="sigmoid")
    w = np.random.default_rng(0).normal(size=(64, 8)).astype("float32") * 50
    x = np.asarray(generator(w))
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0
    again = MLPGenerator.from_config(generator.get_config())
    assert again.output_activation == "sigmoid"
    with pytest.raises(ValueError, match="output_activation must be one of"):
        MLPGenerator(8, (4, 4, 1), (16,), output_activation="relu")


def test_preset_fields_reach_the_model():
    preset = get_preset("mnist_mlp", adam_betas=(0.5, 0.9), ema_half_life=2000.0,
                        g_output="sigmoid")
    model = build_model(preset)
    model.compile(learning_rate=preset.learning_rate, adam_betas=preset.adam_betas)
    assert model.ema_half_life == 2000.0
    assert model.generator.output_activation == "sigmoid"
    for optimizer in (model.ed_optimizer, model.fg_optimizer):
        assert optimizer.beta_1 == 0.5 and optimizer.beta_2 == 0.9
    with pytest.raises(ValueError, match=r"g_output 'tanh' needs pixel_range \(-1.0, 1.0\)"):
        build_model(get_preset("mnist_mlp", g_output="tanh"))


@pytest.mark.slow
def test_time_budget_stops_with_a_checkpoint_and_the_same_command_trains_on(tmp_path):
    run = tmp_path / "run"
    command = [str(BIN / "alae-train"), "--preset", "mnist_mlp", "--epochs", "5",
               "--steps-per-epoch", "2", "--batch-size", "16", "--time-budget", "0.0001",
               "--set", "g_output=sigmoid", "--run-dir", str(run), "--verbose", "0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for epoch in (1, 2):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (f"time budget of 0.0001 minutes used: stopped after epoch {epoch} of 5"
                in result.stdout)
        assert f"done: epoch {epoch}, step {2 * epoch}," in result.stdout
        assert (run / "checkpoints" / f"ckpt-{epoch}.index").exists()
        assert (run / "samples" / f"epoch_{epoch:04d}_samples.png").exists()
        assert (run / "model.keras").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["preset"]["g_output"] == "sigmoid"


@pytest.mark.slow
def test_ablation_script_tabulates_a_run_and_reports_a_failed_one(tmp_path):
    out = tmp_path / "ablation"
    (out / "sigmoid").mkdir(parents=True)
    (out / "sigmoid" / "seed_0").write_text("a file where the run directory should be")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "benchmarks" / "ablation.py"),
         "--minutes", "0.001", "--variants", "reference,sigmoid", "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "ablation: sigmoid seed 0 failed (alae-train exit 2)" in result.stderr
    assert "Traceback" not in result.stderr
    rows = json.loads((out / "ablation.json").read_text())["rows"]
    assert [(r["variant"], r["seed"], r["epochs"]) for r in rows] == [("reference", 0, 1)]
    assert 0.0 <= rows[0]["w_knn1"] <= 1.0 and rows[0]["images_seen"] == 7936
    assert "| reference | 0 | 1 | 7,936 |" in (out / "ablation.md").read_text()
