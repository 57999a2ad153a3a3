"""A restricted unpickler for NVIDIA's and rosinality's checkpoints. Nothing stored is executed.

NVIDIA's pickles run code twice when loaded naively: pickle can call any global, and the module
source stored in the file (``build_module_src`` in TF pickles, ``module_src`` in StyleGAN2-ADA
pickles) is ``exec``-ed. This unpickler:

* resolves only the globals in :data:`ALLOWED` (Python 2 names of protocol 0-2 pickles are
  first mapped to Python 3 ones, as pickle itself does); any other global is refused with an
  error that names it, and nothing it names is imported or called;
* replaces NVIDIA's reconstruction entry points (``dnnlib.tflib.network.Network``,
  ``torch_utils.persistence._reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``) with
  stubs that only keep the stored state; the stored source is never executed;
* reads tensors stored with ``torch.storage._load_from_bytes`` through
  ``torch.load(..., weights_only=True)``, after checking the stored record's sizes;
* never allocates more than the file can hold: every length field is compared with what is
  left of the file before anything is read or allocated, numpy arrays and tensor views are
  checked against their data (shape, strides, offset) before they are built (protocol-5
  arrays, rebuilt by ``_frombuffer``, too), and only plain numeric numpy dtypes are accepted;
* lets ``BUILD`` (``__setstate__``) touch only the few types a checkpoint holds.

Every failure while reading a file is one :class:`~i2s.errors.I2SError` naming the file.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import math
import os
import pickle
import re
import struct
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from i2s.errors import I2SError

MAX_DIMS = 32  # more dimensions than any checkpoint tensor or array has


def _refuse(msg: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(msg)


def one_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, shortened to ``limit`` characters."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return first if len(first) <= limit else first[:limit] + "..."


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict with attribute access (never for
    special names such as ``__setstate__``, which pickle looks up)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict only.

    ``state`` keys: version, name, static_kwargs, components, build_module_src (never run),
    build_func_name, variables (list of (name, numpy array)); version 5 (StyleGAN2-ADA TF) adds
    input_shapes, output_shapes, input_names, output_names.
    """

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise _refuse("TF Network state is not a dict")
        self.state = state

    @property
    def variables(self) -> dict[str, np.ndarray]:
        out = {}
        for item in self.state.get("variables") or []:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise I2SError("TF network variables are not (name, array) pairs")
            out[str(item[0])] = np.asarray(item[1])
        return out

    @property
    def components(self) -> dict[str, TFNetwork]:
        comps = self.state.get("components") or {}
        if not isinstance(comps, dict):
            raise I2SError("TF network components are not a dict")
        return dict(comps)

    @property
    def static_kwargs(self) -> dict:
        kw = self.state.get("static_kwargs") or {}
        if not isinstance(kw, dict):
            raise I2SError("TF network static_kwargs are not a dict")
        return dict(kw)


class PersistentObject:
    """Stand-in for a ``torch_utils.persistence`` object: class name and stored ``__dict__``."""

    def __init__(self, meta: dict) -> None:
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise _refuse("unexpected torch_utils.persistence record")
        state = meta.get("state") or {}
        if not isinstance(state, dict):
            raise _refuse("torch_utils.persistence record without a state dict")
        self.class_name = str(meta.get("class_name"))[:100]
        self.state = state  # meta["module_src"] is ignored, never executed

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and buffers of this module and its submodules, as ``state_dict()``."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            tensors = self.state.get(group) or {}
            if not isinstance(tensors, dict):
                raise I2SError(f"{prefix}{group} is not a dict")
            for name, t in tensors.items():
                if t is None:
                    continue
                if not isinstance(t, torch.Tensor):
                    raise I2SError(f"{prefix}{name} is a {type(t).__name__}, not a tensor")
                out[prefix + str(name)] = t
        modules = self.state.get("_modules") or {}
        if not isinstance(modules, dict):
            raise I2SError(f"{prefix}_modules is not a dict")
        for name, sub in modules.items():
            if isinstance(sub, PersistentObject):
                out.update(sub.tensors(f"{prefix}{name}."))
            elif sub is not None:
                raise I2SError(f"unexpected submodule type at {prefix}{name}: "
                               f"{type(sub).__name__}")
        return out

    @property
    def init_kwargs(self) -> dict:
        kw = self.state.get("_init_kwargs") or {}
        if not isinstance(kw, dict):
            raise I2SError("the stored constructor arguments (_init_kwargs) are not a dict")
        return dict(kw)


class TorchModuleState:
    """Stand-in for plain ``torch.nn`` modules inside a pickle: keeps ``__dict__`` only. One
    class serves every ``torch.nn.modules.*`` name, so a pickle cannot create classes."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    return PersistentObject(meta)


# --- numpy: only plain numeric dtypes, arrays checked against their data --------------------

_DTYPE_SPEC = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|[?bBhHiIlLqQefdFD])")
_NDARRAY = object()  # what ``numpy.ndarray`` resolves to: only _reconstruct's first argument
_RECONSTRUCT = object()  # numpy's _reconstruct: each unpickler's own, bound to its file size


def _check_dtype(d: Any) -> np.dtype:
    if not isinstance(d, np.dtype) or d.kind not in "biufc" or d.names is not None \
            or d.subdtype is not None:
        raise _refuse(f"numpy dtype {d!s:.40} is not a plain numeric type")
    return d


def _dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``numpy.dtype`` for the plain numeric type codes numpy pickles use ('f4', 'i8', ...).
    Always a new object, as numpy's pickles ask (copy=True): the state BUILD sets next (the
    byte order) is ignored by numpy's shared built-in dtypes, which would read big-endian
    data as little-endian."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if not isinstance(spec, str) or not _DTYPE_SPEC.fullmatch(spec):
        raise _refuse(f"numpy dtype {spec!r:.40} is not a plain numeric type")
    return _check_dtype(np.dtype(spec, False, True))


def _check_dtype_state(state: Any) -> None:
    """A dtype's ``__setstate__`` argument: (version, byteorder, None, None, None, -1, -1,
    flags) for the plain types numpy pickles."""
    if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
            and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)
            and all(type(x) is int for x in state[5:8])):
        raise _refuse("unexpected numpy dtype state")


def _numpy_core(name: str):
    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


def _shape(shape: Any, what: str) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_DIMS or \
            any(type(d) is not int or d < 0 for d in shape):
        raise _refuse(f"{what}: invalid shape {str(shape):.60}")
    return tuple(shape)


class _BoundedUnpickler(pickle._Unpickler):
    """Pure-Python ``pickle`` unpickler whose buffers may not claim more than ``budget``
    bytes (the C unpickler allocates ``BYTEARRAY8`` buffers before it reads them). Give it a
    :class:`_BoundedReader` so that every other length field is checked as well."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, size: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.budget = size  # no array, tensor or buffer may claim more bytes than this

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self.budget:
            raise _refuse(f"a BYTEARRAY8 record claims {n} bytes, more than the file holds")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8


class RestrictedUnpickler(_BoundedUnpickler):
    """Pure-Python ``pickle`` unpickler that resolves only :data:`ALLOWED` globals and checks
    every size against the file (see module doc).

    The pure-Python implementation is used because the C one allocates ``BYTEARRAY8`` buffers
    before it reads them; checkpoints hold few, large records, so it is not slower in practice.
    """

    dispatch = dict(_BoundedUnpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        original = f"{module}.{name}"
        if self.proto < 3 and self.fix_imports:  # Python 2 names, mapped as pickle does
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        if key in ALLOWED:
            obj = ALLOWED[key]
            return self.reconstruct if obj is _RECONSTRUCT else obj
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if module.startswith("torch.nn.modules.") and name.isidentifier():
            return TorchModuleState
        shown = original if original == f"{module}.{name}" else f"{original} ({module}.{name})"
        raise _refuse(f"refusing global '{shown[:120]}' (not on the allowlist of checkpoint "
                      "types)")

    def persistent_load(self, pid: Any) -> Any:
        raise _refuse("persistent ids are not allowed in this pickle")

    # --- BUILD: only on the types a checkpoint holds, numpy state checked first ------------

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.ndarray) and type(inst) is np.ndarray:
            self._check_array_state(state)
        elif isinstance(inst, np.dtype):
            _check_dtype_state(state)
        elif type(inst) not in _BUILD_TYPES:
            raise _refuse(f"setting the state of a {type(inst).__name__[:40]} is not allowed")
        pickle._Unpickler.load_build(self)
        if isinstance(inst, np.dtype):
            _check_dtype(inst)

    dispatch[pickle.BUILD[0]] = load_build

    def _check_array_state(self, state: Any) -> None:
        """numpy's array state (version, shape, dtype, fortran, data): the data must be raw
        bytes of exactly shape x itemsize."""
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _refuse("unexpected numpy array state")
        shape, dtype, fortran, data = state[-4:]
        shape = _shape(shape, "numpy array")
        _check_dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if not isinstance(data, (bytes, bytearray, str)) or len(data) != nbytes:
            size = len(data) if isinstance(data, (bytes, bytearray, str)) else "no"
            raise _refuse(f"numpy array of shape {shape} {dtype} needs {nbytes} bytes, the "
                          f"file stores {size}")
        if not isinstance(fortran, bool):
            raise _refuse("unexpected numpy array state")

    def reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        """``numpy.core.multiarray._reconstruct``: numpy pickles call it with (ndarray, (0,),
        b'b') and then set the real shape and data; a larger empty array is refused."""
        if subtype is not _NDARRAY:
            raise _refuse("numpy _reconstruct of something other than ndarray")
        shape = _shape(shape, "numpy array")
        d = _dtype(dtype)
        if math.prod(shape) * d.itemsize > self.budget:
            raise _refuse(f"numpy array of shape {shape} is larger than the file")
        return _numpy_core("_reconstruct")(np.ndarray, shape, d)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar`` for plain numeric dtypes and their raw bytes."""
    d = _check_dtype(dtype)
    if not isinstance(data, (bytes, str)) or len(data) != d.itemsize:
        raise _refuse(f"numpy scalar of {d} needs {d.itemsize} bytes")
    return _numpy_core("scalar")(d, data)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None
                ) -> np.ndarray:
    """``numpy.core.numeric._frombuffer``, what numpy's protocol-5 pickles call: raw bytes of
    exactly shape x itemsize, laid out in C or Fortran order, or ('K') C order then the stored
    axis permutation."""
    d = _check_dtype(dtype)
    shape = _shape(shape, "numpy array")
    if not isinstance(buf, (bytes, bytearray)):
        raise _refuse("numpy array buffer is not bytes")
    nbytes = math.prod(shape) * d.itemsize
    if len(buf) != nbytes:
        raise _refuse(f"numpy array of shape {shape} {d} needs {nbytes} bytes, the file "
                      f"stores {len(buf)}")
    flat = np.frombuffer(buf, dtype=d)
    if order == "K" and axis_order is not None:
        if not (isinstance(axis_order, tuple) and all(type(i) is int for i in axis_order)
                and sorted(axis_order) == list(range(len(shape)))):
            raise _refuse(f"numpy array axis order {str(axis_order):.40} is not a permutation")
        return flat.reshape(shape, order="C").transpose(axis_order)
    if order not in ("C", "F") or axis_order is not None:
        raise _refuse(f"numpy array order {str(order):.10} is not 'C', 'F' or 'K'")
    return flat.reshape(shape, order=order)


def _latin1_encode(text: Any, encoding: Any = "latin1", *rest: Any) -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes: (str, 'latin1') only."""
    if rest or not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _refuse("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: protocol 0-2 pickles store empty bytes as a call without arguments."""
    if args:
        raise _refuse("bytes(...) with arguments is not allowed")
    return b""


# --- torch: stored storages and the views built on them --------------------------------------

# ``torch.<Name>Storage`` as legacy storage records name them -> their dtype.
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageRecord:
    def __init__(self, dtype: torch.dtype, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel


class _Anything:
    """What every other global of a legacy ``torch.save`` file stands for while its sizes are
    checked: it takes any call, item, state or element, and does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:
        return _Anything()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    extend = update = add = append


class _LegacyRecordUnpickler(_BoundedUnpickler):
    """Reads the pickles of a legacy (pre-zip) ``torch.save`` stream without building
    anything: storage types resolve to their dtypes, storages to records of their claimed
    sizes; with ``any_global`` every other global is an inert :class:`_Anything` (the real
    load, ``torch.load(weights_only=True)``, applies its own allowlist afterwards)."""

    def __init__(self, file: BinaryIO, size: int, any_global: bool) -> None:
        super().__init__(file, size, encoding="latin1")
        self.any_global = any_global
        self.storages: dict[str, _StorageRecord] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if self.any_global:
            return _Anything
        raise _refuse(f"refusing global '{module[:60]}.{name[:60]}' in a tensor record")

    def persistent_load(self, pid: Any) -> Any:
        if self.any_global and isinstance(pid, tuple) and pid[:1] == ("module",):
            return _Anything()  # pre-1.0 files: module source records, never used
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], torch.dtype) and isinstance(pid[2], str)
                and isinstance(pid[3], str) and type(pid[4]) is int and pid[4] >= 0):
            raise _refuse("unexpected storage record")
        rec = _StorageRecord(pid[1], pid[2], pid[4])
        old = self.storages.setdefault(rec.key, rec)
        if (old.dtype, old.numel) != (rec.dtype, rec.numel):
            raise _refuse(f"storage {rec.key[:40]} is recorded with two sizes")
        return rec


def check_legacy_torch(f: BinaryIO, size: int, single: bool = False
                       ) -> dict[str, _StorageRecord]:
    """Check a legacy (pre-zip) ``torch.save`` stream of ``size`` bytes without allocating
    anything: the header pickles, the main pickle's storage records, the key list, and one
    data block of exactly the claimed size per storage, all inside the file. ``single``: a
    record of one storage (what ``TypedStorage.__reduce__`` writes and
    ``torch.storage._load_from_bytes`` reads), which must end with its data."""
    start = f.tell()
    reader = _BoundedReader(f, size)

    def small_pickle(any_global: bool = False) -> Any:
        u = _LegacyRecordUnpickler(reader, size, any_global)
        return u, u.load()

    what = "tensor record" if single else "legacy torch file"
    if small_pickle()[1] != _LEGACY_MAGIC or small_pickle()[1] != _LEGACY_PROTOCOL:
        raise _refuse(f"not a torch.save {what}")
    info = small_pickle()[1]
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise _refuse(f"{what}: unsupported byte order")
    main, obj = small_pickle(any_global=not single)
    if single and (not isinstance(obj, _StorageRecord) or len(main.storages) != 1):
        raise _refuse(f"{what} does not hold one storage")
    keys = small_pickle()[1]
    if not isinstance(keys, list) or set(keys) != set(main.storages) or \
            len(keys) != len(main.storages):
        raise _refuse(f"{what}: its storage keys do not match its storages")
    for key in keys:
        rec = main.storages[key]
        count = reader.read(8)
        elsize = torch.empty(0, dtype=rec.dtype).element_size()
        nbytes = rec.numel * elsize
        if len(count) != 8 or int.from_bytes(count, "little", signed=True) != rec.numel \
                or nbytes > reader.left:
            raise _refuse(f"{what} claims {rec.numel} elements of {elsize} bytes, the file "
                          f"has {reader.left} bytes left")
        f.seek(nbytes, io.SEEK_CUR)
        reader.left -= nbytes
    if single and reader.left:
        raise _refuse(f"{what} holds {reader.left} bytes more than its storage")
    f.seek(start)
    return main.storages


def check_storage_bytes(b: bytes) -> tuple[torch.dtype, int]:
    """(dtype, elements) of a one-storage record, checked by :func:`check_legacy_torch`."""
    (rec,) = check_legacy_torch(io.BytesIO(b), len(b), single=True).values()
    return rec.dtype, rec.numel


def _load_from_bytes(b: Any) -> Any:
    if not isinstance(b, bytes):
        raise _refuse("tensor record is not bytes")
    dtype, numel = check_storage_bytes(b)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation notice
            storage = torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")
    except Exception as e:  # torch raises many types; the record was already checked
        raise _refuse(f"unreadable tensor record ({one_line(e)})") from None
    if not isinstance(storage, torch.TypedStorage) or storage.dtype != dtype:
        raise _refuse("tensor record does not hold the storage it claims")
    return storage


def check_view(n_storage: int, offset: Any, size: Any, stride: Any) -> None:
    """A tensor view must lie inside its storage and not repeat elements (numel <= storage)."""
    size = _shape(size, "tensor")
    stride = _shape(stride, "tensor strides")
    if len(stride) != len(size):
        raise _refuse(f"tensor has {len(size)} sizes but {len(stride)} strides")
    if type(offset) is not int or offset < 0:
        raise _refuse(f"tensor storage offset {str(offset):.40} is not a non-negative integer")
    numel = math.prod(size)
    if numel == 0:
        if offset > n_storage:
            raise _refuse(f"tensor offset {offset} is beyond its storage of {n_storage}")
        return
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= n_storage or numel > n_storage:
        raise _refuse(f"tensor of size {size}, stride {stride}, offset {offset} does not fit "
                      f"in its storage of {n_storage} elements")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> torch.Tensor:
    if not isinstance(storage, torch.TypedStorage):
        raise _refuse(f"unexpected storage type {type(storage).__name__[:40]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation notice
        dtype, untyped, n = storage.dtype, storage.untyped(), storage.size()
    check_view(n, storage_offset, size, stride)
    t = torch.empty(0, dtype=dtype)
    t.set_(untyped, storage_offset, tuple(size), tuple(stride))
    return t


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _refuse("parameter data is not a tensor")
    return data


_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name), torch.dtype)}

# (module, name) -> object returned to pickle. Nothing else is ever resolved. Python 2 names
# (``__builtin__.set``) are mapped to these first, as pickle's own find_class maps them.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytes"): _empty_bytes,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
}

# Types whose state BUILD may set (numpy arrays and dtypes are checked first).
_BUILD_TYPES = (TFNetwork, TorchModuleState, EasyDict, collections.OrderedDict)


class _BoundedReader:
    """The file as the unpickler sees it: a read that claims more than what is left of the
    file is refused before anything is allocated."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f, self.left = f, size

    def _claim(self, n: int | None) -> int:
        if n is None or n < 0:
            return self.left
        if n > self.left:
            raise _refuse(f"a length field claims {n} bytes, but only {self.left} are left in "
                          "the file")
        return n

    def read(self, n: int | None = -1) -> bytes:
        data = self._f.read(self._claim(n))
        self.left -= len(data)
        return data

    def readinto(self, buf: Any) -> int:
        self._claim(memoryview(buf).nbytes)
        got = self._f.readinto(buf)
        self.left -= got
        return got

    def readline(self, limit: int | None = -1) -> bytes:
        line = self._f.readline(self._claim(limit))
        self.left -= len(line)
        return line


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle a checkpoint with :class:`RestrictedUnpickler` (latin1 for TF-era numpy).

    Any failure is one :class:`I2SError` naming the file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return RestrictedUnpickler(_BoundedReader(f, size), size, encoding="latin1").load()
    except I2SError as e:
        raise I2SError(f"{p}: {e}") from None
    except pickle.UnpicklingError as e:
        raise I2SError(f"{p}: {one_line(e)}") from None
    except OSError as e:
        raise I2SError(f"{p}: cannot read the file ({e.strerror or one_line(e)})") from None
    except (MemoryError, OverflowError, RecursionError) as e:
        raise I2SError(f"{p}: not a readable checkpoint pickle (it needs more memory or depth "
                       f"than it can hold: {type(e).__name__})") from None
    except Exception as e:  # anything else a malformed stream makes pickle or numpy raise
        raise I2SError(f"{p}: not a readable checkpoint pickle ({type(e).__name__}: "
                       f"{one_line(e)})") from None

