"""Reads PyTorch checkpoint files with numpy alone, without running code from them.

``torch.save`` writes a pickle, and a plain ``pickle.load`` of a file from the internet runs
whatever functions the file names. This reader rebuilds only what a checkpoint of tensors is
made of: dicts, lists, tuples, ``OrderedDict`` and tensors (as numpy arrays). Any other class or
function a file names becomes an inert ``Foreign`` placeholder that records its name and
arguments and never calls anything, so optimizer or scheduler state of unknown classes can
sit beside the weights without harm. torch need not be installed.

Both file layouts of ``torch.save`` are read:

- the zip layout (PyTorch 1.6 and later): ``<name>/data.pkl`` holds the pickle and each
  storage is the raw little- (or ``byteorder``-) endian bytes of ``<name>/data/<key>``;
- the legacy layout (before 1.6, the one the published ALAE files use): five pickles in a row
  (a magic number, the protocol version 1001, system information, the object, the sorted
  storage keys), then each storage as an int64 element count and its raw bytes.

Reference: PyTorch's ``torch/serialization.py`` (``_save``, ``_legacy_save``) describes both.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from alae_tf.errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch's storage classes by the name a pickle gives them, and their element types. bfloat16
# has no numpy type: its bits are read as uint16 and widened to float32.
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
    "UntypedStorage": "u1",
}


class TorchFileError(CheckpointError, ValueError):
    """The file is not a PyTorch checkpoint, or it is damaged."""


class Foreign:
    """An object of a class the file names but this reader does not rebuild.

    It keeps the class's dotted ``name`` and whatever the pickle gave it (``args``,
    ``state``), and has no behaviour.
    """

    name = "?"

    def __new__(cls, *args, **kwargs):
        # Pickles make objects with cls(*args) or cls.__new__(cls, *args); both land here.
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<{self.name} from the file, not rebuilt>"


def _foreign(module, name):
    return type("Foreign", (Foreign,), {"name": f"{module}.{name}"})


class _StorageType:
    """What a pickle's ``torch.FloatStorage`` (and the like) stands for: an element type."""

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    @property
    def itemsize(self):
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


class _Storage:
    """A storage the pickle refers to; its bytes are attached once read (``data``)."""

    def __init__(self, storage_type, key, numel):
        self.type = storage_type
        self.key = key
        self.numel = int(numel)
        self.data = None  # 1-D numpy array of ``numel`` elements

    def array(self):
        if self.data is None:
            raise TorchFileError(f"storage {self.key} has no data in the file (damaged?)")
        return self.data


class _TensorRef:
    """A tensor to rebuild once every storage's bytes are read (legacy files store the bytes
    after the pickle)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def resolve(self):
        flat = self.storage.array()
        if any(s < 0 for s in self.size) or len(self.size) != len(self.stride):
            raise TorchFileError(f"tensor of shape {self.size} is malformed (damaged file?)")
        if 0 in self.size:
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= len(flat):
            raise TorchFileError(
                f"a tensor of shape {self.size} reaches past its storage of {len(flat)} "
                "elements (damaged file?)")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size,
            strides=[s * flat.itemsize for s in self.stride], writeable=False)
        return np.array(view)  # a contiguous copy that owns its memory


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    # torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
    # backward_hooks[, metadata]) and the older _rebuild_tensor(storage, offset, size, stride).
    if not isinstance(storage, _Storage):
        raise TorchFileError("a tensor refers to something that is not a storage")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_unused):
    # A pickled nn.Parameter is its tensor; requires_grad and hooks do not matter here.
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds containers and tensors; everything else the file names stays inert."""

    def __init__(self, file, storages):
        super().__init__(file, encoding="latin1")
        self.storages = storages  # {key: _Storage}, shared by all pickles of one file

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _foreign(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise TorchFileError(f"unknown persistent reference {pid!r:.60}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError(f"a storage of an unknown type ({storage_type!r:.60})")
        key = key.decode() if isinstance(key, bytes) else str(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type, key, numel)
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # a legacy view: (view key, offset, size) into the root storage
            return _StorageView(storage, *view)
        return storage


class _StorageView(_Storage):
    """A slice of another storage (legacy files from PyTorch before 1.0)."""

    def __init__(self, root, key, offset, numel):
        super().__init__(root.type, key, numel)
        self.root, self.offset = root, int(offset)

    def array(self):
        return self.root.array()[self.offset:self.offset + self.numel]


def _decode(raw, storage_type, byteorder):
    if storage_type.dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype=f"{'<' if byteorder == 'little' else '>'}u2")
        return (bits.astype(np.uint32) << 16).view(np.float32)
    dtype = np.dtype(storage_type.dtype)
    if byteorder == "big" and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))


def _resolve(value):
    """``value`` with every tensor reference replaced by its numpy array."""
    if isinstance(value, _TensorRef):
        return value.resolve()
    if isinstance(value, collections.OrderedDict | dict):
        return type(value)((k, _resolve(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v) for v in value)
    if isinstance(value, Foreign):
        value.args = _resolve(value.args)
        value.state = _resolve(value.state)
    return value


def _read_zip(path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise TorchFileError(f"a damaged zip archive ({e})") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchFileError("a zip archive, but not one written by torch.save "
                                 "(no <name>/data.pkl)")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
        storages = {}
        try:
            result = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
            for key, storage in storages.items():
                raw = archive.read(f"{prefix}data/{key}")
                storage.data = _decode(raw, storage.type, byteorder)[:storage.numel]
                if len(storage.data) < storage.numel:
                    raise TorchFileError(f"storage {key} is shorter than its tensors need "
                                         "(damaged file?)")
        except KeyError as e:
            raise TorchFileError(f"the archive lacks {e} (damaged or incomplete file?)") from None
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise TorchFileError(f"a damaged zip archive ({e})") from None
    return result


def _read_exact(file, count):
    data = file.read(count)
    if len(data) != count:
        raise TorchFileError("the file ends early (truncated download?)")
    return data


def _read_legacy(path):
    storages = {}
    with open(path, "rb") as file:
        def next_pickle():
            return _RestrictedUnpickler(file, storages).load()

        if next_pickle() != LEGACY_MAGIC:
            raise TorchFileError("a pickle, but not a PyTorch checkpoint (no magic number)")
        if next_pickle() != LEGACY_PROTOCOL:
            raise TorchFileError("a PyTorch file of an unknown legacy protocol version")
        info = next_pickle()
        byteorder = "little" if not isinstance(info, dict) or info.get("little_endian", True) \
            else "big"
        result = next_pickle()
        keys = next_pickle()
        if not isinstance(keys, list):
            raise TorchFileError("the storage list is missing (damaged file?)")
        for key in keys:
            key = key.decode() if isinstance(key, bytes) else str(key)
            storage = storages.get(key)
            if storage is None:
                raise TorchFileError(f"storage {key} is listed but never used (damaged file?)")
            (numel,) = struct.unpack("<q" if byteorder == "little" else ">q",
                                     _read_exact(file, 8))
            if numel < 0 or numel > 1 << 40:
                raise TorchFileError(f"storage {key} claims {numel} elements (damaged file?)")
            raw = _read_exact(file, numel * storage.type.itemsize)
            storage.data = _decode(raw, storage.type, byteorder)
    return result


def read_torch_file(path):
    """The object ``torch.save`` wrote to ``path``: containers as they were, tensors as numpy
    arrays (float32 for bfloat16), unknown classes as ``Foreign`` placeholders.

    Raises:
        TorchFileError: not a PyTorch file, an unsupported layout, or damaged; the message
            says which.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as file:
        head = file.read(512)
    if head.startswith(b"PK\x03\x04"):
        reader = _read_zip
    elif head[:1] == b"\x80":  # a pickle's PROTO opcode: the legacy layout
        reader = _read_legacy
    elif head[257:262] == b"ustar":
        raise TorchFileError("a tar archive: the layout of PyTorch before 0.4 is not supported; "
                             "re-save it with a recent PyTorch")
    elif not head:
        raise TorchFileError("the file is empty")
    else:
        raise TorchFileError("not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        return _resolve(reader(path))
    except TorchFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, struct.error, UnicodeDecodeError) as e:
        raise TorchFileError(f"cannot be unpickled ({type(e).__name__}: {str(e)[:120]}); "
                             "damaged or not a PyTorch checkpoint") from None
