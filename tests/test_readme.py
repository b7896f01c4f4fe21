"""The README's command examples run, so the manual cannot rot.

Every ``alae-train``, ``alae-eval``, ``alae-sample``, ``alae-export``, ``alae-serve``,
``alae-import`` and ``alae-photo`` line of the README's bash blocks is parsed by its tool's
flag parser; the ones this machine can run are run in-process, in README order, in a
temporary directory, with tiny settings appended (argparse keeps the last value of a flag),
and must leave the files they promise. The Python example (train, score, export, use) runs on
the run the README's train command wrote, and every ``docs/`` link of the README must resolve.
"""

import functools
import json
import re
import shlex
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# Appended to each command: the README's own flags with a few steps, digits and samples.
TINY = {
    "alae-train": ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
                   "--grid-every", "1"],
    "alae-eval": ["--max-train", "300", "--num-samples", "100", "--classifier-epochs", "1"],
    "alae-sample": ["--num", "8", "--interpolation-steps", "2"],
    "alae-export": [],
    "alae-serve": [],
    "alae-import": [],
    "alae-photo": ["--refine", "3"],
}
# The README imports the authors' CelebA-HQ model; the test gives it the 128 px fixture made by
# their code under the README's file names.
IMPORT_STAND_INS = {"model_262r.pth": "model_legacy.pth", "celeba-hq256.yaml": "config.yaml",
                    "model_157.pth": "model_zip.pth", "ffhq.yaml": "config.yaml"}
# The photo: matplotlib's grace_hopper.jpg; the authors' directions: random unit vectors of the
# fixture's latent size under their file names.
PHOTO_STAND_IN = "photo.jpg"
DIRECTIONS_STAND_IN = "principal_directions"
# Commands that need what a test machine lacks (several GPUs or machines) are parsed, not run.
NOT_RUN = ("--strategy",)


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def readme_commands():
    """(tool, argv) for every command line of the README's bash blocks, in order."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value prefixes
                words.pop(0)
            if words and words[0] in TINY:
                commands.append((words[0], words[1:]))
    return commands


def _parser(tool):
    from alae_tf.export import cli as export_cli
    from alae_tf.export import serve
    from alae_tf.training import evaluate, import_official, photo, sample, train

    return {"alae-train": train.build_parser, "alae-eval": evaluate.build_parser,
            "alae-sample": sample.build_parser, "alae-export": export_cli.build_parser,
            "alae-serve": serve.build_parser, "alae-import": import_official.build_parser,
            "alae-photo": photo.build_parser}[tool]()


def _get(app, path):
    """(status, JSON body) of a GET through the ASGI app, without a socket."""
    import asyncio

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8501),
             "root_path": ""}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


def _train(args, out):
    run_dir = Path(args.run_dir or f"runs/{args.preset or 'mnist_mlp'}")
    if args.dry_run:
        assert "encoder" in out and not run_dir.exists()
        return
    assert (run_dir / "config.json").exists() and (run_dir / "model.keras").exists()
    assert list((run_dir / "checkpoints").glob("ckpt-*.index"))
    assert list((run_dir / "samples").glob("*.png"))


def _sample(args, out):
    out_dir = Path(args.out_dir or Path(args.run_dir) / "samples")
    # An imported run's data source is not on the machine: samples alone, and a note.
    imported = "note: no real images" in out
    for name in ("samples",) if imported else ("samples", "reconstructions", "interpolations"):
        assert (out_dir / f"{name}.png").exists(), name


@pytest.mark.slow  # trains, evaluates and exports a model: about half a minute on 2 idle cores
def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    from alae_tf.export import cli as export_cli
    from alae_tf.export import serve
    from alae_tf.export.rest import ServedModel
    from alae_tf.training import evaluate, import_official, photo, sample, train

    mains = {"alae-train": train.main, "alae-eval": evaluate.main, "alae-sample": sample.main,
             "alae-export": export_cli.main, "alae-import": import_official.main,
             "alae-photo": photo.main}
    monkeypatch.chdir(tmp_path)
    for name, fixture in IMPORT_STAND_INS.items():
        shutil.copy(ROOT / "tests" / "data" / "reference" / "style128" / fixture, name)
    shutil.copy(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
                PHOTO_STAND_IN)
    Path(DIRECTIONS_STAND_IN).mkdir()
    rng = np.random.default_rng(0)
    for index in (1, 4):  # smile, young
        vector = rng.normal(size=16)
        np.save(Path(DIRECTIONS_STAND_IN) / f"direction_{index}.npy", vector / np.linalg.norm(
            vector))
    commands = readme_commands()
    ran, exported = set(), {}
    for tool, argv in commands:
        args = _parser(tool).parse_args(argv)  # every example's flags exist and validate
        if any(flag in argv for flag in NOT_RUN):
            continue
        shown = shlex.join([tool, *argv])
        if tool == "alae-serve":
            # The served path is the one the README's export wrote, and it serves.
            base = Path(args.model_base_path)
            assert base.resolve() in exported, f"{shown}: not written by an export above"
            app = serve.create_app(ServedModel(str(base), name=args.name))
            status, body = _get(app, f"/v1/models/{exported[base.resolve()]}/metadata")
            assert status == 200 and "reconstruct" in json.dumps(body), shown
            ran.add(tool)
            continue
        assert mains[tool]([*argv, *TINY[tool]]) == 0, shown
        out = capsys.readouterr().out
        if tool == "alae-train":
            _train(args, out)
        elif tool == "alae-eval":
            assert (Path(args.run_dir) / "metrics.json").exists(), shown
        elif tool == "alae-sample":
            _sample(args, out)
        elif tool == "alae-import":
            assert (Path(args.run_dir) / "checkpoints").is_dir(), shown
            if args.directions:
                assert "kept 2 attribute directions (smile, young)" in out, shown
        elif tool == "alae-photo":
            for photo_path in args.photos:
                stem = Path(photo_path).stem
                for key in ("aligned", "reconstruction", "refined", "edited", "pasted"):
                    assert (Path(args.out) / f"{stem}_{key}.png").exists(), (shown, key)
        elif tool == "alae-export":
            name = args.name or json.loads(
                (Path(args.run_dir) / "config.json").read_text())["preset"]["name"]
            base = Path(args.out) / name
            assert (base / str(args.version) / "saved_model.pb").exists(), shown
            exported[base.resolve()] = name
        ran.add(tool)
    assert ran == set(TINY), f"the README shows no runnable {set(TINY) - ran}"

    # The Python example, on the model the README's train command wrote.
    (code,) = _blocks("python")
    (path,) = re.findall(r'load_model\("([^"]+)"\)', code)
    assert Path(path).exists(), f"the README's train commands write no {path}"
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 28, 28, 1)).astype("float32")
    names = {"x": x, "x_a": x[:1], "x_b": x[1:], "z": rng.normal(size=(2, 50)).astype("float32")}
    # Its metrics with TINY's alae-eval settings (the defaults fit on all 7,996 digits).
    from alae_tf.metrics import registry

    monkeypatch.setattr(registry, "MetricOptions", functools.partial(
        registry.MetricOptions, max_train=300, num_samples=100, classifier_epochs=1))
    exec(code, names)  # the README's own example
    assert names["result"].epoch >= 1 and Path(names["result"].model_path).is_file()
    assert 0.0 <= names["scores"]["representation"]["w/raw"]["knn1"] <= 1.0
    assert names["scores"]["reconstruction_mse"] > 0
    (version,) = re.findall(r'export_saved_model\(model, preset, "([^"]+)"\)', code)
    assert (Path(version) / "saved_model.pb").is_file()
    assert names["x_rec"].shape == x.shape and names["w"].shape == (2, 50)
    assert names["x_new"].shape == x.shape


def test_readme_curl_example_names_the_served_model():
    """The curl line asks alae-serve's default address for the model the export wrote."""
    serve_args = [_parser(tool).parse_args(argv) for tool, argv in readme_commands()
                  if tool == "alae-serve"]
    served = {Path(a.model_base_path).name for a in serve_args}
    urls = re.findall(r"curl (http://\S+)", "".join(_blocks("bash")))
    assert urls
    for url in urls:
        match = re.fullmatch(r"http://127\.0\.0\.1:8501/v1/models/([^/:]+)(/metadata)?", url)
        assert match and match.group(1) in served, url


def _anchors(markdown):
    """GitHub's anchors of a Markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\]\((docs/[^)\s]+)\)", README))))
def test_readme_docs_links_resolve(target):
    path, _, anchor = target.partition("#")
    assert (ROOT / path).is_file(), f"README links to a missing {path}"
    if anchor:
        assert anchor in _anchors((ROOT / path).read_text()), f"no heading for #{anchor}"
