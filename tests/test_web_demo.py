"""The web demo: alae-demo serves only the demo's files on 127.0.0.1; the page, in headless
Chromium on the WebGPU (SwiftShader's Vulkan), WebGL (SwiftShader), WASM and CPU backends,
loads without console errors,
reconstructs what is drawn and dropped exactly as TF.js in Node does, crops a wide photo
dropped on a colour model to its centre square (and says so), refuses a broken file with a
message and changes nothing, and its sliders change the pictures.

The serving tests run the server in a thread of this process; one real alae-demo process
serves the browser tests. One Chromium visits every (model, backend) page.
Screenshots of every state are written to test-output/web_demo/MODEL_BACKEND_STATE.png (not
versioned). Set ALAE_SKIP_BROWSER_TESTS=1 to skip the Chromium part on a machine without
Chromium.
"""

import contextlib
import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import BIN
from helpers.tfjs import WEB_DEMO, node, run_in_node
from PIL import Image

from alae_tf.data import load_embedded_mnist
from alae_tf.web_demo.server import build_parser, main, make_server

OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "web_demo"
BACKENDS = ("webgpu", "webgl", "wasm", "cpu")
MODELS = ("mnist_mlp", "mnist_style_small", "tiny128")  # smallest first (browser_check.mjs)
# WebGPU on SwiftShader is the slowest backend here (a page of the 128 px model takes 85 s), so
# one StyleALAE runs on it: its graphs hold both kernels js/webgpu_kernels.js replaces (the
# rank-6 tile of the upsampling and the encoder's AddN of 8 styles).
WEBGPU_MODELS = ("mnist_style_small",)
# The browser's CPU backend runs TF.js's plain JavaScript kernels, the ones Node's reference
# runs: on the 128 px model a CPU page would compare the same code with itself (26 s of page
# there); its page logic (photo crop, sliders, memory) is checked on WebGL and WASM.
CPU_MODELS = ("mnist_mlp", "mnist_style_small")
# Browser reconstructions against Node's CPU backend (measured: up to 2e-5 on WASM).
TOLERANCE = 1e-4
# The imported 128 px StyleALAE: 12 instance-normalised layers amplify the backends' different
# summation orders (measured below; WASM's XNNPACK differs most).
DEEP_TOLERANCE = 1e-3
# A wide photo is 240 x 120; its centre square as the browser and as PIL scale it (measured
# below: smooth content, so only the two resamplings and 8-bit canvases differ).
PHOTO_SIZE = (240, 120)
CROP_TOLERANCE = 0.02


@contextlib.contextmanager
def _serving(*args):
    """alae-demo's server (``alae-demo --port 0 --quiet ARGS``) in a thread; yields its URL."""
    server, _ = make_server(build_parser().parse_args(["--port", "0", "--quiet", *args]))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def demo_url():
    with _serving() as url:
        yield url


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as e:
        return e.code, None, b""


def _raw_status(base, path):
    """Status of a request for ``path`` sent as is (urllib would normalise the dots)."""
    host, port = base.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b"".join(iter(lambda: s.recv(4096), b""))  # all of it: no reset mid-reply
        return int(response.split()[1])


def test_demo_serves_the_page_runtime_and_models(demo_url):
    status, kind, body = _get(demo_url)
    assert status == 200 and kind.startswith("text/html") and b"js/app.js" in body
    with urllib.request.urlopen(demo_url, timeout=30) as response:  # cross-origin isolated
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    for module in ("app", "alae_model", "canvas", "startup"):
        assert _get(f"{demo_url}js/{module}.js")[1].startswith("text/javascript")
    assert _get(demo_url + "vendor/tfjs-backend-wasm-simd.wasm")[1] == "application/wasm"
    status, _, body = _get(demo_url + "models/index.json")
    index = {m["name"]: m for m in json.loads(body)}
    assert {"mnist_mlp", "mnist_style_small"} <= set(index)
    assert index["mnist_mlp"]["quantization"] == "uint8"
    manifest = json.loads(_get(demo_url + "models/mnist_mlp/manifest.json")[2])
    status, kind, weights = _get(demo_url + "models/mnist_mlp/encoder/group1-shard1of1.bin")
    assert status == 200 and len(weights) == manifest["graphs"]["encoder"]["bytes"] - len(
        _get(demo_url + "models/mnist_mlp/encoder/model.json")[2])


@pytest.mark.parametrize("path", [
    "/../setup.py", "/%2e%2e/setup.py", "/js/../server.py", "/server.py", "/__init__.py",
    "/package.json", "/node_modules/@tensorflow/tfjs/package.json", "/tests/browser_check.mjs",
    "/models/mnist_mlp/../../server.py", "/models/mnist_mlp/..%2f..%2fserver.py",
    "/models/mnist_mlp/encoder/%2e%2e/%2e%2e/%2e%2e/setup.py", "/vendor/../server.py",
    "/vendor/tf.js", "/models/nope/manifest.json", "/models/.hidden/manifest.json",
    "/js/app.js%00.png", "/%2fetc%2fpasswd", "//etc/passwd",
])
def test_demo_serves_nothing_outside_its_files(demo_url, path):
    assert _raw_status(demo_url, path) == 404


def test_demo_refuses_a_busy_port_and_a_bad_models_folder(demo_url, tmp_path, capsys):
    port = demo_url.rstrip("/").rsplit(":", 1)[1]
    for args, expected in (
            (["--port", port], f"port {port} on 127.0.0.1 is in use"),
            (["--port", "0", "--models", str(tmp_path / "missing")], "not a folder"),
            (["--port", "0", "--models", str(tmp_path)], "no TF.js export in it")):
        assert main(args) == 2, args
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("alae-demo: error: "), lines
        assert expected in lines[0], lines


def test_demo_serves_extra_exports(tmp_path):
    extra = tmp_path / "exports"
    shutil.copytree(WEB_DEMO / "models" / "mnist_style_small", extra / "my_digits")
    with _serving("--models", str(extra)) as url:
        names = [m["name"] for m in json.loads(_get(url + "models/index.json")[2])]
        assert names[0] == "my_digits" and "mnist_mlp" in names
        assert _get(url + "models/my_digits/generator/model.json")[0] == 200


@pytest.mark.system
def test_webgpu_kernel_replacements_compute_what_tfjs_kernels_do():
    """js/webgpu_kernels.js's Tile (axes merged to rank 4 or lower) and AddN (at most MAX_ADDN
    per call) give what TF.js's own kernels give, leak no data, and merge the upsampling's
    rank-6 tile to rank 3; run on Node's CPU backend (the page's WebGPU runs are below)."""
    result = subprocess.run([node(), str(WEB_DEMO / "tests" / "webgpu_kernels_check.mjs")],
                            capture_output=True, text=True, timeout=120, cwd=WEB_DEMO)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["replaced"] and not out["unknown_backend"]
    assert out["result"] == out["reference"] and out["leaked_buffers"] == 0
    assert out["merged"][0] == {"shape": [6, 4, 5], "reps": [1, 2, 2]}  # [2, 3, 1, 4, 1, 5]
    assert len(out["merged"][4]["shape"]) == 5  # nothing to merge
    assert [s[0][0] for s in out["result"]["sums"]] == [2 ** n - 1 for n in range(1, 10)]
    assert out["max_addn"] < 8  # the sums of 9 tensors went through more than one call


@pytest.mark.system
def test_page_functions_pick_threads_report_loading_and_plan_webgpu_batches():
    """The page's plain functions in Node: WASM's thread count (one per logical core, at most
    TF.js's pool of 8; ?threads=N checked), the loading line in bytes and time left, and the
    WebGPU batch plan from the storage-buffer limit."""
    result = subprocess.run([node(), str(WEB_DEMO / "tests" / "page_functions_check.mjs")],
                            capture_output=True, text=True, timeout=60, cwd=WEB_DEMO)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    threads = out["threads"]
    assert threads["default_2_cores"] == {"threads": 2} and threads["asked_3"] == {"threads": 3}
    assert threads["default_64_cores"] == {"threads": 8}
    for bad in ("asked_0", "asked_x", "asked_9"):
        assert "is not a thread count: use a whole number from 1 to 8" in threads[bad]["problem"]
    loading = out["loading"]
    assert loading["start"] == "loading m: 0.0 of 3.9 MB" and loading["done"].endswith("3.9 MB")
    assert loading["half"].endswith(", about 3 s left"), loading["half"]
    assert loading["nearly"].endswith(", under a second left")
    assert out["webgpu"] == {"encoder": 256, "generator": 64, "mapping": "Infinity"}
    assert out["webgpu_small"]["generator"] == 0  # one image does not fit: the page says so


# ---------------------------------------------------------------- in headless Chromium


def _chromium():
    if os.environ.get("ALAE_SKIP_BROWSER_TESTS") == "1":
        pytest.skip("ALAE_SKIP_BROWSER_TESTS=1")
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    assert os.path.exists(path), (
        "no Chromium: install Debian's chromium (make setup does: apt-get install chromium), "
        "or set ALAE_SKIP_BROWSER_TESTS=1")
    return path


def _digit_png(path):
    """A real MNIST test digit as a 112 px PNG file; returns the 28 px original in [0, 1]."""
    digits, _ = load_embedded_mnist("test")
    Image.fromarray(digits[7]).resize((112, 112), Image.BILINEAR).save(path)
    return digits[7].astype("float32") / 255.0


def _photo_png(path):
    """A smooth landscape RGB picture (PHOTO_SIZE) as a PNG file: red grows to the right,
    green downwards, a blue disc in the middle."""
    width, height = PHOTO_SIZE
    y, x = np.mgrid[0:height, 0:width]
    disc = np.exp(-((x - width / 2) ** 2 + (y - height / 2) ** 2) / (2 * (height / 4) ** 2))
    picture = np.stack([x / (width - 1), y / (height - 1), disc], axis=-1)
    Image.fromarray((255 * picture).round().astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def demo_process(exported, tmp_path_factory):
    """A real ``alae-demo --models DIR`` process: (the line it printed, its URL, {model: export
    folder}). DIR holds "tiny128", the TF.js export of the official 128 px RGB StyleALAE
    imported by alae-import (its fused stride-2 convolutions then run on every backend too),
    beside the shipped models."""
    served = tmp_path_factory.mktemp("served")
    (served / "tiny128").symlink_to(exported["style128"][2], target_is_directory=True)
    process = subprocess.Popen(
        [str(BIN / "alae-demo"), "--port", "0", "--quiet", "--models", str(served)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = process.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not match:
        process.kill()
        raise AssertionError(f"alae-demo did not start: {line!r} {process.stderr.read()[-2000:]}")
    exports = {"tiny128": served / "tiny128",
               **{m: WEB_DEMO / "models" / m for m in MODELS if m != "tiny128"}}
    yield line, match.group(1), exports
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.system
def test_alae_demo_process_prints_its_url_and_serves(demo_process):
    line, url, _ = demo_process
    assert line.startswith(f"alae-demo: serving {url} (models: tiny128, mnist_mlp, "
                           "mnist_style_small; pick one with ?model=NAME"), line
    status, kind, body = _get(url)
    assert status == 200 and kind.startswith("text/html") and b"js/app.js" in body
    assert _get(url + "models/tiny128/manifest.json")[0] == 200


# The model whose WebGL page runs under a lowered texture limit (chunking_texture_limit).
CHUNKED = "tiny128"
CHUNK = 1  # images per generator call with direct convolutions (js/alae_model.js webglPlan)
# js/alae_model.js's share of a texture one call may fill (read from the source).
TEXTURE_FILL = float(re.search(r"export const TEXTURE_FILL = ([0-9.]+);",
                               (WEB_DEMO / "js" / "alae_model.js").read_text()).group(1))


def _manifest(export_dir):
    return json.loads((Path(export_dir) / "manifest.json").read_text())


def chunking_texture_limit(manifest):
    """A WEBGL_MAX_TEXTURE_SIZE too small for the model's im2col matrices, so that the page
    runs direct convolutions and decodes its grids one image per call: what a GPU with small
    textures does with a large model. The grid's own inputs (8 noise vectors) and an 8-image
    tensor still fit: the page makes them before it splits the call."""
    generator = manifest["graphs"]["generator"]
    values = 8 * max(manifest["noise"]["size"], generator["tensor_values"])
    limit = math.ceil(math.sqrt(values / TEXTURE_FILL))
    assert limit < generator["im2col_width"] / 2  # the im2col matrix is wider
    return limit


@pytest.fixture(scope="module")
def browser_runs(demo_process):
    """({(model, backend): what the page showed}, the dropped digit's 28 px original): every
    model on every backend from one run of browser_check.mjs (one Chromium); the MNIST models
    also get a real digit dropped on them, the colour model a wide photo (OUTPUT/photo.png)."""
    chromium = _chromium()
    _, url, exports = demo_process
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    original = _digit_png(OUTPUT / "digit.png")
    _photo_png(OUTPUT / "photo.png")
    result = subprocess.run(
        [node(), str(WEB_DEMO / "tests" / "browser_check.mjs"), "--url", url, "--out",
         str(OUTPUT), "--model", ",".join(MODELS), "--chromium", chromium, "--backends",
         ",".join(BACKENDS), "--png", str(OUTPUT / "digit.png"), "--photo",
         str(OUTPUT / "photo.png"), "--max-texture",
         f"{CHUNKED}={chunking_texture_limit(_manifest(exports[CHUNKED]))}",
         "--pooled", f"{CHUNKED}=webgl+wasm", "--only",
         f"webgpu={'+'.join(WEBGPU_MODELS)},cpu={'+'.join(CPU_MODELS)}", "--pages", "1"],
        capture_output=True, text=True, timeout=900, cwd=WEB_DEMO)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((OUTPUT / "results.json").read_text())
    return {(run["model"], run["backend"]): run for run in results["runs"]}, original


@pytest.fixture(scope="module", params=MODELS)
def browser_results(request, browser_runs, demo_process):
    """(model, {backend: what the page showed}, dropped digit or None, output dir, export);
    the backends are BACKENDS, without WebGPU for a model not in WEBGPU_MODELS and without
    the CPU for one not in CPU_MODELS."""
    model = request.param
    runs, original = browser_runs
    return (model, {backend: run for (name, backend), run in runs.items() if name == model},
            None if model == "tiny128" else original, OUTPUT, demo_process[2][model])


@pytest.mark.slow
@pytest.mark.system
def test_page_loads_on_every_backend_without_errors(browser_results):
    model, runs, _, _, export_dir = browser_results
    styled = json.loads((export_dir / "manifest.json").read_text())["num_styles"] > 0
    assert set(runs) == (set(BACKENDS) - (set() if model in WEBGPU_MODELS else {"webgpu"})
                         - (set() if model in CPU_MODELS else {"cpu"}))
    for backend, run in runs.items():
        assert run["ready"] and run["error"] is None, (backend, run["error"], run["status"])
        assert run["active_backend"] == backend
        assert run["console_errors"] == [] and run["page_errors"] == [], backend
        assert f"{model} on {backend}" in run["status"]
        assert "reconstruct" in run["timing"] and " ms" in run["timing"]
        assert run["mixing_visible"] == styled
        assert run["isolated"] and "cross-origin isolated" in run["runtime"], backend
    assert "WebGL" in runs["webgl"]["renderer"]
    assert f"textures up to {runs['webgl']['max_texture']} px" in runs["webgl"]["runtime"]
    if "webgpu" in runs:  # SwiftShader's Vulkan adapter, its buffer limit in the header
        assert "swiftshader" in runs["webgpu"]["renderer"], runs["webgpu"]["renderer"]
        assert re.search(r"buffers up to \d+ MiB", runs["webgpu"]["runtime"])
    # The header says how many threads WASM computes with (TF.js's threaded build, loaded in
    # an isolated page, reports 1 on a 2-core machine, also when the page asks for 2 before
    # it starts: docs/web_demo.md).
    wasm = runs["wasm"]
    assert wasm["threads"] >= 1 and f"{wasm['threads']} thread" in wasm["runtime"]


@pytest.mark.slow
@pytest.mark.system
def test_grids_are_decoded_in_chunks_that_fit_a_lowered_texture_limit(browser_results):
    """The page of CHUNKED on WebGL runs with WEBGL_MAX_TEXTURE_SIZE lowered below what its
    im2col matrices and an 8-image grid need: it switches to direct convolutions (TF.js
    computes a wrong im2col convolution once the matrix is wider than the limit), decodes the
    grid one image per call, the same images WASM decodes in one call.
    (Its drawn and dropped reconstructions are compared with Node below.)"""
    model, runs, _, _, export_dir = browser_results
    webgl = runs["webgl"]
    if "webgpu" in runs:  # a whole grid fits SwiftShader's 1 GiB storage buffers
        webgpu = runs["webgpu"]
        most = webgpu["max_batch"]["generator"]  # null: Infinity (an export without sizes)
        assert (most is None or most >= 8) and webgpu["chunked"]["calls"] == 0, webgpu
    if model != CHUNKED:  # the GPU's own limit: TF.js's default convolution, no chunks
        assert webgl["max_texture"] >= 4096 and webgl["chunked"]["calls"] == 0, model
        assert webgl["convolution"] == "im2col", model
        return
    limit = chunking_texture_limit(_manifest(export_dir))
    assert webgl["max_texture"] == limit and webgl["convolution"] == "direct"
    assert "direct convolutions" in webgl["runtime"]
    assert webgl["max_batch"]["generator"] == CHUNK and webgl["max_batch"]["encoder"] >= 1
    assert webgl["chunked"]["calls"] >= 1  # the first sample grid: 8 images in 8 calls
    assert webgl["chunked"]["chunks"] == 8 * webgl["chunked"]["calls"]
    for backend in set(runs) & {"wasm", "cpu"}:
        assert runs[backend]["chunked"]["calls"] == 0 and runs[backend]["convolution"] is None
    assert all("pooled_samples" not in run for b, run in runs.items() if b not in ("webgl", "wasm"))
    got, want = (np.asarray(runs[b]["pooled_samples"]) for b in ("webgl", "wasm"))
    assert got.shape == want.shape == (8, 16, 16, 3)
    assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()
    assert np.abs(want[1:] - want[:1]).max() > 0.05  # the eight samples differ


@pytest.mark.slow
@pytest.mark.system
def test_drawn_and_dropped_pictures_reconstruct_as_in_node(browser_results, tmp_path):
    model, runs, original, _, export_dir = browser_results
    manifest = json.loads((export_dir / "manifest.json").read_text())
    side, channels = manifest["resolution"], manifest["channels"]
    noise, pad = manifest["noise"]["size"], (side - 28) // 2
    states = ("drawn", "photo") if original is None else ("drawn", "dropped")
    images, pictures, rows = [], [], []
    for backend, run in runs.items():
        assert run["drawn"]["reconstructions_while_drawing"] >= 1  # live while drawing
        if original is not None:  # the dropped PNG arrives as the digit it shows
            dropped = np.asarray(run["dropped"]["input"], np.float32).reshape(side, side)
            digit = dropped[pad:side - pad, pad:side - pad]
            assert np.corrcoef(digit.ravel(), original.ravel())[0, 1] > 0.8, backend
        for state in states:
            x = np.asarray(run[state]["input"], np.float32).reshape(side, side, channels)
            assert x.sum() > 5, (backend, state, "empty input")
            images.append(x)
            pictures.append(np.asarray(run[state]["reconstruction"], np.float32))
            rows.append((backend, state))
    feeds = {"images": np.stack(images)}
    if manifest["num_styles"]:
        fixed = np.asarray(runs["wasm"]["fixed_noise"], np.float32)
        assert fixed.shape == (noise,)
        feeds["noise"] = np.tile(fixed, (len(images), 1))
    node_out = run_in_node(export_dir, {"reconstruct": feeds}, tmp_path)
    expected = node_out["chain_reconstruct"]["images"].reshape(len(images), -1)
    errors = {row: float(np.abs(got - want).max())
              for row, got, want in zip(rows, pictures, expected, strict=True)}
    print(f"{model}: max |browser - Node| {errors}")
    tolerance = TOLERANCE if original is not None else DEEP_TOLERANCE
    assert max(errors.values()) <= tolerance, errors
    for (backend, state), want in zip(rows, expected, strict=True):
        if original is not None:  # trained models draw digits
            assert 0.02 < np.mean(want > 0.5) < 0.6, (backend, state, "not a digit-like picture")
        else:
            assert 0.05 < np.mean((want > 0.01) & (want < 0.99)), (backend, state, "saturated")


@pytest.mark.slow
@pytest.mark.system
def test_a_wide_photo_is_cropped_to_the_centre_square_on_a_colour_model(browser_results):
    """On the RGB model the photo's centre square, scaled to the model's side, is what E sees,
    and a note under the drawing says so; a digit model letterboxes instead, without a note."""
    model, runs, original, out, export_dir = browser_results
    side = json.loads((export_dir / "manifest.json").read_text())["resolution"]
    if original is not None:  # a digit model: the digit is square, nothing is cropped
        for backend, run in runs.items():
            assert "photo" not in run and run["dropped"]["note"] is None, backend
        return
    width, height = PHOTO_SIZE
    with Image.open(out / "photo.png") as photo:
        square = photo.crop(((width - height) // 2, 0, (width + height) // 2, height))
        want = np.asarray(square.resize((side, side), Image.BILINEAR), np.float32) / 255
    errors = {}
    for backend, run in runs.items():
        dropped = run["photo"]
        assert dropped["input_shape"] == [1, side, side, 3], backend
        assert dropped["note"] == (
            f'"photo.png" ({width} x {height}) was cropped to its centre square, {height} x '
            f"{height}, for the model's square {side} x {side} input."), backend
        assert dropped["message"] is None, backend
        got = np.asarray(dropped["input"], np.float32).reshape(side, side, 3)
        errors[backend] = float(np.abs(got - want).max())
    print(f"{model}: max |browser input - PIL centre crop| {errors}")
    assert max(errors.values()) <= CROP_TOLERANCE, errors


@pytest.mark.slow
@pytest.mark.system
def test_broken_image_file_shows_a_message_and_changes_nothing(browser_results):
    _, runs, _, _, _ = browser_results
    for backend, run in runs.items():
        bad = run["bad_file"]
        assert bad["visible"] and "notes.png" in bad["message"], backend
        assert "not an image" in bad["message"]
        assert bad["reconstructions"] == 0 and bad["canvas_change"] == 0, backend


@pytest.mark.slow
@pytest.mark.system
def test_sliders_change_the_output(browser_results):
    _, runs, _, _, _ = browser_results
    for backend, run in runs.items():
        sliders = run["sliders"]
        assert sliders["t"] > 1.0 and sliders["psi"] > 1.0, (backend, sliders)
        if run["mixing_visible"]:
            assert sliders["crossover"] > 1.0 and sliders["crossover_mid"] > 0.5, sliders


@pytest.mark.slow
@pytest.mark.system
def test_every_action_frees_the_tensors_it_made(browser_results):
    """tf.memory().numTensors is the same after loading and after every action (drawing, a
    dropped picture, a broken file, each slider): the page disposes what it computes."""
    _, runs, _, _, _ = browser_results
    for backend, run in runs.items():
        counts = run["tensors"]
        assert len(counts) >= 6 and len(set(counts.values())) == 1, (backend, counts)


@pytest.mark.slow
@pytest.mark.system
def test_screenshots_of_each_state(browser_results):
    model, runs, original, out, _ = browser_results
    for backend, run in runs.items():
        names = {Path(p).name for p in run["screenshots"]}
        states = ["loaded", "drawn", "bad_file", "t_1", "psi_0"]
        states.append("dropped" if original is not None else "photo")
        if run["mixing_visible"]:
            states += ["crossover_max", "crossover_mid"]
        for state in states:
            assert f"{model}_{backend}_{state}.png" in names
        for path in run["screenshots"]:
            with Image.open(path) as image:
                assert image.size[0] >= 800 and len(set(image.convert("L").getdata())) > 10
    assert (out / "results.json").exists()

