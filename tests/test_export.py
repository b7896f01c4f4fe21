"""SavedModel export: signatures equal Keras in a fresh process, TF Serving's request contract,
bad requests, alae-export's refusals, and alae-serve over real HTTP on 127.0.0.1 (one server
process for the module, driven by a well-behaved and by a hostile client)."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf
from helpers import BIN

from alae_tf.export import cli as export_cli
from alae_tf.export.rest import PredictError, ServedModel
from alae_tf.models.presets import build_model, get_preset
from alae_tf.models.style.model import StyleALAE, noise_from_seeds
from alae_tf.runs import RunCheckpoint, RunSettings, load_trained_model, record_config

# Every test here writes exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

# Float32 outputs of the same graph in another process agree to rounding; 1e-5 leaves room
# for the order of summation of threaded matmuls.
TOLERANCE = 1e-5


def signature_inputs(model, n=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, size=(n, *model.image_shape)).astype("float32")
    return {
        "images": images,
        "images_uint8": (images * 255).round().astype("uint8"),
        "w": rng.normal(size=(n, model.latent_dim)).astype("float32"),
        "z": rng.normal(size=(n, model.latent_dim)).astype("float32"),
        "truncation_psi": np.linspace(1.0, 0.0, n).astype("float32"),
        "noise_seed": np.arange(n, dtype="int64") + 5,
    }


def expected_outputs(model, preset, inputs):
    """Keras outputs of the trained (EMA) model for the signatures' inputs."""
    low, high = preset.pixel_range
    styled = isinstance(model, StyleALAE)

    def noise(seeds):
        return noise_from_seeds(seeds, model.noise_shapes()) if styled else None

    def unit(x):
        return np.clip((np.asarray(x) - low) / (high - low), 0, 1)

    x = low + (high - low) * inputs["images"]
    zeros = np.zeros(len(x), "int64")
    w_rec = model.encode(x)
    expected = {
        "reconstruct": {"images": unit(model.decode(w_rec, noise=noise(zeros)))},
        "encode": {"w": np.asarray(w_rec)},
        "decode": {"images": unit(model.decode(inputs["w"], noise=noise(inputs["noise_seed"])))},
        "generate": {
            "images": unit(model.generate(inputs["z"], truncation_psi=inputs["truncation_psi"],
                                          noise=noise(inputs["noise_seed"]))),
            "w": np.asarray(model.mapping_f_ema(inputs["z"],
                                                truncation_psi=inputs["truncation_psi"])),
        },
    }
    if styled:
        w_styles = np.repeat(inputs["w"][:, None], model.num_styles, axis=1)
        w_styles[:, 4:] = inputs["w"][::-1, None]  # a mixed code
        inputs["w_styles"] = w_styles
        expected["decode_styles"] = {
            "images": unit(model.decode(w_styles, noise=noise(inputs["noise_seed"])))}
    return expected


def _call_args(signature, inputs, styled):
    base = signature.removesuffix("_uint8")
    images = inputs["images_uint8" if signature.endswith("_uint8") else "images"]
    seed = {"noise_seed": inputs["noise_seed"]} if styled else {}
    return {
        "reconstruct": {"images": images},
        "encode": {"images": images},
        "decode": {"w": inputs["w"], **seed},
        "decode_styles": {"w_styles": inputs.get("w_styles"), **seed},
        "generate": {"z": inputs["z"], "truncation_psi": inputs["truncation_psi"], **seed},
    }[base]


def signature_calls(model, preset):
    """(inputs, signatures, calls) for checking a SavedModel of ``model``: every signature with
    its _uint8 twin, and calls {"SIGNATURE|INPUT": array} to feed them (see check_outputs)."""
    inputs = signature_inputs(model)
    signatures = [s + suffix for s in expected_outputs(model, preset, inputs)
                  for suffix in ("", "_uint8")]
    styled = isinstance(model, StyleALAE)
    calls = {f"{s}|{k}": v for s in signatures for k, v in _call_args(s, inputs, styled).items()}
    return inputs, signatures, calls


FRESH_PROCESS = """
import contextlib, io, json, sys
import numpy as np
import tensorflow as tf
from tensorflow.python.tools import saved_model_cli
report = {}
for export_dir, calls_file, out_file in zip(*[iter(sys.argv[2:])] * 3):
    loaded = tf.saved_model.load(export_dir)
    calls = np.load(calls_file, allow_pickle=False)
    results = {}
    for key in calls.files:
        signature, name = key.split("|")
        results.setdefault(signature, {})[name] = calls[key]
    out = {}
    for signature, args in results.items():
        tensors = {k: tf.constant(v) for k, v in args.items()}
        for name, value in loaded.signatures[signature](**tensors).items():
            out[signature + "|" + name] = value.numpy()
    np.savez(out_file, **out)
    report[export_dir] = sorted(loaded.signatures)
# saved_model_cli as TF Serving's users run it (the same main as the console script).
shown = io.StringIO()
sys.argv = ["saved_model_cli", "show", "--dir", sys.argv[1], "--all"]
with contextlib.redirect_stdout(shown):
    try:
        saved_model_cli.main()
    except SystemExit as e:
        assert not e.code, e.code
print(json.dumps({"alae_tf_imported": any(m.startswith("alae_tf") for m in sys.modules),
                  "signatures": report, "saved_model_cli": shown.getvalue()}))
"""


def check_outputs(got, model, preset, inputs, signatures):
    expected = expected_outputs(model, preset, inputs)
    # The uint8 twins see the 8-bit images: compare them with Keras on those.
    quantised = {**inputs, "images": inputs["images_uint8"].astype("float32") / 255.0}
    expected_uint8 = expected_outputs(model, preset, quantised)
    for signature in signatures:
        uint8 = signature.endswith("_uint8")
        want_all = (expected_uint8 if uint8 else expected)[signature.removesuffix("_uint8")]
        for name, want in want_all.items():
            value = got[f"{signature}|{name}"]
            if uint8 and name == "images":
                assert value.dtype == np.uint8
                # The same float image rounded to 8 bits; a float at a rounding boundary may
                # land one step apart.
                assert np.max(np.abs(value.astype(int) - np.round(want * 255))) <= 1, signature
            else:
                np.testing.assert_allclose(value, want, atol=TOLERANCE, rtol=TOLERANCE,
                                           err_msg=f"{signature}/{name}")
    # serving_default is reconstruct.
    np.testing.assert_allclose(got["reconstruct|images"], expected["reconstruct"]["images"],
                               atol=TOLERANCE)


@pytest.mark.slow
@pytest.mark.system
def test_signatures_in_a_fresh_process_match_keras(exports, tmp_path):
    """Both exports loaded by TensorFlow alone in one fresh process (what TF Serving sees):
    every signature equals Keras, and saved_model_cli lists them."""
    families, argv = {}, []
    for family in ("mlp", "style"):
        run_dir, base = exports[family]
        model, preset, _, _ = load_trained_model(str(run_dir))
        inputs, signatures, calls = signature_calls(model, preset)
        np.savez(tmp_path / f"{family}_calls.npz", **calls)
        argv += [str(base / "1"), str(tmp_path / f"{family}_calls.npz"),
                 str(tmp_path / f"{family}_out.npz")]
        families[family] = (model, preset, inputs, signatures)
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(exports["style"][1] / "1"), *argv],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["alae_tf_imported"] is False
    for family, (model, preset, inputs, signatures) in families.items():
        export_dir = str(exports[family][1] / "1")
        assert set(signatures) | {"serving_default", "metadata"} <= set(
            report["signatures"][export_dir])
        check_outputs(np.load(tmp_path / f"{family}_out.npz"), model, preset, inputs,
                      signatures)

    shown = report["saved_model_cli"]
    for name in ("serving_default", "reconstruct", "reconstruct_uint8", "encode", "encode_uint8",
                 "decode", "decode_uint8", "decode_styles", "decode_styles_uint8", "generate",
                 "generate_uint8", "metadata"):
        assert f"signature_def['{name}']" in shown, name
    assert "inputs['noise_seed'] tensor_info:" in shown
    description = json.loads((exports["style"][1] / "1" / "assets.extra" /
                              "alae_signatures.json").read_text())
    assert description["num_styles"] == 8 and description["serving_default"] == "reconstruct"
    assert description["signatures"]["generate"]["outputs"]["w"]["shape"] == [-1, 8, 32]


@pytest.fixture(scope="module")
def served_mlp(exports):
    return ServedModel(str(exports["mlp"][1]))


def _with_a_boolean(images):
    listed = images.tolist()
    listed[0][5][7][0] = True
    return listed


def test_bad_requests_get_clear_errors(served_mlp):
    good = np.zeros((1, 28, 28, 1), "float32")
    cases = [
        ({"images": np.full((1, 28, 28, 1), 0.5).tolist()}, "reconstruct_uint8", "whole numbers"),
        ({"images": np.full((1, 28, 28, 1), 300).tolist()}, "reconstruct_uint8", "[0, 255]"),
        ({"images": good[0].tolist()}, "reconstruct", "expected shape [-1, 28, 28, 1]"),
        ({"images": np.zeros((1, 32, 32, 1)).tolist()}, "reconstruct", "got [1, 32, 32, 1]"),
        ({"images": [[1, 2], [3]]}, "reconstruct", "list of numbers of one shape"),
        # JSON true/false are not numbers (numpy would read them as 1.0 and 0.0).
        ({"images": _with_a_boolean(good)}, "reconstruct", "input 'images': expected numbers "
         "(float32), got a JSON boolean"),
        ({"images": _with_a_boolean(good)}, "reconstruct_uint8", "input 'images': expected "
         "numbers (uint8), got a JSON boolean"),
        ({"z": [[False] * 50], "truncation_psi": [1.0]}, "generate", "input 'z'"),
        ({"w": np.zeros((2, 50)).tolist(), "z": [1]}, "decode", "unknown ['z']"),
        ({}, "generate", "missing ['truncation_psi', 'z']"),
    ]
    for inputs, signature, message in cases:
        with pytest.raises(PredictError, match=None) as info:
            served_mlp.run(signature, inputs)
        assert message in str(info.value), (signature, str(info.value))
        assert info.value.status == 400
    nan = good.copy()
    nan[0, 3, 3, 0] = np.nan
    with pytest.raises(PredictError, match="images contains NaN or infinity"):
        served_mlp.run("reconstruct", {"images": nan})
    with pytest.raises(PredictError, match="w contains NaN or infinity"):
        served_mlp.run("decode", {"w": np.full((1, 50), np.inf, "float32")})
    with pytest.raises(PredictError, match="the batch is empty"):
        served_mlp.run("encode", {"images": np.zeros((0, 28, 28, 1), "float32")})
    with pytest.raises(PredictError, match="same number of examples"):
        served_mlp.run("generate", {"z": np.zeros((2, 50), "float32"),
                                    "truncation_psi": np.ones((3,), "float32")})
    with pytest.raises(PredictError, match='"nope" not found'):
        served_mlp.run("nope", {})
    # Called directly, a loaded signature does not check shapes itself: the graph does.
    encode = served_mlp.signatures["encode"]
    for bad in (tf.zeros((28, 28, 1)), tf.zeros((1, 32, 32, 1)), tf.zeros((1, 784))):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"images must have shape \(N, 28, 28, 1\)"):
            encode(images=bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="w must have shape"):
        served_mlp.signatures["decode"](w=tf.zeros((2, 49)))


def test_rest_row_and_columnar_bodies_and_grpc_protos_give_the_signature_outputs(served_mlp):
    from tensorflow_serving.apis import predict_pb2

    rng = np.random.default_rng(3)
    images = rng.uniform(size=(2, 28, 28, 1)).astype("float32")
    z = rng.normal(size=(2, 50)).astype("float32")
    direct = served_mlp.run("reconstruct", {"images": images})["images"]
    generated = served_mlp.run("generate", {"z": z, "truncation_psi": np.ones(2, "float32")})

    # Row format, single input: each instance is the input itself; one output: plain rows.
    rows = served_mlp.predict_json({"instances": images.tolist()})  # serving_default
    np.testing.assert_allclose(rows["predictions"], direct, atol=1e-6)
    # Row format, several inputs and outputs: objects per instance.
    body = {"signature_name": "generate",
            "instances": [{"z": z[i].tolist(), "truncation_psi": 1.0} for i in range(2)]}
    predictions = json.loads(json.dumps(served_mlp.predict_json(body)))["predictions"]
    assert [sorted(p) for p in predictions] == [["images", "w"]] * 2
    np.testing.assert_allclose([p["images"] for p in predictions], generated["images"], atol=1e-6)
    # Columnar format: named inputs, named outputs; a single output is the bare value.
    body = {"signature_name": "generate",
            "inputs": {"z": z.tolist(), "truncation_psi": [1.0, 1.0]}}
    outputs = served_mlp.predict_json(body)["outputs"]
    np.testing.assert_allclose(outputs["w"], generated["w"], atol=1e-6)
    body = {"signature_name": "reconstruct_uint8", "inputs": (images * 255).astype(int).tolist()}
    assert np.asarray(served_mlp.predict_json(body)["outputs"]).shape == (2, 28, 28, 1)
    for bad in ([], {"instances": [], "signature_name": "encode"},
                {"instances": [1], "inputs": [1]}, {"signature_name": 3, "inputs": []}):
        with pytest.raises(PredictError):
            served_mlp.predict_json(bad)

    # gRPC: the same request as a PredictRequest proto.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mlp"
    request.model_spec.signature_name = "generate"
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(z))
    request.inputs["truncation_psi"].CopyFrom(tf.make_tensor_proto(np.ones(2, "float32")))
    response = served_mlp.predict_proto(request)
    assert response.model_spec.version.value == 1
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["images"]),
                               generated["images"], atol=1e-6)
    request.model_spec.name = "other"
    with pytest.raises(PredictError, match="Servable not found"):
        served_mlp.predict_proto(request)


def test_metadata_lists_signature_tensors(served_mlp):
    metadata = served_mlp.metadata()
    assert metadata["model_spec"] == {"name": "mlp", "signature_name": "", "version": "1"}
    defs = metadata["metadata"]["signature_def"]["signature_def"]
    images = defs["encode_uint8"]["inputs"]["images"]
    assert images["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert served_mlp.description()["latent_dim"] == 50


@pytest.mark.slow
def test_alae_export_refusals(tmp_path, exports, capsys):
    out = tmp_path / "out"
    assert export_cli.main([str(tmp_path / "missing"), str(out)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    run_dir = tmp_path / "empty_run"
    run_dir.mkdir()
    record_config(RunSettings(get_preset("mnist_mlp"), run_dir=str(run_dir), steps_per_epoch=1))
    assert export_cli.main([str(run_dir), str(out)]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err

    # A StyleALAE stopped mid-fade at its last level, and one below its last level.
    preset = get_preset("mnist_style_small", epochs=1)
    for name, level, step in (("fading", 3, 2), ("small", 2, 9)):
        model = build_model(preset)
        model.set_level(level, fade_steps=8)
        model.step.assign(step)
        os.makedirs(tmp_path / name)
        record_config(RunSettings(preset, run_dir=str(tmp_path / name), steps_per_epoch=1))
        RunCheckpoint(model, str(tmp_path / name)).save(1)
        assert export_cli.main([str(tmp_path / name), str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert ("middle of a fade-in" if name == "fading" else "level of detail 2 of 3") in err

    run_dir, shared = exports["mlp"]
    base = tmp_path / "models" / "mlp"
    shutil.copytree(shared, base)  # the session's export stays as it was
    assert export_cli.main([str(run_dir), str(base.parent), "--name", "mlp"]) == 2
    assert "exists; pick another --version or pass --overwrite" in capsys.readouterr().err
    before = (base / "1" / "saved_model.pb").stat().st_mtime_ns
    assert export_cli.main([str(run_dir), str(base.parent), "--name", "mlp",
                            "--overwrite"]) == 0
    assert (base / "1" / "saved_model.pb").stat().st_mtime_ns != before
    assert sorted(p.name for p in base.parent.iterdir()) == ["mlp"]  # no temp left


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url, body=None, timeout=30, method=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data,
                                     method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


MAX_REQUEST_BYTES = 250_000


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    """One real alae-serve process on 127.0.0.1 for the module: its base URL and stderr file."""
    _, base = exports["mlp"]
    port = _free_port()
    stderr = tmp_path_factory.mktemp("alae_serve") / "stderr.txt"
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            [str(BIN / "alae-serve"), str(base), "--port", str(port),
             "--max-request-bytes", str(MAX_REQUEST_BYTES)],
            stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    url = f"http://127.0.0.1:{port}/v1/models/mlp"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if _http(url, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, stderr.read_text()[-2000:]
            assert time.time() < deadline, "alae-serve did not start in 120 s"
            time.sleep(0.5)
        yield url, stderr
    finally:
        process.terminate()
        process.wait(timeout=30)


DIGIT = np.random.default_rng(5).uniform(size=(1, 28, 28, 1)).round(3)


@pytest.mark.slow
@pytest.mark.system
def test_alae_serve_over_http(server):
    url, _ = server
    status, body = _http(url)
    assert body["model_version_status"][0]["state"] == "AVAILABLE"
    assert _http(f"{url}/metadata")[1]["model_spec"]["name"] == "mlp"
    status, body = _http(f"{url}:predict", {"instances": DIGIT.tolist()})
    assert status == 200
    expected = np.asarray(body["predictions"])
    assert expected.shape == (1, 28, 28, 1)

    for request, code, message in (
        (b"{not json", 400, "JSON Parse error"),
        (json.dumps({"instances": [0] * 100000}).encode(), 413, "larger than the limit"),
        ({"signature_name": "nope", "instances": DIGIT.tolist()}, 400, "not found"),
        ({"signature_name": "encode", "instances": [[1, 2]]}, 400, "expected shape"),
    ):
        status, body = _http(f"{url}:predict", request)
        assert status == code and message in body["error"], (status, body)
    port_url = url.removesuffix("/v1/models/mlp")
    status, body = _http(f"{port_url}/v1/models/other:predict", {"instances": DIGIT.tolist()})
    assert status == 404 and "Servable not found" in body["error"]

    # A short bounded load: 500 requests from 4 threads, every answer checked.
    def one(i):
        status, body = _http(f"{url}:predict", {"instances": DIGIT.tolist()})
        return status == 200 and np.allclose(body["predictions"], expected, atol=1e-6)

    start = time.time()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(500)))
    assert all(answers), answers.count(False)
    assert time.time() - start < 300


def _chunked_post(url, chunks):
    """POSTs ``chunks`` chunked with http.client, which sends the whole body before it reads
    the answer, and asks for the connection to close after it (as urllib does; the server
    then closes at once): (status, decoded JSON body)."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request("POST", parsed.path, body=chunks, encode_chunked=True,
                           headers={"Content-Type": "application/json", "Connection": "close"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.system
def test_alae_serve_answers_hostile_clients_with_json_4xx(server):
    """Every request a client can get wrong gets a 4xx and {"error": one line}; no 5xx, no
    reset, and the server goes on answering."""
    url, stderr = server
    root = url.removesuffix("/v1/models/mlp")
    latent = np.zeros((1, 50)).tolist()
    cases = [
        # A body nested 100,000 deep (JSON's decoder recurses) and 500 deep (numpy's).
        (lambda: _http(f"{url}:predict", b"[" * 100_000 + b"]" * 100_000), 400,
         "JSON Parse error: nested too deeply"),
        (lambda: _http(f"{url}:predict", {"instances": json.loads("[" * 500 + "0" +
                                                                   "]" * 500)}),
         400, "list of numbers of one shape"),
        # Over the limit, sent in full by clients that read the answer only then (urllib with
        # Content-Length, 20x the limit; http.client chunked): a 413, not a reset.
        (lambda: _http(f"{url}:predict", b" " * (20 * MAX_REQUEST_BYTES)), 413,
         f"request body of {20 * MAX_REQUEST_BYTES} bytes is larger than the limit"),
        (lambda: _chunked_post(f"{url}:predict", (b" " * 65536 for _ in range(40))),
         413, "request body is larger than the limit"),
        (lambda: _http(f"{root}/v1/nothing"), 404, "Not Found: GET /v1/nothing"),
        (lambda: _http(f"{root}/v1/nothing", b" " * (20 * MAX_REQUEST_BYTES)), 404,
         "Not Found: POST /v1/nothing"),
        (lambda: _http(f"{root}/v1/models/mlp/metadata", {}), 405,
         "Method Not Allowed: POST /v1/models/mlp/metadata"),
        # GET NAME:predict is the status path of a model named "mlp:predict".
        (lambda: _http(f"{url}:predict", method="GET"), 404,
         "Servable not found for request: Latest(mlp:predict)"),
        (lambda: _http(f"{url}:predict", {"signature_name": "generate", "inputs": {
            "z": [[float("nan")] * 50], "truncation_psi": [1.0]}}), 400, "z contains NaN"),
        (lambda: _http(f"{url}:predict", {"signature_name": "decode", "instances": [
            [10 ** 400] * 50]}), 400, "list of numbers of one shape"),
    ]
    for send, code, message in cases:
        status, body = send()
        assert (status, list(body)) == (code, ["error"]), (message, status, body)
        assert message in body["error"], (message, body)
        assert "\n" not in body["error"] and "{{" not in body["error"], body
    status, body = _http(f"{url}:predict", {"signature_name": "decode",
                                            "inputs": {"w": latent}})
    assert status == 200 and np.asarray(body["outputs"]).shape == (1, 28, 28, 1)
    # The metadata signature's string output comes back as text.
    status, body = _http(f"{url}:predict", {"signature_name": "metadata", "inputs": {}})
    assert status == 200 and json.loads(body["outputs"])["latent_dim"] == 50
    assert "Traceback" not in stderr.read_text()
