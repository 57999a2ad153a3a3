"""Writing GET3D meshes and latents: OBJ (vertex colours), GLB (binary glTF, via trimesh) and
the 3D latent file (``latent.npz`` with ``ws_geo`` and ``ws_tex``); every file atomically."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2s.errors import I2SError
from i2s.media.files import atomic_path, read_npz, write_bytes_atomic

LATENT_FORMAT = "i2s-get3d-latent"


def vertex_colors_uint8(colors: torch.Tensor) -> np.ndarray:
    """RGB in about [-1, 1] [V, 3] -> uint8 [V, 3] (clipped), as images are written."""
    c = colors.detach().float().cpu()
    if not torch.isfinite(c).all():
        raise I2SError("the mesh has NaN or infinite colours")
    return ((c + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def _arrays(mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = mesh.vertices.detach().float().cpu()
    if not torch.isfinite(v).all():
        raise I2SError("the mesh has NaN or infinite vertices")
    return v.numpy(), mesh.faces.detach().cpu().numpy().astype(np.int64), \
        vertex_colors_uint8(mesh.colors)


def write_obj(path: str | os.PathLike, mesh) -> None:
    """Wavefront OBJ with per-vertex colours (``v x y z r g b``, r g b in [0, 1]), the
    extension most tools read (Blender, MeshLab, trimesh)."""
    v, f, c = _arrays(mesh)
    lines = ["# i2s GET3D mesh: vertices with RGB colours, faces counter-clockwise outward"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f} {r / 255:.4f} {g / 255:.4f} {b / 255:.4f}"
              for (x, y, z), (r, g, b) in zip(v, c, strict=True)]
    lines += [f"f {a + 1} {b + 1} {d + 1}" for a, b, d in f]
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())


def write_glb(path: str | os.PathLike, mesh) -> None:
    """Binary glTF 2.0 with vertex colours (COLOR_0), written by trimesh."""
    import trimesh

    v, f, c = _arrays(mesh)
    alpha = np.full((len(c), 1), 255, np.uint8)
    tm = trimesh.Trimesh(vertices=v, faces=f, vertex_colors=np.hstack([c, alpha]), process=False)
    with atomic_path(path) as tmp:
        tm.export(tmp, file_type="glb")


@dataclass
class Latent3D:
    """The two codes of a GET3D shape: ``ws_geo`` [num_ws_geo, w_dim], ``ws_tex``
    [num_ws_tex, w_dim], float32, and the SHA-256 of the model file they belong to."""

    ws_geo: np.ndarray
    ws_tex: np.ndarray
    model_sha256: str = ""


def save_latent_3d(path: str | os.PathLike, latent: Latent3D) -> None:
    buf = io.BytesIO()
    np.savez(buf, ws_geo=np.asarray(latent.ws_geo, np.float32),
             ws_tex=np.asarray(latent.ws_tex, np.float32),
             model_sha256=np.array(latent.model_sha256 or ""), format=np.array(LATENT_FORMAT))
    write_bytes_atomic(path, buf.getvalue())


def load_latent_3d(path: str | os.PathLike, G=None) -> Latent3D:
    """Read a 3D latent file; checked for finite values and, with ``G``, for its shapes and
    model hash. One-line I2SError for anything else."""
    p = Path(path)
    f = read_npz(p, "latent file")
    if "ws_geo" not in f or "ws_tex" not in f:
        raise I2SError(f"{p}: not a GET3D latent file (needs ws_geo and ws_tex; an image "
                       "latent has only 'w')")
    try:
        lat = Latent3D(f["ws_geo"].astype(np.float32), f["ws_tex"].astype(np.float32),
                       str(f["model_sha256"]) if "model_sha256" in f else "")
    except (TypeError, ValueError) as e:
        raise I2SError(f"{p}: not a GET3D latent file ({type(e).__name__})") from None
    for name in ("ws_geo", "ws_tex"):
        a = getattr(lat, name)
        if a.ndim != 2 or not np.isfinite(a).all():
            raise I2SError(f"{p}: '{name}' must be a finite [num_ws, w_dim] array")
    if G is not None:
        want = {"ws_geo": (G.num_ws_geo, G.w_dim), "ws_tex": (G.num_ws_tex, G.w_dim)}
        for name, shape in want.items():
            if getattr(lat, name).shape != shape:
                raise I2SError(f"{p}: {name} has shape {getattr(lat, name).shape}, this model "
                               f"needs {shape}; it was made with a different model")
        if lat.model_sha256 and G.sha256 and lat.model_sha256 != G.sha256:
            raise I2SError(f"{p}: made with another model (sha256 {lat.model_sha256[:12]}...)")
    return lat
