"""What a file is, from its first bytes: so that ``i2s convert photo.png`` says "a PNG
image" instead of a pickle parser's complaint."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

ACCEPTED = ("StyleGAN2-ADA .pkl, StyleGAN/StyleGAN2 TensorFlow .pkl, rosinality .pt and "
            "GET3D .pt checkpoints")

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (WebP image, WAV audio, ...)"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5 file (e.g. Keras weights)"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x08", "an ONNX/protobuf file"),
]


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


def describe_non_checkpoint(path: Path) -> str | None:
    """None when ``path`` may be a checkpoint (a pickle, or a zip holding a torch pickle);
    otherwise what it is, e.g. "a PNG image"."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "an empty file"
    if head[:1] == b"\x80":  # pickle protocol 2+ (NVIDIA's pickles, legacy torch.save)
        return None
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "a damaged zip archive"
        if any(n.endswith("data.pkl") for n in names):
            return None  # torch.save's zip format
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy .npz archive (an i2s latent? use it with --latent or the edits)"
        return "a zip archive without a torch checkpoint in it"
    if _is_safetensors(head):
        try:
            n = struct.unpack("<Q", head[:8])[0]
            with open(path, "rb") as f:
                f.seek(8)
                meta = json.loads(f.read(min(n, 10_000_000))).get("__metadata__", {})
        except (ValueError, OSError):
            meta = {}
        if isinstance(meta, dict) and "architecture" in meta:
            return "already an i2s generator file (pass it to --model as it is)"
        return "a safetensors file (i2s reads its own generator files directly)"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return "not a pickle or torch file"
