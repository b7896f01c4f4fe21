"""Writes files in torch.save's two layouts without torch, for tests of the reader.

Numpy arrays are pickled the way torch pickles tensors: ``torch._utils._rebuild_tensor_v2``
applied to a persistent storage reference, the storage bytes stored apart (zip entries, or
after the pickle in the legacy layout). The ``torch`` names are resolved against stand-in
modules while pickling, so that the files name exactly what real torch files name.
"""

import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

_STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
                  np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
                  np.dtype("uint8"): "ByteStorage"}


class _StandIn:
    """A class a real torch module would hold (``torch.FloatStorage``)."""


def _rebuild_tensor_v2(*args):
    raise AssertionError("never called: only pickled by name")


@contextlib.contextmanager
def _torch_names():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", \
        "_rebuild_tensor_v2"
    for name in [*_STORAGE_NAMES.values(), "BFloat16Storage"]:
        cls = type(name, (_StandIn,), {"__module__": "torch"})
        setattr(torch, name, cls)
    torch._utils = utils
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


class _Tensor:
    def __init__(self, array, key, storage_name):
        self.array, self.key, self.storage_name = array, key, storage_name


class _Pickler(pickle.Pickler):
    def __init__(self, file, torch, legacy):
        super().__init__(file, protocol=2)
        self.torch, self.legacy = torch, legacy

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            t = obj.tensor
            ref = ("storage", getattr(self.torch, t.storage_name), t.key, "cpu", t.array.size)
            return (*ref, None) if self.legacy else ref
        return None

    def reducer_override(self, obj):
        if isinstance(obj, _Tensor):
            size = obj.array.shape
            stride = tuple(s // obj.array.itemsize for s in obj.array.strides)
            return (_rebuild_tensor_v2, (_StorageRef(obj), 0, size, stride, False, {}))
        return NotImplemented


class _StorageRef:
    def __init__(self, tensor):
        self.tensor = tensor


def _wrap(obj, tensors, dtype_names):
    if isinstance(obj, np.ndarray):
        array = np.ascontiguousarray(obj)
        name = dtype_names.get(array.dtype, _STORAGE_NAMES.get(array.dtype))
        tensor = _Tensor(array, str(len(tensors)), name)
        tensors.append(tensor)
        return tensor
    if isinstance(obj, dict):
        return type(obj)((k, _wrap(v, tensors, dtype_names)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_wrap(v, tensors, dtype_names) for v in obj)
    return obj


def _raw(tensor):
    if tensor.storage_name == "BFloat16Storage":  # float32 input, top 16 bits kept
        return (tensor.array.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    return tensor.array.astype(tensor.array.dtype.newbyteorder("<")).tobytes()


def save(obj, path, legacy=False, bfloat16=False):
    """Writes ``obj`` (dicts, lists, numpy arrays) as ``torch.save`` would: the zip layout, or
    with ``legacy`` the pre-1.6 one. ``bfloat16`` stores float32 arrays as bfloat16."""
    tensors = []
    dtype_names = {np.dtype("float32"): "BFloat16Storage"} if bfloat16 else {}
    wrapped = _wrap(obj, tensors, dtype_names)
    with _torch_names() as torch:
        body = io.BytesIO()
        _Pickler(body, torch, legacy).dump(wrapped)
    if legacy:
        with open(path, "wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001,
                           {"protocol_version": 1001, "little_endian": True}):
                pickle.dump(header, f, protocol=2)
            f.write(body.getvalue())
            pickle.dump([t.key for t in tensors], f, protocol=2)
            for t in tensors:
                f.write(struct.pack("<q", t.array.size))
                f.write(_raw(t))
        return
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", body.getvalue())
        archive.writestr("archive/byteorder", "little")
        for t in tensors:
            archive.writestr(f"archive/data/{t.key}", _raw(t))
        archive.writestr("archive/version", "3\n")
