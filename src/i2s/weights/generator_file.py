"""Loading generators from safetensors files with their config in the metadata.

The file layout and the writing half (:func:`save_generator`, ``FORMAT``) live in
:mod:`i2s.models.generator_file`, below every generator package, so that ``G.save(path)``
needs no upward import; they are re-exported here. Loading is always ``strict=True``;
nothing in the file is executed.

Before any weight is read, the model the config describes is built on torch's ``meta`` device
(no memory) and every key, shape and dtype of its state dict is compared with the file's
header: a config that claims other sizes than the stored tensors is refused without
allocating anything. Weights that are NaN or infinite are refused too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from i2s.errors import I2SError
from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator
from i2s.media.files import sha256_file
from i2s.models import ARCHITECTURES as MODEL_ARCHITECTURES
from i2s.models.generator_file import FORMAT, save_generator
from i2s.weights.identity import weights_digest

__all__ = ["ARCHITECTURES", "FORMAT", "is_safetensors", "load_generator_file",
           "read_generator_metadata", "save_generator"]

FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors dtype names a weight may have
MAX_MAPPING_LAYERS = 1024

ARCHITECTURES: dict[str, tuple[type, type]] = {
    **MODEL_ARCHITECTURES, "get3d": (GET3DGenerator, GET3DConfig)}


def is_safetensors(path: str | os.PathLike) -> bool:
    """True if the file starts like a safetensors file (u64 header size, then '{')."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_generator_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata dict of an i2s generator file; I2SError if it is not one."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise I2SError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise I2SError(f"{path}: not an i2s generator file (no '{FORMAT}' metadata); "
                       "official checkpoints must be converted first")
    return meta


def _config(cfg_cls: type, meta: dict[str, str], path: Path):
    """The config in the metadata, with every field of the type its default has."""
    try:
        cfg = cfg_cls.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError, RecursionError) as e:
        raise I2SError(f"{path}: invalid generator config ({str(e)[:200]})") from None
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(f.default, int):
            ok = type(v) is int
        else:  # float fields, and conv_clamp (float or None)
            ok = (v is None and f.default is None) or (
                type(v) in (int, float) and math.isfinite(v))
        if not ok:
            raise I2SError(f"{path}: invalid generator config ({f.name}={v!r:.40})")
    return cfg


def _header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """{name: (shape, safetensors dtype)} from the file's header, without reading any data."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                    for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise I2SError(f"{path}: not a readable safetensors file ({str(e)[:200]})") from None


def _build_checked(gen_cls: type, cfg, path: Path) -> torch.nn.Module:
    """The model of ``cfg`` on the meta device (no memory), after checking that the file's
    header has exactly its keys, shapes and float dtypes."""
    header = _header(path)
    if cfg.mapping_layers > min(len(header), MAX_MAPPING_LAYERS):
        raise I2SError(f"{path}: config claims {cfg.mapping_layers} mapping layers, the file "
                       f"holds {len(header)} tensors")
    try:
        with torch.device("meta"):
            G = gen_cls(cfg)
    except (RuntimeError, ValueError, TypeError, OverflowError) as e:
        raise I2SError(f"{path}: invalid generator config ({str(e).splitlines()[0][:200]})") \
            from None
    own = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    missing, extra = sorted(set(own) - set(header)), sorted(set(header) - set(own))
    if missing or extra:
        raise I2SError(f"{path}: weights do not match the stored config (missing "
                       f"{missing[:3]}, unexpected {[k[:80] for k in extra[:3]]})")
    for k, shape in own.items():
        got, dtype = header[k]
        if got != shape:
            raise I2SError(f"{path}: weights do not match the stored config ('{k}' is stored "
                           f"with shape {list(got)}, the config needs {list(shape)})")
        if dtype not in FLOAT_DTYPES:
            raise I2SError(f"{path}: '{k}' is stored as {dtype}, not as floating point")
    return G


def load_generator_file(path: str | os.PathLike,
                        device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a generator written by :func:`save_generator`.

    The config travels in the file and is checked against the file's header before any weight
    is read; weights load with ``strict=True``, must be finite, and are cast to float32.
    The returned module is in eval mode with ``requires_grad`` off, ``G.sha256`` set to the
    digest of its weights and config (:func:`i2s.weights.identity.weights_digest`) and
    ``G.file_sha256`` to the file's SHA-256.
    """
    path = Path(path)
    if not path.is_file():
        raise I2SError(f"model file not found: {path}")
    meta = read_generator_metadata(path)
    arch = meta.get("architecture", "")
    if arch not in ARCHITECTURES:
        raise I2SError(f"{path}: unknown architecture {arch!r:.40} (known: "
                       f"{sorted(ARCHITECTURES)})")
    gen_cls, cfg_cls = ARCHITECTURES[arch]
    cfg = _config(cfg_cls, meta, path)
    G = _build_checked(gen_cls, cfg, path)
    try:
        stored = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise I2SError(f"{path}: not a readable safetensors file ({str(e)[:200]})") from None
    state = {}
    for k, v in stored.items():
        v = v.float()
        if not bool(torch.isfinite(v).all()):
            raise I2SError(f"{path}: '{k}' holds NaN or infinite values")
        state[k] = v
    try:  # every parameter and buffer of the meta model becomes the file's tensor
        G.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise I2SError(f"{path}: weights do not match the stored config ({first})") from None
    G.sha256 = weights_digest(arch, cfg, state)   # the model's identity (weights + config)
    G.file_sha256 = sha256_file(path)             # the file's, as the registry lists it
    return G.eval().requires_grad_(False).to(device)
