"""Session-scoped runs and exports shared by every test file that needs them (made once per run).

Tests that change what they get copy it first (``shutil.copytree``).
"""

from pathlib import Path

import pytest

from alae_tf.export import cli as export_cli
from alae_tf.export.tfjs import export_tfjs
from alae_tf.runs import load_trained_model
from alae_tf.training import import_official
from helpers.runs import make_run
from helpers.tfjs import full_resolution_model

# A 128 px RGB StyleALAE with tiny widths, checkpoint and config written by the authors' code
# (tests/data/reference/README.md): the smallest size with the fused stride-2 (transposed)
# convolutions, which the 32 px models lack.
OFFICIAL_128 = Path(__file__).resolve().parents[1] / "data" / "reference" / "style128"
# Full-resolution models whose graphs cover every op the exports use: the MLP; the 32 px
# StyleALAE (nearest-upsampling broadcasts, blur, instance statistics, noise); the imported
# 128 px one ("style128", made by the ``imported_run`` fixture).
TFJS_MODELS = {
    "mlp": ("mnist_mlp", {}),
    "style": ("mnist_style_small", {}),
}
TFJS_KEYS = (*TFJS_MODELS, "style128")
QUANTIZATIONS = ("float16", "uint8")


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """{family: (run_dir, export base path OUT/NAME)}: SavedModels of an MLP and a StyleALAE
    run, written by alae-export. The runs' checkpoints hold the initial weights (no training
    step: tracing one costs 30 s for the StyleALAE, and every export check compares the
    SavedModel with the Keras model it came from, whatever its weights)."""
    root = tmp_path_factory.mktemp("exports")
    made = {}
    for family, preset in (("mlp", "mnist_mlp"), ("style", "mnist_style_small")):
        run_dir = make_run(root / f"run_{family}", preset, steps=0)
        assert export_cli.main([str(run_dir), str(root / "out"), "--name", family]) == 0
        made[family] = (run_dir, root / "out" / family)
    return made


@pytest.fixture(scope="session")
def imported_run(tmp_path_factory):
    """The official 128 px RGB checkpoint imported into a run directory as the docs say
    (``alae-import CHECKPOINT --config CONFIG --run-dir DIR``); its data source,
    folder:data/style128, is not on this machine."""
    run_dir = tmp_path_factory.mktemp("imported") / "style128"
    assert import_official.main([
        str(OFFICIAL_128 / "model_zip.pth"), "--config", str(OFFICIAL_128 / "config.yaml"),
        "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="session")
def exported(tmp_path_factory, imported_run):
    """{key: (model, preset, TF.js export dir)}; key is one of TFJS_KEYS or "mlp_float16" /
    "mlp_uint8"."""
    root = tmp_path_factory.mktemp("tfjs")
    models = {key: full_resolution_model(preset_name, **overrides)
              for key, (preset_name, overrides) in TFJS_MODELS.items()}
    models["style128"] = load_trained_model(str(imported_run))[:2]
    made = {}
    for key, (model, preset) in models.items():
        export_tfjs(model, preset, str(root / key))
        made[key] = (model, preset, root / key)
        if key == "mlp":
            for quantize in QUANTIZATIONS:
                export_tfjs(model, preset, str(root / f"mlp_{quantize}"), quantize=quantize)
                made[f"mlp_{quantize}"] = (model, preset, root / f"mlp_{quantize}")
    return made
