"""TF Serving's predict protocol, answered from a SavedModel loaded with tf.saved_model.load.

``ServedModel`` speaks the subset of TF Serving's API that an ALAE export needs:

- REST ``POST /v1/models/NAME:predict`` bodies, in the row form
  ``{"signature_name": S, "instances": [...]}`` (answered with ``{"predictions": [...]}``) and the
  columnar form ``{"signature_name": S, "inputs": ...}`` (answered with ``{"outputs": ...}``);
- REST ``GET /v1/models/NAME/metadata`` (the signature defs) and ``GET /v1/models/NAME``;
- gRPC ``PredictRequest`` protos (``tensorflow_serving.apis.predict_pb2``), answered with a
  ``PredictResponse``.

Bad requests raise ``PredictError`` with an HTTP status and a one-line message, which the server
sends as TF Serving does: ``{"error": message}``. Nothing here imports ``alae_tf``'s model code:
an export is served by TensorFlow alone.
"""

import json
import os

import numpy as np
import tensorflow as tf

from alae_tf.errors import clean_message

DEFAULT_SIGNATURE = "serving_default"


class PredictError(Exception):
    """A request that cannot be answered; ``status`` is the HTTP status to send."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def latest_version(base_path):
    """(version, path) of the highest numeric version folder under ``base_path``.

    TF Serving's default version policy serves the latest version; so does this.
    """
    if os.path.isfile(os.path.join(base_path, "saved_model.pb")):
        raise PredictError(f"{base_path} is a version folder; give its parent (OUT/NAME)")
    versions = ([int(d) for d in os.listdir(base_path) if d.isdigit()
                 and os.path.isfile(os.path.join(base_path, d, "saved_model.pb"))]
                if os.path.isdir(base_path) else [])
    if not versions:
        raise PredictError(f"no SavedModel version folder (a number, holding saved_model.pb) "
                           f"under {base_path}; write one with alae-export", status=404)
    version = max(versions)
    return version, os.path.join(base_path, str(version))


def _holds_a_boolean(value):
    """True when the nested lists of ``value`` hold a bool (walked without recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _listed(array):
    """An output array as JSON values: nested lists of numbers, TensorFlow strings as text."""
    if array.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(
            array).tolist()
    return array.tolist()


class ServedModel:
    """A loaded SavedModel and the TF Serving predict protocol on its signatures.

    Args:
        base_path: the model base path OUT/NAME; its highest version folder is loaded.
        name: the model name of the REST paths (default: the folder name).
    """

    def __init__(self, base_path, name=None):
        self.version, self.path = latest_version(base_path)
        self.name = name or os.path.basename(os.path.normpath(base_path))
        self.loaded = tf.saved_model.load(self.path)
        self.signatures = dict(self.loaded.signatures)
        self.input_specs = {
            key: fn.structured_input_signature[1] for key, fn in self.signatures.items()}
        self.output_specs = {key: fn.structured_outputs for key, fn in self.signatures.items()}

    # ------------------------------------------------------------------ running

    def run(self, signature_name, inputs):
        """Calls one signature with {input name: array}; returns {output name: np.ndarray}."""
        specs = self._specs(signature_name)
        missing = sorted(set(specs) - set(inputs))
        unknown = sorted(set(inputs) - set(specs))
        if missing or unknown:
            raise PredictError(
                f"signature {signature_name!r} takes inputs {sorted(specs)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else ""))
        tensors = {name: self._as_tensor(name, value, specs[name])
                   for name, value in inputs.items()}
        try:
            outputs = self.signatures[signature_name](**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            raise PredictError(clean_message(e)) from None
        # A scalar string output (the metadata signature's) is bytes, not an array.
        return {key: np.asarray(value.numpy()) for key, value in outputs.items()}

    def _specs(self, signature_name):
        if signature_name not in self.signatures:
            raise PredictError(
                f'Serving signature name: "{signature_name}" not found in signature def; '
                f"this model has {sorted(self.signatures)}")
        return self.input_specs[signature_name]

    @staticmethod
    def _as_tensor(name, value, spec):
        dtype = spec.dtype.as_numpy_dtype
        if spec.dtype != tf.bool and _holds_a_boolean(value):
            # numpy would read true as 1.0; TF Serving's REST API refuses a boolean here.
            raise PredictError(f"input {name!r}: expected numbers ({spec.dtype.name}), got a "
                               "JSON boolean (true/false)")
        try:
            array = np.asarray(value, dtype=np.float64 if spec.dtype.is_integer else dtype)
        except (ValueError, TypeError, OverflowError, RecursionError):
            raise PredictError(f"input {name!r}: expected a (nested) list of numbers of one "
                               f"shape, {spec.dtype.name}") from None
        if spec.dtype.is_integer:
            info = np.iinfo(dtype)
            if array.size and (not np.all(np.isfinite(array)) or np.any(array != np.round(array))
                               or array.min() < info.min or array.max() > info.max):
                raise PredictError(f"input {name!r}: expected whole numbers in "
                                   f"[{info.min}, {info.max}] ({spec.dtype.name})")
            array = array.astype(dtype)
        expected = spec.shape.as_list()
        if array.ndim != len(expected) or any(
                e is not None and e != a for e, a in zip(expected, array.shape, strict=True)):
            shown = [-1 if e is None else e for e in expected]
            raise PredictError(f"input {name!r}: expected shape {shown} ({spec.dtype.name}), "
                               f"got {list(array.shape)}")
        return tf.constant(array)

    # ------------------------------------------------------------------ REST JSON

    def predict_json(self, body):
        """Answers a decoded ``:predict`` JSON body with TF Serving's response object."""
        if not isinstance(body, dict):
            raise PredictError("the request body must be a JSON object")
        signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature_name, str):
            raise PredictError("signature_name must be a string")
        has_rows, has_columns = "instances" in body, "inputs" in body
        if has_rows == has_columns:
            raise PredictError("the body needs exactly one of 'instances' (row format) or "
                               "'inputs' (columnar format)")
        names = sorted(self._specs(signature_name))
        if has_rows:
            outputs = self.run(signature_name, self._from_rows(body["instances"], names))
            return {"predictions": self._to_rows(outputs)}
        outputs = self.run(signature_name, self._from_columns(body["inputs"], names))
        if len(outputs) == 1:
            return {"outputs": _listed(next(iter(outputs.values())))}
        return {"outputs": {key: _listed(value) for key, value in outputs.items()}}

    @staticmethod
    def _from_rows(instances, names):
        if not isinstance(instances, list) or not instances:
            raise PredictError("'instances' must be a non-empty list, one entry per example")
        if len(names) == 1 and not all(isinstance(i, dict) for i in instances):
            return {names[0]: instances}
        if not all(isinstance(i, dict) for i in instances):
            raise PredictError(f"each instance must be an object with the inputs {names}")
        keys = {frozenset(i) for i in instances}
        if len(keys) != 1:
            raise PredictError("every instance must name the same inputs")
        return {key: [i[key] for i in instances] for key in next(iter(keys))}

    @staticmethod
    def _from_columns(inputs, names):
        if isinstance(inputs, dict):
            return inputs
        if len(names) == 1:
            return {names[0]: inputs}
        raise PredictError(f"'inputs' must be an object with the inputs {names}")

    @staticmethod
    def _to_rows(outputs):
        if len(outputs) == 1:
            return _listed(next(iter(outputs.values())))
        columns = {key: _listed(value) for key, value in outputs.items()}
        count = len(next(iter(columns.values())))
        return [{key: column[i] for key, column in columns.items()} for i in range(count)]

    # ------------------------------------------------------------------ gRPC protos

    def predict_proto(self, request):
        """Answers a ``tensorflow_serving.apis.predict_pb2.PredictRequest``."""
        from tensorflow_serving.apis import predict_pb2

        if request.model_spec.name and request.model_spec.name != self.name:
            raise PredictError(f"Servable not found for request: Latest({request.model_spec.name})",
                               status=404)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = self.run(signature_name, inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.signature_name = signature_name
        response.model_spec.version.value = self.version
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    # ------------------------------------------------------------------ status and metadata

    def status(self):
        """The body of ``GET /v1/models/NAME``."""
        return {"model_version_status": [{
            "version": str(self.version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self):
        """The body of ``GET /v1/models/NAME/metadata``: every signature's tensors."""
        def tensor_info(spec, key):
            dims = [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape]
            return {"dtype": f"DT_{spec.dtype.name.upper()}",
                    "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": key}

        signature_def = {}
        for key in sorted(self.signatures):
            signature_def[key] = {
                "inputs": {n: tensor_info(s, n) for n, s in self.input_specs[key].items()},
                "outputs": {n: tensor_info(s, n) for n, s in self.output_specs[key].items()},
                "method_name": "tensorflow/serving/predict",
            }
        return {"model_spec": {"name": self.name, "signature_name": "",
                               "version": str(self.version)},
                "metadata": {"signature_def": {"signature_def": signature_def}}}

    def description(self):
        """The export's own description (``metadata`` signature), or None if it has none."""
        if "metadata" not in self.signatures:
            return None
        return json.loads(self.signatures["metadata"]()["json"].numpy().decode("utf-8"))
