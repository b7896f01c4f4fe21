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
import zlib

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
        self.numel = array.size


class _Pickler(pickle.Pickler):
    def __init__(self, file, torch, legacy):
        super().__init__(file, protocol=2)
        self.torch, self.legacy = torch, legacy

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            t = obj.tensor
            ref = ("storage", getattr(self.torch, t.storage_name), t.key, "cpu", t.numel)
            return (*ref, None) if self.legacy else ref
        return None

    def reducer_override(self, obj):
        if isinstance(obj, _Tensor):
            size = obj.array.shape
            stride = tuple(s // obj.array.itemsize for s in obj.array.strides)
            return (_rebuild_tensor_v2, (_StorageRef(obj), 0, size, stride, False, {}))
        if isinstance(obj, RawTensor):
            return (_rebuild_tensor_v2, (_StorageRef(obj), obj.offset, obj.size, obj.stride,
                                         False, {}))
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


# --- crafted files, for the tests of hostile input ------------------------------------------

class RawTensor:
    """A tensor given by its storage reference as a file states it, true or not: storage
    ``key`` (of ``storage_name`` and ``numel`` elements), ``size``, ``stride``, ``offset``."""

    def __init__(self, key, size, stride, offset=0, storage_name="FloatStorage", numel=None):
        self.key, self.size, self.stride, self.offset = key, size, stride, offset
        self.storage_name = storage_name
        self.numel = numel if numel is not None else 1


def crafted_pickle(obj, legacy=False):
    """The pickle ``torch.save`` would write for ``obj`` (``RawTensor`` placeholders allowed)."""
    with _torch_names() as torch:
        body = io.BytesIO()
        _Pickler(body, torch, legacy).dump(obj)
    return body.getvalue()


def write_legacy(path, body, storages):
    """A legacy-layout file: the three headers, ``body``, then {key: (stated element count,
    bytes)} as its storages."""
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001,
                       {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(body)
        pickle.dump(list(storages), f, protocol=2)
        for numel, raw in storages.values():
            f.write(struct.pack("<q", numel))
            f.write(raw)


def deflated_zeros(count, chunk=1 << 24):
    """A raw deflate stream that inflates to ``count`` zero bytes (a multiple of ``chunk``),
    made from one compressed chunk repeated: 3.5 GiB cost about 3.5 MB and no time."""
    assert count % chunk == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert one == again  # a full flush makes every chunk's bytes alike
    return one * (count // chunk) + compressor.flush()


def write_zip_entries(path, entries):
    """A zip file written byte by byte, so that a crafted one can lie: ``entries`` is a list of
    (name, compressed bytes, stated uncompressed size, deflated?); a deflated entry's CRC is
    left 0 (a reader that stops early never checks it). No zip64: sizes below 4 GiB."""
    local, central = io.BytesIO(), io.BytesIO()
    for name, data, size, deflated in entries:
        offset, encoded = local.tell(), name.encode()
        method, crc = (8, 0) if deflated else (0, zlib.crc32(data))
        local.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                                len(data), size, len(encoded), 0) + encoded + data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                                  crc, len(data), size, len(encoded), 0, 0, 0, 0, 0, offset)
                      + encoded)
    start = local.tell()
    with open(path, "wb") as f:
        f.write(local.getvalue() + central.getvalue())
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                            len(central.getvalue()), start, 0))
