"""Serving latency of an alae-export SavedModel: in-process signatures and alae-serve over HTTP.

For every float32 signature at batch 1 and batch 64: median and p99 milliseconds per call and
images/s (batch / median), first calling the loaded SavedModel's signature in this process,
then POSTing TF Serving row-format JSON to an ``alae-serve`` started on 127.0.0.1 (client
time: request sent to response body read; the request bodies are encoded beforehand).

    python benchmarks/serving_latency.py runs/export/mnist_mlp runs/export/mnist_style_small

Run it with nothing else busy: on a 2-core machine the server and the client share the cores.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def _inputs(spec, batch, rng):
    import numpy as np

    shape = [batch if d is None else d for d in spec.shape]
    if spec.name == "images":
        return rng.uniform(size=shape).astype("float32")
    if spec.name == "truncation_psi":
        return np.full(shape, 0.7, "float32")
    if spec.name == "noise_seed":
        return np.arange(batch, dtype="int64")
    return rng.normal(size=shape).astype("float32")


def _stats(times, batch):
    times = sorted(times)
    median = statistics.median(times)
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return {"median_ms": median * 1e3, "p99_ms": p99 * 1e3, "images_per_s": batch / median}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(base_path, calls, batches):
    import numpy as np
    import tensorflow as tf

    from alae_tf.export.rest import ServedModel

    served = ServedModel(base_path)
    rng = np.random.default_rng(0)
    names = [n for n in sorted(served.signatures)
             if n not in ("serving_default", "metadata") and not n.endswith("_uint8")]
    requests = {}
    results = []
    for name in names:
        for batch in batches:
            specs = served.input_specs[name]
            args = {k: _inputs(s, batch, rng) for k, s in specs.items()}
            tensors = {k: tf.constant(v) for k, v in args.items()}
            fn = served.signatures[name]
            count = calls if batch == 1 else max(20, calls // 10)
            for _ in range(5):
                fn(**tensors)
            times = []
            for _ in range(count):
                start = time.perf_counter()
                outputs = fn(**tensors)
                next(iter(outputs.values())).numpy()
                times.append(time.perf_counter() - start)
            results.append({"signature": name, "batch": batch, "path": "in-process",
                            "calls": count, **_stats(times, batch)})
            body = {"signature_name": name,
                    "instances": [{k: v[i].tolist() for k, v in args.items()}
                                  for i in range(batch)]}
            requests[(name, batch)] = (json.dumps(body).encode(), count)

    port = _free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "alae-serve"), base_path, "--port",
         str(port), "--max-request-bytes", str(64 * 1024 * 1024)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    url = f"http://127.0.0.1:{port}/v1/models/{served.name}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    sys.exit(f"alae-serve did not start: {server.stderr.read()[-2000:]}")
                time.sleep(0.5)
        for (name, batch), (body, count) in requests.items():
            request = urllib.request.Request(f"{url}:predict", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            for _ in range(5):
                urllib.request.urlopen(request).read()
            times = []
            for _ in range(count):
                start = time.perf_counter()
                urllib.request.urlopen(request).read()
                times.append(time.perf_counter() - start)
            results.append({"signature": name, "batch": batch, "path": "alae-serve",
                            "calls": count, **_stats(times, batch)})
    finally:
        server.terminate()
        server.wait(timeout=30)
    return served.name, results


def main():
    from alae_tf.models.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", help="export base paths OUT/NAME")
    parser.add_argument("--calls", type=int, default=200,
                        help="timed calls at batch 1 (a tenth, at least 20, at batch 64)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    everything = {}
    for base_path in args.exports:
        name, results = measure(base_path, args.calls, (1, 64))
        everything[name] = results
        print(f"\n{name} ({base_path})")
        print(f"{'signature':<16}{'batch':>6}  {'path':<11}{'median ms':>10}{'p99 ms':>9}"
              f"{'images/s':>10}")
        for r in results:
            print(f"{r['signature']:<16}{r['batch']:>6}  {r['path']:<11}{r['median_ms']:>10.3f}"
                  f"{r['p99_ms']:>9.3f}{r['images_per_s']:>10.0f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"cpu": cpu_model(), "results": everything}, f, indent=2)


if __name__ == "__main__":
    main()
