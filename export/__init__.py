"""Export of trained encoders and generators, installed as ``alae_tf.export``.

- ``core``: what both formats share: the full-resolution check, the folded networks and
  pixel conversions, the SavedModel archive, atomic writes, the JSON of specs and model facts;
- ``saved_model``: the TF Serving SavedModel and its signatures (``alae-export``);
- ``rest``: TF Serving's predict protocol (REST JSON, gRPC protos) on a loaded export;
- ``serve``: ``alae-serve``, a local server for that protocol;
- ``tfjs``: TF.js graph models and a manifest for the browser (``alae-export --format tfjs``).
"""
