"""alae-serve: a local server that speaks TF Serving's REST predict API for one export.

For trying an export without TF Serving (whose binary ships only as Docker images and in
Google's apt repository). It is a FastAPI application run by uvicorn: FastAPI's routing and
uvicorn's HTTP handling are mature and small, where KServe's model server, which speaks the
same V1 protocol, pins older psutil and python-dateutil than this project's lock and pulls in
the Kubernetes client. The protocol itself lives in ``alae_tf.export.rest``.

Endpoints (NAME is the model name, by default the folder name of MODEL_BASE_PATH):

- ``POST /v1/models/NAME:predict`` and ``POST /v1/models/NAME/versions/V:predict``
- ``GET /v1/models/NAME/metadata``
- ``GET /v1/models/NAME``

Errors are TF Serving's: a JSON body ``{"error": "..."}`` with a 4xx status, for every request
a client can get wrong (unknown paths and methods, bodies over the size limit, bodies that are
not JSON or nested too deeply, inputs the signatures refuse).
"""

import json
import socket

from alae_tf.cli import (
    ArgumentParser,
    UsageError,
    add_verbose_flag,
    early_flags,
    positive_int,
    quiet_tensorflow,
    run_main,
)

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


class ReadWholeBody:
    """ASGI middleware: reads (and drops) what the application left of a request's body before
    the response starts.

    An answer sent before the client has sent its whole body (a 413, a 404) is otherwise
    followed by closing a socket that holds unread data, which the kernel answers with a
    reset: the client, still sending, sees the reset instead of the answer.

    Args:
        app: the ASGI application to wrap.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        finished = False

        async def tracked_receive():
            nonlocal finished
            message = await receive()
            finished = message["type"] == "http.disconnect" or not message.get("more_body")
            return message

        async def send_after_body(message):
            if message["type"] == "http.response.start":
                while not finished:
                    await tracked_receive()
            await send(message)

        await self.app(scope, tracked_receive, send_after_body)


async def read_json(request, max_request_bytes):
    """The request's body, decoded; PredictError (400, 413) if it is too large or not JSON."""
    from alae_tf.export.rest import PredictError

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_request_bytes:
        raise PredictError(f"request body of {declared} bytes is larger than the limit of "
                           f"{max_request_bytes} bytes", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_request_bytes:
            raise PredictError(f"request body is larger than the limit of "
                               f"{max_request_bytes} bytes", status=413)
    try:
        return json.loads(body)
    except RecursionError:
        raise PredictError("JSON Parse error: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PredictError(f"JSON Parse error: {e}") from None


def create_app(served, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES):
    """The FastAPI application that serves ``served`` (an ``rest.ServedModel``)."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from alae_tf.export.rest import PredictError

    app = FastAPI(title=f"alae-serve: {served.name}", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(ReadWholeBody)

    def error(message, status, headers=None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def routing_error(request, e):
        """A path no endpoint has (404) or a method it does not take (405)."""
        return error(f"{e.detail}: {request.method} {request.url.path}", e.status_code,
                     e.headers)

    def check_name(name, version=None):
        if name != served.name or (version is not None and version != str(served.version)):
            wanted = f"Specific({name}, {version})" if version else f"Latest({name})"
            raise PredictError(f"Servable not found for request: {wanted}", status=404)

    async def predict(request, name, version=None):
        try:
            check_name(name, version)
            body = await read_json(request, max_request_bytes)
            return JSONResponse(await run_in_threadpool(served.predict_json, body))
        except PredictError as e:
            return error(str(e), e.status)

    @app.post("/v1/models/{name}:predict")
    async def predict_latest(name: str, request: Request):
        return await predict(request, name)

    @app.post("/v1/models/{name}/versions/{version}:predict")
    async def predict_version(name: str, version: str, request: Request):
        return await predict(request, name, version)

    def describe(name, body):
        try:
            check_name(name)
        except PredictError as e:
            return error(str(e), e.status)
        return body()

    @app.get("/v1/models/{name}/metadata")
    def metadata(name: str):
        return describe(name, served.metadata)

    @app.get("/v1/models/{name}")
    def status(name: str):
        return describe(name, served.status)

    return app


def build_parser():
    parser = ArgumentParser(
        prog="alae-serve",
        description="Serve an alae-export SavedModel over TF Serving's REST predict API "
        "(a local stand-in for tensorflow/serving).")
    parser.add_argument("model_base_path",
                        help="OUT/NAME as written by alae-export; its highest version is served")
    parser.add_argument("--name", default=None,
                        help="model name in the URL (default: the folder name)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=positive_int, default=8501,
                        help="port (default: 8501, TF Serving's REST port)")
    parser.add_argument("--max-request-bytes", type=positive_int,
                        default=DEFAULT_MAX_REQUEST_BYTES,
                        help=f"largest request body accepted (default: "
                        f"{DEFAULT_MAX_REQUEST_BYTES})")
    add_verbose_flag(parser)
    return parser


def serve(args):
    import uvicorn

    from alae_tf.export.rest import PredictError, ServedModel

    if args.port > 65535:
        raise UsageError(f"--port must be at most 65535, got {args.port}")
    try:
        with socket.socket() as probe:  # fail in one line before loading, not in uvicorn
            probe.bind((args.host, args.port))
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); "
                         "pick another --port or --host") from None
    try:
        served = ServedModel(args.model_base_path, name=args.name)
    except PredictError as e:
        raise UsageError(str(e)) from None
    app = create_app(served, args.max_request_bytes)
    url = f"http://{args.host}:{args.port}/v1/models/{served.name}"
    print(f"serving {served.path} (version {served.version}) as {served.name!r}: "
          f"POST {url}:predict, GET {url}/metadata; Ctrl-C stops", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def main(argv=None):
    quiet_tensorflow(early_flags(argv)[0])
    args = build_parser().parse_args(argv)
    return run_main("alae-serve", lambda: serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
