"""An official checkpoint imported by alae-import is a run like any other: alae-export's
SavedModel answers every signature as Keras does, alae-sample writes its grids and alae-eval
--fid scores it. (Its TF.js export runs in test_tfjs.py and in the page in test_web_demo.py:
it is the "style128" entry of the shared ``exported`` fixture.)

The run is the session's ``imported_run`` (tests/helpers/fixtures.py): the 128 px RGB fixture of
tests/data/reference/style128 imported with the defaults, so its data source is absent; the
real images come from a folder of generated pictures given with --dataset.
"""

import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image
from test_export import check_outputs, signature_calls

from alae_tf.export import cli as export_cli
from alae_tf.export.rest import ServedModel
from alae_tf.runs import load_trained_model
from alae_tf.training import evaluate, sample


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """folder:PATH of 24 smooth landscape RGB pictures (a few coloured Gaussian blobs, 160 x
    120: the data pipeline centre-crops them)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:120, 0:160] / 120
    for i in range(24):
        picture = np.zeros((120, 160, 3))
        for _ in range(4):
            cx, cy, radius = rng.uniform(0, 4 / 3), rng.uniform(0, 1), rng.uniform(0.1, 0.4)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius ** 2))
            picture += blob[..., None] * rng.uniform(0, 1, size=3)
        Image.fromarray((255 * np.clip(picture, 0, 1)).astype(np.uint8)).save(
            folder / f"photo_{i:02d}.png")
    return f"folder:{folder}"


@pytest.mark.slow
def test_saved_model_answers_every_signature_as_keras(imported_run, tmp_path):
    model, preset, _, _ = load_trained_model(str(imported_run))
    assert export_cli.main([str(imported_run), str(tmp_path), "--name", "style128"]) == 0
    served = ServedModel(str(tmp_path / "style128"))  # as alae-serve loads it
    inputs, signatures, calls = signature_calls(model, preset)
    got = {}
    for signature in signatures:
        feeds = {key.split("|")[1]: value for key, value in calls.items()
                 if key.split("|")[0] == signature}
        for name, value in served.run(signature, feeds).items():
            got[f"{signature}|{name}"] = value
    assert set(signatures) | {"serving_default", "metadata"} <= set(served.signatures)
    check_outputs(got, model, preset, inputs, signatures)
    description = served.description()
    assert (description["latent_dim"], description["num_styles"]) == (16, 12)
    assert description["signatures"]["reconstruct"]["inputs"]["images"]["shape"] == [
        -1, 128, 128, 3]


def test_alae_sample_writes_its_grids(imported_run, photos, tmp_path, capsys):
    """With real pictures given (--dataset): every grid, style mixing included. (Samples alone
    without data: test_official.py.)"""
    assert sample.main([str(imported_run), "--num", "8", "--interpolation-steps", "4", "--mix",
                        "--dataset", photos, "--out-dir", str(tmp_path)]) == 0
    assert "truncation psi 1.0" in capsys.readouterr().out
    # 128 px cells with a 2 px border: samples 8 x 1, reconstructions 8 x 8 (32 held-out
    # pictures beside their reconstructions), interpolations 4 x 8, mixing 7 x 7.
    cells = {"samples": (8, 1), "reconstructions": (8, 8), "interpolations": (4, 8),
             "mixing": (7, 7)}
    for name, (columns, rows) in cells.items():
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.mode == "RGB", name
            assert image.size == (130 * columns + 2, 130 * rows + 2), name
            assert np.asarray(image).std() > 5, name  # pictures, not a blank grid


def test_alae_eval_fid_with_an_offline_feature_network(imported_run, photos, tmp_path, capsys):
    """FID of an RGB run needs a feature network; any .keras model serves offline. The real
    images are given with --dataset (the run's own source is not here)."""
    run = tmp_path / "run"
    shutil.copytree(imported_run, run)  # alae-eval writes metrics.json into it
    keras.utils.set_random_seed(0)
    features = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(6, 3, strides=2),
                                 keras.layers.GlobalAveragePooling2D()], name="tiny_features")
    features.save(tmp_path / "features.keras")
    flags = ["--fid", "--fid-images", "16", "--metrics-batch-size", "8",
             "--fid-network", str(tmp_path / "features.keras")]
    assert evaluate.main([str(run), *flags]) == 2  # the run's own source is absent
    assert "data/style128" in capsys.readouterr().err
    assert evaluate.main([str(run), *flags, "--dataset", photos]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fid_real_images"] == metrics["fid_generated_images"] == 16
    assert metrics["fid_features"] == "FID (tiny_features)"
    assert metrics["fid_generations"] > 0 and metrics["fid_reconstructions"] > 0
    assert "representation" not in metrics  # MNIST scores are for MNIST models only
    assert f"of generations: {metrics['fid_generations']:.3f}" in out
