"""A restricted unpickler for NVIDIA's and rosinality's checkpoints. Nothing stored is executed.

NVIDIA's pickles run code twice when loaded naively: pickle can call any global, and the module
source stored in the file (``build_module_src`` in TF pickles, ``module_src`` in StyleGAN2-ADA
pickles) is ``exec``-ed. This unpickler:

* resolves only the globals in :data:`ALLOWED`; any other global is refused with an error that
  names it, and nothing it names is imported or called;
* replaces NVIDIA's reconstruction entry points (``dnnlib.tflib.network.Network``,
  ``torch_utils.persistence._reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``) with
  stubs that only keep the stored state; the stored source is never executed;
* reads tensors stored with ``torch.storage._load_from_bytes`` through
  ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2s.errors import I2SError


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict only.

    ``state`` keys: version, name, static_kwargs, components, build_module_src (never run),
    build_func_name, variables (list of (name, numpy array)).
    """

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("TF Network state is not a dict")
        self.state = state

    @property
    def variables(self) -> dict[str, np.ndarray]:
        return {str(k): np.asarray(v) for k, v in self.state.get("variables", [])}

    @property
    def components(self) -> dict[str, TFNetwork]:
        return dict(self.state.get("components", {}))


class PersistentObject:
    """Stand-in for a ``torch_utils.persistence`` object: class name and stored ``__dict__``."""

    def __init__(self, meta: dict) -> None:
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise pickle.UnpicklingError("unexpected torch_utils.persistence record")
        self.class_name = str(meta.get("class_name"))
        self.state = meta.get("state") or {}  # meta["module_src"] is ignored, never executed

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and buffers of this module and its submodules, as ``state_dict()``."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, t in (self.state.get(group) or {}).items():
                if t is not None:
                    out[prefix + name] = t
        for name, sub in (self.state.get("_modules") or {}).items():
            if isinstance(sub, PersistentObject):
                out.update(sub.tensors(f"{prefix}{name}."))
            elif sub is not None:
                raise I2SError(f"unexpected submodule type at {prefix}{name}: "
                               f"{type(sub).__name__}")
        return out

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})


class TorchModuleState:
    """Stand-in for plain ``torch.nn`` modules inside a pickle: keeps ``__dict__`` only."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    return PersistentObject(meta)


def _load_from_bytes(b: bytes) -> Any:
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> torch.Tensor:
    if isinstance(storage, torch.TypedStorage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation notice
            dtype, storage = storage.dtype, storage.untyped()
    else:
        raise pickle.UnpicklingError(f"unexpected storage type {type(storage).__name__}")
    t = torch.empty(0, dtype=dtype)
    t.set_(storage, storage_offset, tuple(size), tuple(stride))
    return t


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter data is not a tensor")
    return data


def _numpy_core(name: str):
    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name), torch.dtype)}

# (module, name) -> object returned to pickle. Nothing else is ever resolved.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_core("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_core("_reconstruct"),
    ("numpy.core.multiarray", "scalar"): _numpy_core("scalar"),
    ("numpy._core.multiarray", "scalar"): _numpy_core("scalar"),
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED` globals (see module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in ALLOWED:
            return ALLOWED[key]
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if module.startswith("torch.nn.modules.") and name.isidentifier():
            return type(name, (TorchModuleState,), {"__module__": "i2s.weights.convert.stub"})
        raise pickle.UnpicklingError(f"refusing global '{module}.{name}' (not on the "
                                     "allowlist of checkpoint types)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in this pickle")


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle a checkpoint with :class:`RestrictedUnpickler` (latin1 for TF-era numpy)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise I2SError(f"{p}: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise I2SError(f"{p}: not a readable checkpoint pickle ({type(e).__name__}: {e})") \
            from None
