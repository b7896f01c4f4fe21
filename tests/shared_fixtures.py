"""Session-scoped exports shared by every test file that needs them (made once per run).

Tests that change what they get copy it first (``shutil.copytree``).
"""

import pytest
from run_helpers import make_run
from tfjs_helpers import TINY_128, full_resolution_model

from alae_tf.export import cli as export_cli
from alae_tf.export.tfjs import export_tfjs

# Full-resolution models whose graphs cover every op the exports use: the MLP; the 32 px
# StyleALAE (nearest-upsampling broadcasts, blur, instance statistics, noise); a 128 px one
# (the fused stride-2 transposed and strided convolutions used from 128 px up).
TFJS_MODELS = {
    "mlp": ("mnist_mlp", {}),
    "style": ("mnist_style_small", {}),
    "style128": TINY_128,
}
QUANTIZATIONS = ("float16", "uint8")


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """{family: (run_dir, export base path OUT/NAME)}: SavedModels of an MLP and a StyleALAE
    run, written by alae-export."""
    root = tmp_path_factory.mktemp("exports")
    made = {}
    for family, preset in (("mlp", "mnist_mlp"), ("style", "mnist_style_small")):
        run_dir = make_run(root / f"run_{family}", preset)
        assert export_cli.main([str(run_dir), str(root / "out"), "--name", family]) == 0
        made[family] = (run_dir, root / "out" / family)
    return made


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """{key: (model, preset, TF.js export dir)}; key is a TFJS_MODELS key or "mlp_float16" /
    "mlp_uint8"."""
    root = tmp_path_factory.mktemp("tfjs")
    made = {}
    for key, (preset_name, overrides) in TFJS_MODELS.items():
        model, preset = full_resolution_model(preset_name, **overrides)
        export_tfjs(model, preset, str(root / key))
        made[key] = (model, preset, root / key)
        if key == "mlp":
            for quantize in QUANTIZATIONS:
                export_tfjs(model, preset, str(root / f"mlp_{quantize}"), quantize=quantize)
                made[f"mlp_{quantize}"] = (model, preset, root / f"mlp_{quantize}")
    return made
