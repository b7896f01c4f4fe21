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

A file from the internet may also be built to exhaust memory or time. Every number in it that
decides how much is allocated is checked before the allocation: a storage's element count
against the bytes its zip entry or the rest of the file holds, a zip entry is inflated only up
to the bytes its storage needs (a lying header gains nothing), a tensor may not have more
elements than its storage (a stride-0 "broadcast" view of a 4-byte storage could name 10^10),
shared objects are rebuilt once (a tensor referenced a million times is one array), nesting
deeper than ``MAX_DEPTH`` is refused, and everything allocated for one file counts against
one budget (``max_bytes``, ``DEFAULT_MAX_BYTES``).
"""

import collections
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
import zlib

import numpy as np

from alae_tf.errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# What one file may make this reader allocate (storages and the tensors built from them, the
# pickle): about 4.7 times the largest published ALAE file (435 MB, whose tensors need about
# 870 MB here), so any published file fits and a crafted one is stopped before it matters.
DEFAULT_MAX_BYTES = 2 << 30
# A checkpoint is a few levels deep (dict -> dict -> tensor); a file nested deeper is refused.
MAX_DEPTH = 100
# Dimensions of one tensor (numpy's own limit is 64).
MAX_DIMS = 32
# The pickle of a state dict is kilobytes; one above this is not a checkpoint.
MAX_PICKLE_BYTES = 64 << 20

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


def _megabytes(count):
    return f"{count / 2**20:,.0f} MB" if count >= 2**20 else f"{count:,} bytes"


class _Budget:
    """What one file has made the reader allocate so far, against ``max_bytes``."""

    def __init__(self, max_bytes):
        self.max_bytes, self.used = int(max_bytes), 0

    def take(self, count, what):
        if count < 0:
            raise TorchFileError(f"{what} has a negative size (damaged file?)")
        if self.used + count > self.max_bytes:
            raise TorchFileError(
                f"{what} needs {_megabytes(count)}, past the reader's limit of "
                f"{_megabytes(self.max_bytes)} for one checkpoint (the largest published ALAE "
                f"file needs about 870 MB); a file that is not crafted to exhaust memory but "
                f"larger than that needs the limit raised", setting="max_bytes")
        self.used += count


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
        self.numel = _count(numel, f"storage {key}")
        self.data = None  # 1-D numpy array of ``numel`` elements

    @property
    def nbytes(self):
        return self.numel * self.type.itemsize

    def array(self):
        if self.data is None:
            raise TorchFileError(f"storage {self.key} has no data in the file (damaged?)")
        return self.data


def _count(value, what):
    """``value`` as a non-negative int (an element count or offset from the file)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TorchFileError(f"{what} has a malformed size {value!r:.40} (damaged file?)")
    return value


class _TensorRef:
    """A tensor to rebuild once every storage's bytes are read (legacy files store the bytes
    after the pickle)."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(size, tuple | list) or not isinstance(stride, tuple | list):
            raise TorchFileError("a tensor with a malformed shape (damaged file?)")
        if len(size) > MAX_DIMS or len(size) != len(stride):
            raise TorchFileError(f"a tensor with {len(size)} dimensions and {len(stride)} "
                                 "strides is malformed (damaged file?)")
        self.storage = storage
        self.offset = _count(offset, "a tensor's offset")
        self.size = tuple(_count(n, "a tensor's shape") for n in size)
        self.stride = tuple(_count(n, "a tensor's stride") for n in stride)

    def resolve(self, budget):
        flat = self.storage.array()
        elements = math.prod(self.size)
        if elements == 0:
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if last >= len(flat):
            raise TorchFileError(
                f"a tensor of shape {self.size} reaches past its storage of {len(flat)} "
                "elements (damaged file?)")
        if elements > len(flat) - self.offset:
            # Only overlapping strides (0 among them) fit more elements than the storage has:
            # a broadcast view, which no weight is, and which would be copied out at full size.
            raise TorchFileError(
                f"a tensor of shape {self.size} views its storage of {len(flat)} elements with "
                f"strides {self.stride}: more elements than the storage holds (a crafted or "
                "damaged file)")
        budget.take(elements * flat.itemsize, f"a tensor of shape {self.size}")
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
        self.root, self.offset = root, _count(offset, f"storage view {key}")
        if self.offset + self.numel > root.numel:
            raise TorchFileError(f"storage view {key} reaches past its storage {root.key} "
                                 "(damaged file?)")

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


def _resolve(value, budget):
    """``value`` with every tensor reference replaced by its numpy array. An object the pickle
    shares (its memo) is rebuilt once and stays shared, so a small file cannot make the walk
    or the arrays grow with the number of references; cycles are kept as cycles."""
    done = {}

    def walk(value, depth):
        if depth > MAX_DEPTH:
            raise TorchFileError(f"objects nested more than {MAX_DEPTH} levels deep; a "
                                 "checkpoint is a few levels (a crafted or damaged file)")
        if not isinstance(value, _TensorRef | dict | list | tuple | Foreign):
            return value
        if id(value) in done:
            return done[id(value)]
        if isinstance(value, _TensorRef):
            result = done[id(value)] = value.resolve(budget)
        elif isinstance(value, dict):  # OrderedDict included
            result = done[id(value)] = type(value)()
            for k, v in list(value.items()):
                result[k] = walk(v, depth + 1)
        elif isinstance(value, list):
            result = done[id(value)] = []
            result.extend(walk(v, depth + 1) for v in value)
        elif isinstance(value, tuple):
            result = done[id(value)] = tuple(walk(v, depth + 1) for v in value)
        else:
            done[id(value)] = value
            value.args = walk(value.args, depth + 1)
            value.state = walk(value.state, depth + 1)
            result = value
        return result

    # The originals stay alive (``value`` holds them) while the walk runs, so no id in ``done``
    # is reused by another object.
    return walk(value, 0)


def _read_entry(archive, name, count):
    """At most ``count`` bytes of the zip entry ``name``, inflated a chunk at a time: whatever
    its header claims, no more is decompressed."""
    chunks, left = [], count
    with archive.open(name) as entry:
        while left:
            chunk = entry.read(min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    return b"".join(chunks)


def _read_zip(path, budget):
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
            byteorder = _read_entry(archive, f"{prefix}byteorder", 16).decode(
                "ascii", "replace").strip()
        storages = {}
        try:
            body = _read_entry(archive, pickles[0], MAX_PICKLE_BYTES + 1)
            if len(body) > MAX_PICKLE_BYTES:
                raise TorchFileError(
                    f"{pickles[0]} inflates to more than {_megabytes(MAX_PICKLE_BYTES)}; a "
                    "checkpoint's pickle is kilobytes (a crafted or damaged file)")
            budget.take(len(body), "the pickle")
            result = _load_pickle(io.BytesIO(body), storages)
            del body
            for key, storage in storages.items():
                name = f"{prefix}data/{key}"
                archive.getinfo(name)  # KeyError when it is missing
                budget.take(2 * storage.nbytes, f"storage {key} of {storage.numel:,} elements")
                raw = _read_entry(archive, name, storage.nbytes)
                if len(raw) < storage.nbytes:
                    raise TorchFileError(f"storage {key} is shorter than its tensors need "
                                         "(damaged file?)")
                storage.data = _decode(raw, storage.type, byteorder)
        except KeyError as e:
            raise TorchFileError(f"the archive lacks {e} (damaged or incomplete file?)") from None
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
            raise TorchFileError(f"a damaged zip archive ({e})") from None
    return result


def _load_pickle(file, storages):
    """One pickle from ``file`` (at its position), through the restricted unpickler. The
    opcodes are walked first without building anything (``pickletools.genops``), so a length
    that the bytes left cannot back (a 2^40-byte string) fails before the unpickler, which
    allocates what an opcode claims, sees it."""
    start = file.tell()
    for _ in pickletools.genops(file):
        pass
    file.seek(start)
    return _RestrictedUnpickler(file, storages).load()


class _BoundedFile:
    """The legacy file as the unpickler reads it: a pickle opcode that claims more bytes than
    the file has left fails before anything that large is allocated."""

    def __init__(self, file):
        self.file = file
        self.size = os.fstat(file.fileno()).st_size

    def left(self):
        return self.size - self.file.tell()

    def read(self, count=-1):
        if count is not None and count > self.left():
            raise TorchFileError("the file ends early (truncated download?)")
        return self.file.read(count)

    def readinto(self, buffer):
        if len(buffer) > self.left():
            raise TorchFileError("the file ends early (truncated download?)")
        return self.file.readinto(buffer)

    def readline(self, *args):
        return self.file.readline(*args)

    def tell(self):
        return self.file.tell()

    def seek(self, position):
        return self.file.seek(position)


def _read_exact(file, count):
    if count > file.left():
        raise TorchFileError("the file ends early (truncated download?)")
    data = file.read(count)
    if len(data) != count:
        raise TorchFileError("the file ends early (truncated download?)")
    return data


def _read_legacy(path, budget):
    storages = {}
    with open(path, "rb") as raw_file:
        file = _BoundedFile(raw_file)

        def next_pickle():
            return _load_pickle(file, storages)

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
            count = numel * storage.type.itemsize
            if numel < 0 or count > file.left():
                raise TorchFileError(
                    f"the file ends early (truncated download?): storage {key} claims "
                    f"{numel:,} elements, more than the {_megabytes(max(file.left(), 0))} left "
                    "in the file hold")
            budget.take(2 * count, f"storage {key} of {numel:,} elements")
            storage.data = _decode(_read_exact(file, count), storage.type, byteorder)
            if len(storage.data) < storage.numel:
                raise TorchFileError(f"storage {key} is shorter than its tensors need "
                                     "(damaged file?)")
    return result


def read_torch_file(path, max_bytes=DEFAULT_MAX_BYTES):
    """The object ``torch.save`` wrote to ``path``: containers as they were, tensors as numpy
    arrays (float32 for bfloat16), unknown classes as ``Foreign`` placeholders.

    Args:
        path: the file.
        max_bytes: the most this reader may allocate for the file (storages, tensors, the
            pickle); ``DEFAULT_MAX_BYTES`` fits every published ALAE file several times.

    Raises:
        TorchFileError: not a PyTorch file, an unsupported layout, damaged, or asking for more
            than ``max_bytes`` (then ``e.setting`` is "max_bytes"); the message says which.
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
    budget = _Budget(max_bytes)
    try:
        return _resolve(reader(path, budget), budget)
    except TorchFileError:
        raise
    except RecursionError:
        raise TorchFileError("objects nested too deep to read (a crafted or damaged "
                             "file)") from None
    except MemoryError:
        raise TorchFileError("needs more memory than this process may use (a crafted or "
                             "damaged file?)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, OverflowError, struct.error, UnicodeDecodeError) as e:
        raise TorchFileError(f"cannot be unpickled ({type(e).__name__}: {str(e)[:120]}); "
                             "damaged or not a PyTorch checkpoint") from None
