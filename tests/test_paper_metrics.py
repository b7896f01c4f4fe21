"""FID of generations and reconstructions and PPL of a model: the drivers on tiny models, style
mixing as the reference samples for FID, progress output."""

import numpy as np
import pytest
import tensorflow as tf
from helpers.models import tiny_model
from test_style_model import tiny_style_model

from alae_tf.metrics import fid, generative


def _pixels():
    return fid.FeatureExtractor(lambda x: np.asarray(x).reshape(len(x), -1), "pixel-FID")


def test_progress_counts_and_estimates_the_time_left():
    times = iter([0.0, 5.0, 20.0, 40.0])
    lines = []
    progress = generative.Progress("FID", 400, every=10.0, clock=lambda: next(times),
                                      out=lambda line, flush: lines.append(line))
    progress(100)  # 5 s: too soon for a line
    progress(200)  # 20 s: half done, about 20 s left
    progress(400)  # the end is always printed
    assert lines == ["FID: 200/400 images, 20s, about 20s left", "FID: 400/400 images, 40s"]


def test_fid_scores_of_a_tiny_model_and_the_counts_used():
    model = tiny_model(seed=1)
    rng = np.random.default_rng(0)
    reals = [rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32) for _ in range(3)]
    lines = []
    scores = generative.fid_scores(model, (0.0, 1.0), reals, _pixels(), num_images=100,
                                      batch_size=16, out=lambda line, flush: lines.append(line))
    assert scores["fid_real_images"] == scores["fid_generated_images"] == 48
    assert scores["fid_features"] == "pixel-FID"
    assert np.isfinite(scores["fid_generations"]) and scores["fid_generations"] > 0
    assert np.isfinite(scores["fid_reconstructions"]) and scores["fid_reconstructions"] > 0
    assert "the data has 48 images; every set uses that many" in "\n".join(lines)
    # The reconstructions' statistics are those of G(E(x)) of exactly these images.
    real, rec = fid.FeatureStatistics(), fid.FeatureStatistics()
    for x in reals:
        real.update(x.reshape(16, -1))
        rec.update(np.clip(np.asarray(model.reconstruct(x)), 0, 1).reshape(16, -1))
    assert scores["fid_reconstructions"] == pytest.approx(fid.statistics_distance(real, rec),
                                                          rel=1e-6)


def test_generations_mix_styles_with_the_models_probability():
    model = tiny_style_model(style_mixing_prob=0.9)
    rng = np.random.default_rng(1)
    z, z_mix = (rng.standard_normal((4, 8)).astype(np.float32) for _ in range(2))
    w = model.network("mapping_f_ema")(z).numpy()
    w_mix = model.network("mapping_f_ema")(z_mix).numpy()
    # u_mix 0.5 < 0.9 mixes; u_crossover 0.4 of 2 * (level 2 + 1) = 6 slots: crossover 1 + 2.
    mixed = generative.sample_styles(model, z, z_mix, (0.5, 0.4)).numpy()
    np.testing.assert_array_equal(mixed[:, :3], w[:, :3])
    np.testing.assert_array_equal(mixed[:, 3:], w_mix[:, 3:])
    unmixed = generative.sample_styles(model, z, z_mix, (0.95, 0.4)).numpy()
    np.testing.assert_array_equal(unmixed, w)


def test_ppl_scores_of_a_tiny_style_model():
    model = tiny_style_model()
    from alae_tf.metrics import ppl

    scores = generative.ppl_scores(model, (-1.0, 1.0), ppl.squared_pixel_distance,
                                      "pixel", num_samples=8, batch_size=4,
                                      out=lambda line, flush: None)
    assert scores["ppl_samples"] == 8 and scores["ppl_epsilon"] == 1e-4
    assert scores["ppl_full"] > 0 and scores["ppl_end"] > 0
    # Noise shared within a pair: a model whose w has no effect has zero path length.
    model.network("mapping_f_ema").set_weights(
        [np.zeros_like(v) for v in model.network("mapping_f_ema").get_weights()])
    flat = generative.ppl_scores(model, (-1.0, 1.0), ppl.squared_pixel_distance, "pixel",
                                    num_samples=4, batch_size=4, out=lambda line, flush: None)
    assert flat["ppl_full"] == pytest.approx(0.0, abs=1e-6)


def test_to_unit_range_clips_like_a_saved_image():
    x = tf.constant([[-1.5, -1.0, 0.0, 1.0, 2.0]])
    np.testing.assert_allclose(generative.to_unit_range(x, (-1.0, 1.0)),
                               [[0.0, 0.0, 0.5, 1.0, 1.0]])


@pytest.mark.slow
def test_digits_fid_ranks_real_digits_then_a_trained_model_then_an_untrained_one(tmp_path):
    from helpers.runs import make_run

    from alae_tf.data import load_embedded_mnist
    from alae_tf.metrics import digits as digit_metrics
    from alae_tf.runs import load_trained_model
    from alae_tf.training import train

    trained_dir, untrained_dir = tmp_path / "trained", tmp_path / "untrained"
    # The recipe at a quarter of its width: what is ranked is trained against untrained.
    narrow = ["--set", "hidden_units=[256,256]"]
    assert train.main(["--preset", "mnist_mlp_fast", "--epochs", "8", *narrow, "--run-dir",
                       str(trained_dir), "--verbose", "0"]) == 0
    make_run(untrained_dir, "mnist_mlp_fast", steps=1, hidden_units=(256, 256))
    x = load_embedded_mnist("train")[0][..., None].astype(np.float32) / 255.0
    # The session's cached one-epoch classifier (alae-eval's tests use it too): 93% accurate.
    classifier, _ = digit_metrics.train_classifier(epochs=1, out=lambda *_, **__: None)
    extractor = fid.digit_extractor(classifier)
    order = np.random.default_rng(0).permutation(len(x))
    count = 2000

    def real_batches():
        return (x[order[i:i + 500]] for i in range(0, count, 500))

    scores = {}
    for name, run in (("trained", trained_dir), ("untrained", untrained_dir)):
        model = load_trained_model(str(run))[0]
        scores[name] = generative.fid_scores(model, (0.0, 1.0), real_batches(), extractor,
                                                count, out=lambda line, flush: None)
    train_stats = fid.statistics_of(real_batches(), extractor, count)
    test_digits = load_embedded_mnist("test")[0][..., None].astype(np.float32) / 255.0
    test_stats = fid.statistics_of([test_digits], extractor, len(test_digits))
    real = fid.statistics_distance(train_stats, test_stats)
    trained, untrained = scores["trained"], scores["untrained"]
    print(f"digits-FID: real test digits {real:.2f}; trained generations "
          f"{trained['fid_generations']:.2f}, reconstructions "
          f"{trained['fid_reconstructions']:.2f}; untrained {untrained['fid_generations']:.2f}, "
          f"{untrained['fid_reconstructions']:.2f}")
    assert real < trained["fid_generations"] < untrained["fid_generations"]
    assert real < trained["fid_reconstructions"] < untrained["fid_reconstructions"]


@pytest.mark.slow
def test_alae_eval_writes_fid_and_ppl_and_refuses_unusable_networks(exports, tmp_path, capsys):
    import json
    import shutil

    from alae_tf.training import evaluate

    run = tmp_path / "run"
    shutil.copytree(exports["mlp"][0], run)
    small = ["--classifier-epochs", "1", "--num-samples", "100", "--max-train", "300",
             "--fid-images", "200", "--ppl-samples", "16"]
    assert evaluate.main([str(run), "--fid", "--ppl", *small]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fid_real_images"] == metrics["fid_generated_images"] == 200
    assert metrics["fid_features"] == "digits-FID" and metrics["fid_generations"] > 0
    assert metrics["ppl_samples"] == 16 and metrics["ppl_full"] > 0 and metrics["ppl_end"] > 0
    assert "representation" in metrics  # an MNIST model keeps its MNIST scores
    assert "digits-FID of generations: 200/200 images" in out
    assert f"digits-FID of generations: {metrics['fid_generations']:.3f}" in out

    for flags, message in [
        (["--fid", "--fid-network", str(tmp_path / "none.pb")], "cannot read the Inception graph"),
        (["--fid", "--fid-network", "resnet"], "--fid-network 'resnet': give digits"),
        (["--ppl", "--ppl-distance", f"lpips:{tmp_path / 'none.npz'}"],
         "cannot read LPIPS weights"),
        (["--fid", "--fid-network", "x.keras", "--fid-input-range", "1"],
         "--fid-input-range takes LOW,HIGH"),
    ]:
        assert evaluate.main([str(run), *flags, *small]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("alae-eval: error: ") and message in err[0], err


def test_fid_of_one_set_alone_equals_its_share_of_both():
    model = tiny_model(seed=1)
    rng = np.random.default_rng(0)
    reals = [rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32) for _ in range(2)]
    quiet = {"batch_size": 16, "out": lambda line, flush: None}
    both = generative.fid_scores(model, (0.0, 1.0), reals, _pixels(), 32, **quiet)
    rec = generative.fid_scores(model, (0.0, 1.0), reals, _pixels(), 32,
                                sets=("reconstructions",), **quiet)
    gen = generative.fid_scores(model, (0.0, 1.0), reals, _pixels(), 32, sets=("generations",),
                                **quiet)
    assert set(rec) == {"fid_reconstructions", "fid_real_images", "fid_features"}
    assert rec["fid_reconstructions"] == both["fid_reconstructions"]
    assert gen["fid_generations"] == both["fid_generations"] and "fid_reconstructions" not in gen


def test_metrics_are_asked_by_name_and_an_unknown_name_lists_the_known_ones():
    from alae_tf.errors import MetricError
    from alae_tf.metrics import MetricOptions, OptionError, compute, metric_names
    from alae_tf.models.presets import get_preset

    names = metric_names()
    assert {"representation", "reconstruction_mse", "samples", "fid", "fid_generations",
            "fid_reconstructions", "ppl", "ppl_full", "ppl_end", "flops"} <= set(names)
    model, preset = tiny_model(), get_preset("mnist_mlp")
    with pytest.raises(MetricError, match="unknown metric 'fid50k'; known: representation, "):
        compute(["fid", "fid50k"], model, preset)
    # A feature network that cannot be used is an OptionError naming the option, before any
    # image is read.
    with pytest.raises(OptionError, match="cannot read the Inception graph") as error:
        compute("fid", model, preset, MetricOptions(fid_network="/missing/graph.pb"))
    assert error.value.option == "fid_network"
    with pytest.raises(OptionError, match="unknown PPL distance 'ssim'") as error:
        compute("ppl", model, preset, MetricOptions(ppl_distance="ssim"))
    assert error.value.option == "ppl_distance"


def test_metrics_refuse_a_model_below_full_resolution():
    from alae_tf.errors import MetricError
    from alae_tf.metrics import compute

    model = tiny_style_model()
    model.set_level(0)
    with pytest.raises(MetricError, match="level of detail 0 of 2"):
        compute("ppl", model, None)


@pytest.mark.system
def test_importing_the_metrics_package_loads_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, alae_tf.metrics as m; m.metric_names(); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_digits_pad_into_the_models_range_and_come_back_unclipped():
    import types

    from alae_tf.metrics import digits

    preset = types.SimpleNamespace(resolution=32, pixel_range=(-1.0, 1.0))
    u8 = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    x = digits.to_model_range(u8, preset)
    assert x.shape == (3, 32, 32, 1) and x.dtype == np.float32
    assert np.all(x[:, :2] == -1.0) and np.all(x[:, :, -2:] == -1.0)  # padding is black
    np.testing.assert_allclose(digits.to_digit_units(x, preset),
                               u8[..., None].astype(np.float32) / 255.0, atol=1e-6)
    overshoot = np.full((1, 32, 32, 1), 1.5, np.float32)
    assert np.all(digits.to_digit_units(overshoot, preset) == 1.25)  # not clipped
    assert digits.is_mnist(types.SimpleNamespace(resolution=32, channels=1))
    assert not digits.is_mnist(types.SimpleNamespace(resolution=64, channels=1))


@pytest.mark.slow
def test_the_python_example_of_docs_metrics_runs(exports, monkeypatch):
    import functools
    import pathlib
    import re

    import alae_tf.metrics
    from alae_tf.metrics import registry

    # The session's one-epoch digit classifier (cached) instead of the default six epochs.
    monkeypatch.setattr(alae_tf.metrics, "MetricOptions",
                        functools.partial(registry.MetricOptions, classifier_epochs=1))

    text = (pathlib.Path(__file__).parents[1] / "docs" / "metrics.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    assert '"runs/mnist_mlp_fast"' in code
    exec(code.replace('"runs/mnist_mlp_fast"', repr(str(exports["mlp"][0]))), {})
