"""alae-import: official ALAE checkpoints compute here what the authors' code computes.

The fixtures in tests/data/reference were made by podgorskiy/ALAE itself (README.md there):
checkpoints in both torch.save layouts and the reference's outputs for fixed inputs. The
reader runs without torch, as it does for a user without it.
"""

import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import torch_writer

from alae_tf.official.torch_file import Foreign, TorchFileError, read_torch_file
from alae_tf.runs import load_trained_model
from alae_tf.training import import_official

REFERENCE = Path(__file__).parent / "data" / "reference"
FIXTURES = ("style32", "style128")
TOLERANCE = 1e-4  # float32, the bound


def _import(capsys, checkpoint, config, run_dir, *extra):
    code = import_official.main([str(checkpoint), "--config", str(config), "--run-dir",
                                 str(run_dir), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def imported(tmp_path_factory, imported_run):
    """{fixture name: (model, preset, outputs.npz, run directory)}, imported from the zip files
    through the command (the 128 px one is the session's ``imported_run``)."""
    made = {}
    for name in FIXTURES:
        run_dir = imported_run
        if name != "style128":
            run_dir = tmp_path_factory.mktemp("imported") / name
            code = import_official.main([str(REFERENCE / name / "model_zip.pth"), "--config",
                                         str(REFERENCE / name / "config.yaml"), "--run-dir",
                                         str(run_dir)])
            assert code == 0
        model, preset, _, _ = load_trained_model(str(run_dir))
        made[name] = (model, preset, np.load(REFERENCE / name / "outputs.npz"), run_dir)
    return made


def _nhwc(a):
    return np.transpose(np.asarray(a), (0, 2, 3, 1))


def _nchw(a):
    return np.transpose(np.asarray(a), (0, 3, 1, 2))


def _ours(model, ref, use_ema):
    """Our networks' outputs for the reference's inputs, named as in outputs.npz."""
    blocks = model.generator.num_blocks
    x, w, lod = _nhwc(ref["x"]), ref["w"], blocks - 1
    # The reference's first noise map is [1, 1, 4, 4] (block 0 starts from the batch-of-one
    # constant): one map for the batch.
    maps = [_nhwc(ref[f"noise_{i}"]) for i in range(2 * blocks)]
    noise = [np.broadcast_to(m, (len(x), *m.shape[1:])) for m in maps]
    zeros = [np.zeros_like(n) for n in noise]
    encoder, generator, mapping_f = (model.inference_network(n, use_ema)
                                     for n in ("encoder", "generator", "mapping_f"))
    codes = np.asarray(encoder(x))
    styles = mapping_f(ref["z"])
    outputs = {
        "E_x": codes,
        "E_x_fade": encoder(x, lod=lod, alpha=0.5),
        "F_z": np.asarray(styles)[:, 0],
        "F_z_trunc": mapping_f.truncate(styles, 0.7),
        "G_w_zero_noise": _nchw(generator(w, noise=zeros)),
        "G_w_noise": _nchw(generator(w, noise=noise)),
        "G_E_x": _nchw(generator(codes, noise=zeros)),
        "G_w_fade": _nchw(generator(w, lod=lod, alpha=0.5, noise=zeros)),
    }
    if not use_ema:  # this project keeps no EMA copy of D
        outputs["D_E_x"] = model.mapping_d(codes)
    return outputs


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("copy", ["ema", "train"])
def test_imported_model_computes_what_the_reference_computes(imported, name, copy):
    model, _, ref, _ = imported[name]
    outputs = _ours(model, ref, use_ema=copy == "ema")
    assert len(outputs) == (8 if copy == "ema" else 9)
    for key, value in outputs.items():
        expected = ref[f"{copy}_{key}"]
        assert np.asarray(value).shape == expected.shape, key
        np.testing.assert_allclose(np.asarray(value), expected, rtol=0, atol=TOLERANCE,
                                   err_msg=f"{name} {copy} {key}")


def test_imported_preset_carries_the_reference_numerics(imported):
    model, preset, ref, _ = imported["style128"]
    assert (preset.resolution, preset.channels, preset.latent_dim) == (128, 3, 16)
    assert preset.d_logit_index == 16 and model.mapping_d.logit_index == 16
    assert (preset.encoder_norm_epsilon, preset.encoder_std_epsilon) == (1e-5, 0.0)
    assert preset.ppl_crop == "face" and preset.dataset == "folder:data/style128"
    np.testing.assert_allclose(model.mapping_f_ema.w_avg.numpy(), ref["dlatent_avg"][0],
                               atol=1e-7)
    assert model.level == model.max_level == 5


def test_alae_sample_draws_samples_without_data_and_reconstructs_given_images(imported, capsys,
                                                                             tmp_path):
    from alae_tf.training import sample

    run_dir = imported["style32"][3]  # its data source, folder:data/style32, is not here
    assert sample.main([str(run_dir), "--num", "8", "--out-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "note: no real images to reconstruct" in out and "--dataset folder:PATH" in out
    assert sorted(os.listdir(tmp_path / "a")) == ["samples.png"]
    assert sample.main([str(run_dir), "--num", "8", "--dataset", "mnist", "--out-dir",
                        str(tmp_path / "b"), "--interpolation-steps", "3"]) == 0
    assert sorted(os.listdir(tmp_path / "b")) == ["interpolations.png", "reconstructions.png",
                                                  "samples.png"]


@pytest.mark.parametrize("name", FIXTURES)
def test_both_file_layouts_read_the_same_tensors(name):
    zipped = read_torch_file(REFERENCE / name / "model_zip.pth")
    legacy = read_torch_file(REFERENCE / name / "model_legacy.pth")
    assert sorted(zipped["models"]) == sorted(legacy["models"])
    count = 0
    for network, state in zipped["models"].items():
        assert list(state) == list(legacy["models"][network])
        for key, array in state.items():
            np.testing.assert_array_equal(array, legacy["models"][network][key])
            count += 1
    assert count > 200
    # The authors' loss tracker is a class of theirs: kept inert, never rebuilt.
    tracker = zipped["auxiliary"]["tracker"]
    assert any(isinstance(v, Foreign) for v in tracker["tracks"].values())


@pytest.mark.parametrize("legacy", [False, True])
def test_reader_rebuilds_tensors_of_every_layout_and_type(tmp_path, legacy):
    arrays = {"f32": np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5,
              "f16": np.array([0.5, -2.0, 65504.0], dtype=np.float16),
              "f64": np.array([[1e-300, 3.0]]), "i64": np.array([-(2**40), 7]),
              "u8": np.array([0, 255], dtype=np.uint8), "scalar": np.array(2.5, np.float32)}
    path = tmp_path / "file.pth"
    torch_writer.save({"models": {"net": arrays}, "epoch": 3, "names": ["a", ("b", 1.5)]}, path,
                      legacy=legacy)
    got = read_torch_file(path)
    assert got["epoch"] == 3 and got["names"] == ["a", ("b", 1.5)]
    for key, array in arrays.items():
        assert got["models"]["net"][key].dtype == array.dtype, key
        np.testing.assert_array_equal(got["models"]["net"][key], array)


def test_reader_widens_bfloat16(tmp_path):
    values = np.array([1.0, -0.15625, 2.0**127], dtype=np.float32)  # exact in bfloat16
    torch_writer.save({"w": values}, tmp_path / "bf16.pth", bfloat16=True)
    got = read_torch_file(tmp_path / "bf16.pth")["w"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)


class _Payload:
    """What a malicious checkpoint carries: a call to os.system when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_reader_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch_writer.save({"models": {"x": _Payload(marker)}}, path, legacy=True)
    got = read_torch_file(path)
    assert not marker.exists()
    payload = got["models"]["x"]
    assert isinstance(payload, Foreign) and payload.name in ("posix.system", "os.system")
    assert payload.args == (f"touch {marker}",)


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)), "not a PyTorch checkpoint"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(100)), "damaged zip archive"),
    (lambda p: p.write_bytes(pickle.dumps({"models": {}}, protocol=2)), "no magic number"),
    (lambda p: p.write_bytes((REFERENCE / "style32" / "model_legacy.pth").read_bytes()[:300_000]),
     "ends early"),
    (lambda p: p.write_bytes((REFERENCE / "style32" / "model_zip.pth").read_bytes()[:300_000]),
     "damaged zip archive"),
])
def test_damaged_or_foreign_files_are_refused_in_one_line(tmp_path, capsys, make, words):
    path = tmp_path / "model.pth"
    make(path)
    with pytest.raises(TorchFileError, match=words):
        read_torch_file(path)
    code, _, err = _import(capsys, path, REFERENCE / "style32" / "config.yaml",
                           tmp_path / "run")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("alae-import: error: ") and words in err
    assert not (tmp_path / "run").exists()


def _state(name="style32"):
    return read_torch_file(REFERENCE / name / "model_zip.pth")


def test_a_checkpoint_that_does_not_fit_the_config_names_tensor_and_shapes(tmp_path, capsys):
    # The style32 config with another latent size: the first tensor read differs in shape.
    config = (REFERENCE / "style32" / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(config.replace("LATENT_SPACE_SIZE: 16",
                                                         "LATENT_SPACE_SIZE: 24"))
    code, _, err = _import(capsys, REFERENCE / "style32" / "model_zip.pth",
                           tmp_path / "config.yaml", tmp_path / "run")
    assert code == 2 and err.count("\n") == 1
    assert ("mapping_fl.map_blocks.0.fc.weight has shape (16, 16) in the file, (24, 24) in the "
            "network the config describes") in err
    assert not (tmp_path / "run").exists()
    # The 128 px config on the 32 px file: tensors of blocks the file does not have.
    code, _, err = _import(capsys, REFERENCE / "style32" / "model_zip.pth",
                           REFERENCE / "style128" / "config.yaml", tmp_path / "run")
    assert code == 2 and err.count("\n") == 1
    assert "mapping_fl.map_blocks.3.fc.weight is not part of the network the config" in err


def test_files_that_are_not_alae_checkpoints_are_refused(tmp_path, capsys):
    cases = {
        "no models": {"state_dict": {"w": np.zeros(3, np.float32)}},
        "renamed tensor": {"models": {**_state()["models"]}},
        "NaN weight": {"models": {**_state()["models"]}},
    }
    generator = dict(cases["renamed tensor"]["models"]["generator"])
    generator["decode_block.0.extra"] = generator.pop("decode_block.0.bias_1")
    cases["renamed tensor"]["models"]["generator"] = generator
    encoder = dict(cases["NaN weight"]["models"]["discriminator"])
    encoder["encode_block.1.conv_1.weight"] = np.full_like(
        encoder["encode_block.1.conv_1.weight"], np.nan)
    cases["NaN weight"]["models"]["discriminator"] = encoder
    expected = {"no models": "not an ALAE checkpoint (no 'models' entry",
                "renamed tensor": "generator.decode_block.0.extra is not part of the network",
                "NaN weight": "discriminator.encode_block.1.conv_1.weight holds NaN"}
    for case, content in cases.items():
        path = tmp_path / f"{case.replace(' ', '_')}.pth"
        torch_writer.save(content, path)
        code, _, err = _import(capsys, path, REFERENCE / "style32" / "config.yaml",
                               tmp_path / "run")
        assert code == 2 and err.count("\n") == 1 and expected[case] in err, (case, err)
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, words", [
    ("MODEL:\n  GENERATOR: GeneratorFC\n", "MODEL.GENERATOR is 'GeneratorFC'"),
    ("MODEL:\n  ENCODER: EncoderWithFC\n", "MODEL.ENCODER is 'EncoderWithFC'"),
    ("MODEL:\n  MAPPING_TO_LATENT: MappingToLatentNoStyle\n",
     "MODEL.MAPPING_TO_LATENT is 'MappingToLatentNoStyle'"),
    ("MODEL:\n  LAYER_COUNT: four\n", "MODEL.LAYER_COUNT must be a positive whole number"),
    ("MODEL: [1, 2\n", "not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_unsupported_or_broken_configs_are_refused(tmp_path, capsys, text, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, _, err = _import(capsys, REFERENCE / "style32" / "model_zip.pth", path,
                           tmp_path / "run")
    assert code == 2 and err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("sizes", [{"LATENT_SPACE_SIZE": 1_000_000},
                                   {"START_CHANNEL_COUNT": 100_000, "MAX_CHANNEL_COUNT": 100_000}])
def test_a_config_far_larger_than_its_file_is_refused_before_the_network_is_built(
        tmp_path, capsys, sizes):
    # Built, these networks would need terabytes: the config's sizes are checked against the
    # numbers the file holds first.
    text = (REFERENCE / "style32" / "config.yaml").read_text()
    for key, value in sizes.items():
        text = re.sub(rf"{key}: \d+", f"{key}: {value}", text)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, _, err = _import(capsys, REFERENCE / "style32" / "model_zip.pth", path,
                           tmp_path / "run")
    assert code == 2 and err.count("\n") == 1, err
    assert "the config describes a network of about" in err and "the file holds 198,920" in err
    assert not (tmp_path / "run").exists()


def test_an_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("mine")
    code, _, err = _import(capsys, REFERENCE / "style32" / "model_zip.pth",
                           REFERENCE / "style32" / "config.yaml", run_dir)
    assert code == 2 and "not an empty directory" in err
    assert os.listdir(run_dir) == ["keep.txt"]


@pytest.mark.slow
def test_an_imported_model_fine_tunes_with_alae_train(tmp_path, capsys):
    from alae_tf.training import train

    run_dir = tmp_path / "run"
    code, out, _ = _import(capsys, REFERENCE / "style32" / "model_legacy.pth",
                           REFERENCE / "style32" / "config.yaml", run_dir, "--dataset", "mnist",
                           "--batch-size", "8", "--steps-per-epoch", "2")
    assert code == 0 and "imported" in out
    before, preset, _, epoch = load_trained_model(str(run_dir))
    assert epoch == preset.epochs == 60 and preset.dataset == "mnist"
    assert preset.schedule.batch_size_at(model_level := before.max_level) == 8
    assert before.level == model_level
    code = train.main(["--run-dir", str(run_dir), "--epochs", str(epoch + 1), "--verbose", "0"])
    assert code == 0
    after, _, _, new_epoch = load_trained_model(str(run_dir))
    assert new_epoch == epoch + 1
    kernel = "block_32x32/conv0/kernel"
    old = next(v for v in before.encoder.weights if v.path.endswith(kernel)).numpy()
    new = next(v for v in after.encoder.weights if v.path.endswith(kernel)).numpy()
    assert np.all(np.isfinite(new)) and not np.array_equal(old, new)
    shutil.rmtree(run_dir)


def test_a_killed_import_leaves_no_run_and_its_leftovers_are_removed(tmp_path):
    # A kill -9 mid-write leaves only a hidden staging folder (the run directory appears by one
    # rename); the next import removes the folders of processes that are gone.
    prefix = str(tmp_path / ".run.importing")
    dead, alive = f"{prefix}{2**22 + 1}", f"{prefix}{os.getpid()}"  # above Linux's pid_max
    for path in (dead, alive):
        os.makedirs(os.path.join(path, "checkpoints"))
    import_official._remove_dead_imports(prefix)
    assert not os.path.exists(dead) and os.path.isdir(alive)
