"""Recognise a checkpoint's format, convert it, and write an i2s safetensors file."""

from __future__ import annotations

import argparse
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from i2s.errors import I2SError
from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator
from i2s.media.files import sha256_file
from i2s.models.stylegan1 import StyleGANConfig, StyleGANGenerator
from i2s.models.stylegan2 import StyleGAN2Generator
from i2s.ops.fir import make_fir_filter
from i2s.weights.convert.get3d import convert_get3d, is_get3d_checkpoint
from i2s.weights.convert.rosinality import W_AVG_ESTIMATED, W_AVG_SAMPLES, convert_rosinality
from i2s.weights.convert.safe_pickle import (
    TFNetwork,
    check_legacy_torch,
    load_pickle,
    one_line,
)
from i2s.weights.convert.sniff import ACCEPTED, describe_non_checkpoint
from i2s.weights.convert.stylegan1_tf import convert_tf_stylegan1, is_stylegan1_tf
from i2s.weights.convert.stylegan2_ada import convert_ada, is_ada_pickle
from i2s.weights.convert.stylegan2_tf import convert_tf_stylegan2, is_stylegan2_tf
from i2s.weights.convert.variables import load_strict
from i2s.weights.generator_file import save_generator

ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Converted:
    G: torch.nn.Module
    # "stylegan2-ada-pytorch", "stylegan2-ada-tf", "stylegan2-tf", "stylegan1-tf", "rosinality"
    source_format: str
    source_sha256: str
    seconds: float
    # What the conversion had to decide, recorded in the file's metadata, e.g.
    # {"w_avg": "estimated from 4096 z"} or {"num_fp16_res": "4"}.
    notes: dict[str, str] = field(default_factory=dict)

    def summary(self, src: Path, dst: Path | None = None) -> str:
        n = sum(p.numel() for p in self.G.parameters())
        to = f" -> {dst}" if dst is not None else ""
        notes = "".join(f", {k}: {v}" for k, v in self.notes.items())
        return (f"converted {src.name} ({self.source_format}, sha256 {self.source_sha256[:12]}"
                f"){to}: {self.G.architecture} {self.G.resolution}px, {self.G.num_ws} ws, "
                f"{n / 1e6:.1f}M parameters{notes}, {self.seconds:.1f}s")


def _torch_load(path: Path):
    """torch.save files (rosinality): weights_only, plus argparse.Namespace for 'args'."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types; the message names the refused global
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise I2SError(f"{path}: cannot read torch checkpoint safely ({first})") from None


def _read_object(p: Path):
    """(unpickled object, True if it is a torch.save file) of a checkpoint file."""
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise I2SError(f"{p}: cannot read the file ({e.strerror or e})") from None
    what = describe_non_checkpoint(p)
    if what is not None:
        raise I2SError(f"{p}: {what}, not a checkpoint (i2s convert reads {ACCEPTED})")
    if head == ZIP_MAGIC:
        return _torch_load(p), True
    obj = load_pickle(p)
    if isinstance(obj, int):  # legacy torch.save files start with a pickled magic number
        _check_legacy_sizes(p)
        return _torch_load(p), True
    return obj, False


def _check_legacy_sizes(p: Path) -> None:
    """Every storage a legacy torch.save file claims must be stored in it, checked before
    torch allocates any (it allocates what the file claims, then reads)."""
    try:
        with open(p, "rb") as f:
            check_legacy_torch(f, os.fstat(f.fileno()).st_size)
    except pickle.UnpicklingError as e:
        raise I2SError(f"{p}: {one_line(e)}") from None
    except Exception as e:  # a malformed stream: pickle raises many types
        raise I2SError(f"{p}: not a readable torch checkpoint ({type(e).__name__}: "
                       f"{one_line(e)})") from None


def _convert(obj, torch_file: bool, source: str, overrides: dict | None = None):
    """(config, state dict, format name, notes) of an unpickled checkpoint. ``overrides``:
    settings a checkpoint does not store (GET3D's tet_res, dmtet_scale, ...)."""
    if is_get3d_checkpoint(obj):
        return _with_format(convert_get3d(obj, source, overrides), "get3d")
    if overrides:
        raise I2SError(f"{source}: settings can only be given for GET3D checkpoints")
    if torch_file or (isinstance(obj, dict) and "g_ema" in obj):
        if not isinstance(obj, dict):
            raise I2SError(f"{source}: not a rosinality checkpoint (not a dict with 'g_ema')")
        return _with_format(convert_rosinality(obj, source), "rosinality")
    if is_ada_pickle(obj):
        return _with_format(convert_ada(obj, source), "stylegan2-ada-pytorch")
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(x, TFNetwork) for x in obj):
        gs = obj[2]
        # Recognised by the variables: StyleGAN2-ADA TF (version 5) names its synthesis
        # function G_synthesis, as StyleGAN v1 does.
        if is_stylegan2_tf(gs):
            fmt = "stylegan2-ada-tf" if gs.state.get("version") == 5 else "stylegan2-tf"
            return _with_format(convert_tf_stylegan2(gs, source), fmt)
        if is_stylegan1_tf(gs):
            return _with_format(convert_tf_stylegan1(gs, source), "stylegan1-tf")
        raise I2SError(f"{source}: TF network (version {str(gs.state.get('version'))[:10]}) "
                       "holds neither StyleGAN nor StyleGAN2 synthesis variables")
    raise I2SError(f"{source}: not a recognised StyleGAN checkpoint (expected a StyleGAN2-ADA "
                   "pickle, a TF (G, D, Gs) pickle or a rosinality checkpoint)")


def _with_format(converted: tuple, fmt: str):
    cfg, state, notes = converted
    return cfg, state, fmt, notes


def read_checkpoint(path: str | os.PathLike, overrides: dict | None = None):
    """(config, state dict, format name, notes) of any supported checkpoint file."""
    p = Path(path)
    if not p.is_file():
        raise I2SError(f"checkpoint not found: {p}")
    source = str(p)
    obj, torch_file = _read_object(p)
    try:
        return _convert(obj, torch_file, source, overrides)
    except I2SError:
        raise
    except Exception as e:  # a malformed value the checks above did not anticipate
        raise I2SError(f"{source}: malformed checkpoint ({type(e).__name__}: "
                       f"{one_line(e)})") from None


def estimate_w_avg(G: torch.nn.Module, n: int = W_AVG_SAMPLES, seed: int = 0) -> torch.Tensor:
    """The mean of the mapping network's output over ``n`` fixed z (standard normal from a CPU
    generator seeded with ``seed``), [w_dim]: the same for every run and machine."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return torch.cat([G.mapping(c)[:, 0] for c in z.split(1024)]).mean(0)


def convert_checkpoint(path: str | os.PathLike, overrides: dict | None = None) -> Converted:
    """Convert any supported checkpoint into an i2s generator (nothing in it is executed).
    ``overrides``: settings the checkpoint does not store (GET3D only)."""
    t0 = time.perf_counter()
    cfg, state, fmt, notes = read_checkpoint(path, overrides)
    G = {StyleGANConfig: StyleGANGenerator, GET3DConfig: GET3DGenerator}.get(
        type(cfg), StyleGAN2Generator)(cfg)
    if fmt not in ("stylegan2-ada-pytorch", "get3d"):
        # TF and rosinality store no FIR buffers: they are the fixed [1, 3, 3, 1] filter.
        for k in G.state_dict():
            if k.endswith("resample_filter"):
                state.setdefault(k, make_fir_filter())
    estimate = notes.get("w_avg") == W_AVG_ESTIMATED
    if estimate:
        state["mapping.w_avg"] = torch.zeros(cfg.w_dim)
    load_strict(G, state, str(path))
    G.eval().requires_grad_(False)
    if estimate:
        G.mapping.w_avg.copy_(estimate_w_avg(G))
    return Converted(G=G, source_format=fmt, source_sha256=sha256_file(path),
                     seconds=time.perf_counter() - t0, notes=dict(notes))


def convert_file(src: str | os.PathLike, dst: str | os.PathLike,
                 overrides: dict | None = None) -> Converted:
    """Convert ``src`` and write ``dst`` (safetensors, atomically) with provenance metadata."""
    conv = convert_checkpoint(src, overrides)
    save_generator(conv.G, dst, extra_metadata={
        **conv.notes, "source_format": conv.source_format, "source_sha256": conv.source_sha256,
        "source_name": Path(src).name})
    return conv
