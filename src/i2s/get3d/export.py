"""Writing GET3D meshes and latents: OBJ (with a texture atlas: ``.mtl`` and a PNG, else
vertex colours), GLB (binary glTF, via trimesh) and the 3D latent file (``latent.npz`` with
``ws_geo`` and ``ws_tex``); every file atomically, a mesh's files together."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from i2s.errors import I2SError
from i2s.get3d.atlas import (
    XATLAS_HINT,
    TextureAtlas,
    XatlasError,
    bake_atlas,
    check_texture_size,
    xatlas_available,
)
from i2s.media.files import atomic_path, read_npz, staged_outputs, write_bytes_atomic
from i2s.provenance import same_model

log = logging.getLogger(__name__)

LATENT_FORMAT = "i2s-get3d-latent"
MATERIAL = "material_0"


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


def texture_names(path: str | os.PathLike) -> tuple[str, str]:
    """The material and texture files beside an OBJ: ``mesh.obj`` -> ``mesh.mtl``,
    ``mesh_texture.png``."""
    stem = Path(path).stem
    return f"{stem}.mtl", f"{stem}_texture.png"


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def write_textured_obj(path: str | os.PathLike, mesh, atlas: TextureAtlas) -> list[str]:
    """Wavefront OBJ with texture coordinates (``vt``, one per atlas vertex; faces
    ``f v/vt``), its material file and the atlas PNG beside it (``mesh.mtl``,
    ``mesh_texture.png`` for ``mesh.obj``): all three or none (staged, then renamed).
    Returns the three file names."""
    path = Path(path)
    v, f, _ = _arrays(mesh)
    if atlas.faces.shape != f.shape or not np.array_equal(atlas.vertex_index[atlas.faces], f):
        raise I2SError("the texture atlas belongs to another mesh")
    mtl_name, png_name = texture_names(path)
    lines = [f"# i2s GET3D mesh: texture atlas {png_name} ({mtl_name}), faces "
             "counter-clockwise outward", f"mtllib {mtl_name}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v]
    lines += [f"vt {a:.6f} {b:.6f}" for a, b in atlas.uvs]
    lines.append(f"usemtl {MATERIAL}")
    lines += [f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}"
              for (a, b, c), (ta, tb, tc) in zip(f, atlas.faces, strict=True)]
    mtl = (f"# i2s GET3D material\nnewmtl {MATERIAL}\nKa 1.000 1.000 1.000\n"
           f"Kd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\nd 1.0\nillum 1\n"
           f"map_Kd {png_name}\n")
    png = png_bytes(atlas.image)
    with staged_outputs(path.parent) as stage:
        (stage / png_name).write_bytes(png)
        (stage / mtl_name).write_text(mtl)
        (stage / path.name).write_text("\n".join(lines) + "\n")
    return [path.name, mtl_name, png_name]


def write_glb(path: str | os.PathLike, mesh, atlas: TextureAtlas | None = None) -> None:
    """Binary glTF 2.0, written by trimesh: with an atlas a textured material (base colour
    texture, ``TEXCOORD_0``; vertices on chart seams appear once per chart), else vertex
    colours (``COLOR_0``)."""
    import trimesh

    v, f, c = _arrays(mesh)
    if atlas is None:
        alpha = np.full((len(c), 1), 255, np.uint8)
        tm = trimesh.Trimesh(vertices=v, faces=f, vertex_colors=np.hstack([c, alpha]),
                             process=False)
    else:
        # white base colour times the texture, not metallic (glTF's default is metallic 1)
        material = trimesh.visual.material.PBRMaterial(
            name=MATERIAL, baseColorTexture=Image.fromarray(np.asarray(atlas.image, np.uint8),
                                                            "RGB"),
            baseColorFactor=[255, 255, 255, 255], metallicFactor=0.0, roughnessFactor=1.0)
        visual = trimesh.visual.TextureVisuals(uv=atlas.uvs, material=material)
        tm = trimesh.Trimesh(vertices=v[atlas.vertex_index], faces=atlas.faces, visual=visual,
                             process=False)
    with atomic_path(path) as tmp:
        tm.export(tmp, file_type="glb")


@dataclass
class MeshFiles:
    """What :func:`write_mesh_files` wrote: the file ``names``, the ``atlas`` (None for
    vertex colours) and, for vertex colours, ``why`` (one line)."""

    names: list[str] = field(default_factory=list)
    atlas: TextureAtlas | None = None
    why: str = ""

    @property
    def description(self) -> str:
        """One line, e.g. ``mesh.obj + mesh.mtl + mesh_texture.png (1024 px texture atlas),
        mesh.glb`` or ``mesh.obj (vertex colours: ...), mesh.glb``."""
        obj, glb = self.names[:-1], self.names[-1]
        if self.atlas is not None:
            return (f"{' + '.join(obj)} ({self.atlas.image.shape[0]} px texture atlas), "
                    f"{glb}")
        return f"{obj[0]} (vertex colours{': ' + self.why if self.why else ''}), {glb}"


def write_mesh_files(folder: str | os.PathLike, mesh,
                     texture: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     texture_size: int = 1024, name: str = "mesh") -> MeshFiles:
    """Write ``folder/mesh.obj`` and ``folder/mesh.glb``; with a ``texture`` field (world
    points [P, 3] -> RGB [P, 3], e.g. :func:`i2s.get3d.atlas.get3d_texture_field`) and xatlas
    installed, textured by an atlas of ``texture_size`` px baked from the field (also
    ``mesh.mtl`` and ``mesh_texture.png``), else with the mesh's vertex colours. If xatlas
    is missing or fails on the mesh, vertex colours are written and ``why`` says so (and the
    ``i2s`` logger). All files or none.

    Raises:
        I2SError: a mesh without faces or with NaN vertices or colours, a texture field
            giving NaN, a texture size outside [16, 8192].
    """
    folder = Path(folder)
    atlas, why = None, ""
    if len(mesh.faces) == 0:
        raise I2SError("the mesh has no faces")
    _arrays(mesh)  # NaN checks before the (slow) atlas
    check_texture_size(texture_size)
    if texture is None:
        pass
    elif not xatlas_available():
        why = f"xatlas is not installed: {XATLAS_HINT}"
        log.info("writing vertex colours: %s", why)
    else:
        try:
            atlas = bake_atlas(mesh.vertices, mesh.faces, texture, texture_size)
        except XatlasError as e:
            why = str(e)
            log.warning("writing vertex colours: %s", why)
    with staged_outputs(folder) as stage:
        if atlas is None:
            write_obj(stage / f"{name}.obj", mesh)
            names = [f"{name}.obj"]
        else:
            names = write_textured_obj(stage / f"{name}.obj", mesh, atlas)
        write_glb(stage / f"{name}.glb", mesh, atlas)
    return MeshFiles(names + [f"{name}.glb"], atlas, why)


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
        if not same_model(G, lat.model_sha256):
            raise I2SError(f"{p}: made with another model (sha256 {lat.model_sha256[:12]}...)")
    return lat
