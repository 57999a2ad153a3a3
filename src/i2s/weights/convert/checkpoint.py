"""Recognise a checkpoint's format, convert it, and write an i2s safetensors file."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from i2s.errors import I2SError
from i2s.media.files import sha256_file
from i2s.models.stylegan1 import StyleGANConfig, StyleGANGenerator
from i2s.models.stylegan2 import StyleGAN2Generator
from i2s.ops.fir import make_fir_filter
from i2s.weights.convert.rosinality import convert_rosinality
from i2s.weights.convert.safe_pickle import TFNetwork, load_pickle
from i2s.weights.convert.stylegan1_tf import convert_tf_stylegan1
from i2s.weights.convert.stylegan2_ada import convert_ada, is_ada_pickle
from i2s.weights.convert.stylegan2_tf import convert_tf_stylegan2
from i2s.weights.convert.variables import load_strict
from i2s.weights.generator_file import save_generator

ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Converted:
    G: torch.nn.Module
    source_format: str     # "stylegan2-ada-pytorch", "stylegan2-tf", "stylegan1-tf", "rosinality"
    source_sha256: str
    seconds: float

    def summary(self, src: Path, dst: Path | None = None) -> str:
        n = sum(p.numel() for p in self.G.parameters())
        to = f" -> {dst}" if dst is not None else ""
        return (f"converted {src.name} ({self.source_format}, sha256 {self.source_sha256[:12]}"
                f"){to}: {self.G.architecture} {self.G.resolution}px, {self.G.num_ws} ws, "
                f"{n / 1e6:.1f}M parameters, {self.seconds:.1f}s")


def _torch_load(path: Path):
    """torch.save files (rosinality): weights_only, plus argparse.Namespace for 'args'."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types; the message names the refused global
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise I2SError(f"{path}: cannot read torch checkpoint safely ({first})") from None


def read_checkpoint(path: str | os.PathLike):
    """(config, state dict, format name) of any supported checkpoint file."""
    p = Path(path)
    if not p.is_file():
        raise I2SError(f"checkpoint not found: {p}")
    with open(p, "rb") as f:
        head = f.read(4)
    source = str(p)
    if head == ZIP_MAGIC:
        obj, fmt = _torch_load(p), "rosinality"
    else:
        obj = load_pickle(p)
        if isinstance(obj, int):  # legacy torch.save files start with a pickled magic number
            obj, fmt = _torch_load(p), "rosinality"
        else:
            fmt = None
    if fmt == "rosinality" or (isinstance(obj, dict) and "g_ema" in obj):
        return (*convert_rosinality(obj, source), "rosinality")
    if is_ada_pickle(obj):
        return (*convert_ada(obj, source), "stylegan2-ada-pytorch")
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(x, TFNetwork) for x in obj):
        gs = obj[2]
        version = gs.state.get("version")
        synthesis = gs.components.get("synthesis")
        func = synthesis.state.get("build_func_name", "") if synthesis is not None else ""
        if version == 4 or func == "G_synthesis_stylegan2":
            return (*convert_tf_stylegan2(gs, source), "stylegan2-tf")
        if version == 3 or func == "G_synthesis":
            return (*convert_tf_stylegan1(gs, source), "stylegan1-tf")
        raise I2SError(f"{source}: unknown TF network version {version!r}")
    raise I2SError(f"{source}: not a recognised StyleGAN checkpoint (expected a StyleGAN2-ADA "
                   "pickle, a TF (G, D, Gs) pickle or a rosinality checkpoint)")


def convert_checkpoint(path: str | os.PathLike) -> Converted:
    """Convert any supported checkpoint into an i2s generator (nothing in it is executed)."""
    t0 = time.perf_counter()
    cfg, state, fmt = read_checkpoint(path)
    G = StyleGANGenerator(cfg) if isinstance(cfg, StyleGANConfig) else StyleGAN2Generator(cfg)
    if fmt != "stylegan2-ada-pytorch":
        # TF and rosinality store no FIR buffers: they are the fixed [1, 3, 3, 1] filter.
        for k in G.state_dict():
            if k.endswith("resample_filter"):
                state.setdefault(k, make_fir_filter())
    load_strict(G, state, str(path))
    G.eval().requires_grad_(False)
    return Converted(G=G, source_format=fmt, source_sha256=sha256_file(path),
                     seconds=time.perf_counter() - t0)


def convert_file(src: str | os.PathLike, dst: str | os.PathLike) -> Converted:
    """Convert ``src`` and write ``dst`` (safetensors, atomically) with provenance metadata."""
    conv = convert_checkpoint(src)
    save_generator(conv.G, dst, extra_metadata={
        "source_format": conv.source_format, "source_sha256": conv.source_sha256,
        "source_name": Path(src).name})
    return conv
