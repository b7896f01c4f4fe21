"""alae-demo: serves the in-browser ALAE demo on 127.0.0.1 and prints its URL.

It serves the demo's own files and nothing else: the page (``index.html``, ``style.css``,
``js/*.js``), the TF.js runtime files it needs from ``web_demo/node_modules`` (mapped by name
under ``/vendor/``), and TF.js exports under ``/models/NAME/`` (the shipped ones in
``web_demo/models/`` and any in ``--models DIR``). Every other path, any path with ``..`` or a
dot-file, and files of other types in an export folder answer 404.
"""

import argparse
import errno
import functools
import json
import os
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from alae_tf.cli import UsageError, add_verbose_flag, run_main

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_MODELS = os.path.join(HERE, "models")
NODE_MODULES = os.path.join(HERE, "node_modules")
PAGE_FILES = ("index.html", "style.css")
VENDOR = {
    "tf.min.js": "@tensorflow/tfjs/dist/tf.min.js",
    "tf-backend-wasm.min.js": "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "tf-backend-webgpu.min.js": "@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js",
    "tfjs-backend-wasm.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm":
        "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm":
        "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".bin": "application/octet-stream",
    ".wasm": "application/wasm",
}
MODEL_FILE_TYPES = (".json", ".bin")
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def find_exports(folders):
    """{name: folder} of the TF.js exports (folders with a manifest.json) in ``folders``.

    Earlier folders win on a name clash, so ``--models`` can shadow a shipped model.
    """
    exports = {}
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if NAME.match(name) and os.path.isfile(os.path.join(path, "manifest.json")):
                exports.setdefault(name, os.path.realpath(path))
    return exports


def model_index(exports):
    """The page's list of models: name, preset, family, quantization, demo download size."""
    index = []
    for name, folder in exports.items():
        try:
            with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            graphs = manifest["graphs"]
            index.append({
                "name": name, "preset": manifest["preset"], "model": manifest["model"],
                "quantization": manifest["quantization"],
                "demo_bytes": sum(graphs[g]["bytes"] for g in ("encoder", "generator", "mapping")),
            })
        except (OSError, ValueError, KeyError, TypeError) as e:
            index.append({"name": name, "error": f"unreadable manifest.json ({e})"})
    return index


def resolve(path, exports):
    """The file to send for URL ``path``, or None (404). Never leaves the served folders."""
    parts = path.split("/")[1:]
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts[:-1]) or (
            parts[-1].startswith(".") or "\\" in path or "\0" in path):
        return None
    if path == "/":
        return os.path.join(HERE, "index.html")
    if len(parts) == 1 and parts[0] in PAGE_FILES:
        return os.path.join(HERE, parts[0])
    if len(parts) == 2 and parts[0] == "js" and NAME.match(parts[1]) and \
            parts[1].endswith(".js"):
        return os.path.join(HERE, "js", parts[1])
    if len(parts) == 2 and parts[0] == "vendor" and parts[1] in VENDOR:
        return os.path.join(NODE_MODULES, VENDOR[parts[1]])
    if len(parts) >= 3 and parts[0] == "models" and parts[1] in exports:
        root = exports[parts[1]]
        if not all(NAME.match(p) for p in parts[2:]) or \
                not parts[-1].endswith(MODEL_FILE_TYPES):
            return None
        candidate = os.path.realpath(os.path.join(root, *parts[2:]))
        if os.path.commonpath([candidate, root]) != root:
            return None
        return candidate
    return None


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "alae-demo"

    def __init__(self, *args, exports, quiet, **kwargs):
        self.exports = exports
        self.quiet = quiet
        super().__init__(*args, **kwargs)

    def _send(self, status, body, content_type, head_only=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        # Cross-origin isolation: lets TF.js's WASM backend use its threaded build (shared
        # memory) and the page time calls to microseconds. The demo loads nothing from
        # other origins, so nothing breaks.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _serve(self, head_only):
        path = unquote(urlsplit(self.path).path)
        if path == "/models/index.json":
            body = json.dumps(model_index(self.exports)).encode()
            return self._send(HTTPStatus.OK, body, CONTENT_TYPES[".json"], head_only)
        file = resolve(path, self.exports)
        kind = CONTENT_TYPES.get(os.path.splitext(file or "")[1])
        if file is None or kind is None or not os.path.isfile(file):
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head_only)
        with open(file, "rb") as f:
            body = f.read()
        self._send(HTTPStatus.OK, body, kind, head_only)

    def do_GET(self):
        self._serve(head_only=False)

    def do_HEAD(self):
        self._serve(head_only=True)

    def log_message(self, format, *args):
        if not self.quiet:
            sys.stderr.write(f"alae-demo: {self.address_string()} {format % args}\n")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="alae-demo",
        description="Serve the in-browser ALAE demo (TF.js: the encoder and generator run in "
        "the browser) on 127.0.0.1 and print its URL. Ships with mnist_mlp and "
        "mnist_style_small; add your own exports (alae-export RUN OUT --format tfjs) with "
        "--models OUT and pick one with ?model=NAME.")
    parser.add_argument("--port", type=int, default=8080,
                        help="port on 127.0.0.1 (default: 8080; 0 picks a free one)")
    parser.add_argument("--models", action="append", default=[], metavar="DIR",
                        help="a folder of TF.js exports (alae-export's OUT) to serve as well; "
                        "may be repeated")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    add_verbose_flag(parser)
    return parser


def make_server(args):
    """(server, exports): the demo's server on 127.0.0.1:``args.port``, not yet serving, and
    the {name: folder} it serves under /models/. Raises UsageError if it cannot listen."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number (0 to 65535)")
    missing = [name for name, rel in VENDOR.items()
               if not os.path.isfile(os.path.join(NODE_MODULES, rel))]
    if missing:
        raise UsageError(f"the TF.js runtime is not installed ({NODE_MODULES} lacks "
                         f"{missing[0]}): run `npm ci --prefix {HERE}` (make demo does)")
    for folder in args.models:
        if not os.path.isdir(folder):
            raise UsageError(f"--models {folder}: not a folder (give alae-export's OUT)")
    exports = find_exports([*args.models, SHIPPED_MODELS])
    if args.models and not find_exports(args.models):
        raise UsageError(f"--models {', '.join(args.models)}: no TF.js export in it (a folder "
                         "NAME/ with manifest.json, from alae-export RUN OUT --format tfjs)")
    handler = functools.partial(DemoHandler, exports=exports, quiet=args.quiet)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"port {args.port} on 127.0.0.1 is in use; pick another with "
                             "--port (0 picks a free one)") from None
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port} ({e.strerror})") from None
    return server, exports


def serve(args):
    server, exports = make_server(args)
    port = server.server_address[1]
    print(f"alae-demo: serving http://127.0.0.1:{port}/ (models: {', '.join(exports)}; "
          "pick one with ?model=NAME, a backend with ?backend=webgpu|webgl|wasm|cpu); "
          "Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_main("alae-demo", lambda: serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
