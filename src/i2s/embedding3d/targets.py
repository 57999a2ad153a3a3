"""What a 3D inversion fits: :class:`Target3D` (views with silhouettes, their cameras or none,
and for mesh inputs depth, normals and surface samples), read from image files or rendered
from a mesh file.

Images: RGBA (the alpha is the silhouette), or RGB with mask files, or RGB on a uniform
background (``background="auto"``: the colour of the image border; or a given colour), the
silhouette then being every pixel that differs from it by more than ``tolerance`` (0-255) in
some channel. Views must be square; they are resized to the inversion's resolution.

Meshes (OBJ / GLB / PLY, read with trimesh): texture or vertex colours (a texture is sampled at
the vertices, trimesh's ``to_color``; no colours: grey), rendered by i2s from an orbit of views
(:func:`i2s.get3d.raster.render_mesh`, colours on black, depth and world normals too), plus
area-uniform surface samples for 3D terms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from i2s.errors import I2SError
from i2s.get3d.cameras import Cameras
from i2s.get3d.metrics import bounding_box_diagonal, sample_surface
from i2s.get3d.raster import render_mesh
from i2s.media.files import file_problem
from i2s.media.images import read_mask, read_rgba

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".off", ".stl")
MESH_ELEVATION = 20.0      # the orbit a mesh is rendered from (as examples/3d)
MESH_RADIUS = 1.5
NO_COLOUR = 0.7            # grey for meshes without colours ([0, 1])
BACKGROUND_TOLERANCE = 12  # 0-255: a pixel this close to the background colour is background
MAX_VIEWS = 360


@dataclass
class Target3D:
    """The views of one object: ``images`` [K, 4, H, W] (RGB in [-1, 1], silhouette in [0, 1];
    RGB matters only inside the silhouette), ``cameras`` (K views, or None: to be estimated),
    for mesh inputs ``depth`` [K, 1, H, W], ``normals`` [K, 3, H, W] (world, 0 outside),
    ``points`` [P, 3] (surface samples) and the mesh itself (``vertices``, ``faces``); ``names``
    one per view, ``kind`` ("images" or "mesh"), ``source`` (the input files)."""

    images: torch.Tensor
    cameras: Cameras | None = None
    depth: torch.Tensor | None = None
    normals: torch.Tensor | None = None
    points: torch.Tensor | None = None
    vertices: torch.Tensor | None = None
    faces: torch.Tensor | None = None
    names: list[str] = field(default_factory=list)
    kind: str = "images"
    source: list[str] = field(default_factory=list)
    has_colour: bool = True

    def __post_init__(self) -> None:
        x = self.images
        if x.ndim != 4 or x.shape[1] != 4 or x.shape[0] < 1 or x.shape[2] != x.shape[3]:
            raise I2SError(f"target images must be [K, 4, H, H] (RGB + silhouette, square), got "
                           f"{list(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise I2SError("the target images have NaN or infinite values")
        k = x.shape[0]
        if self.cameras is not None and len(self.cameras) != k:
            raise I2SError(f"{len(self.cameras)} cameras for {k} views: give one camera per "
                           "view, in the order of the views")
        if self.cameras is not None and not bool(torch.isfinite(
                self.cameras.world_to_camera).all()):
            raise I2SError("the cameras have NaN or infinite values")
        for name in ("depth", "normals"):
            t = getattr(self, name)
            if t is not None and (t.shape[0] != k or t.shape[2:] != x.shape[2:]):
                raise I2SError(f"target {name} {list(t.shape)} does not match the views")
        if self.points is not None and (self.points.ndim != 2 or self.points.shape[1] != 3 or
                                        not bool(torch.isfinite(self.points).all())):
            raise I2SError("target points must be finite [P, 3]")
        if not self.names:
            self.names = [f"{i:03d}" for i in range(k)]
        if len(self.names) != k:
            raise I2SError(f"{len(self.names)} view names for {k} views")

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def rgb(self) -> torch.Tensor:
        return self.images[:, :3]

    @property
    def mask(self) -> torch.Tensor:
        """Silhouettes [K, H, W] in [0, 1]."""
        return self.images[:, 3]

    def select(self, index: Sequence[int]) -> Target3D:
        """The views ``index`` (in that order); 3D data is kept."""
        idx = torch.as_tensor(list(index), dtype=torch.long)

        def pick(t):
            return None if t is None else t[idx.to(t.device)]

        return replace(self, images=pick(self.images),
                       cameras=None if self.cameras is None else self.cameras[idx],
                       depth=pick(self.depth), normals=pick(self.normals),
                       names=[self.names[i] for i in idx.tolist()])

    def at_resolution(self, resolution: int) -> Target3D:
        """The views resized to ``resolution`` (area-averaged down, bilinear up; normals
        renormalised)."""
        if resolution == self.resolution:
            return self
        return replace(self, images=resize(self.images, resolution),
                       depth=None if self.depth is None else resize(self.depth, resolution),
                       normals=None if self.normals is None else
                       F.normalize(resize(self.normals, resolution), dim=1))

    def to(self, device: torch.device | str) -> Target3D:
        def move(t):
            return None if t is None else t.to(device)

        return replace(self, images=move(self.images), depth=move(self.depth),
                       normals=move(self.normals), points=move(self.points),
                       vertices=move(self.vertices), faces=move(self.faces),
                       cameras=None if self.cameras is None else self.cameras.to(device=device))


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """[K, C, H, W] -> [K, C, R, R]: area average when shrinking, bilinear otherwise."""
    if x.shape[-1] == resolution:
        return x
    if x.shape[-1] > resolution:
        return F.interpolate(x, size=(resolution, resolution), mode="area")
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                         align_corners=False)


# ---------------------------------------------------------------------- image files
def parse_colour(text: str) -> tuple[int, int, int] | None:
    """``auto`` -> None; ``R,G,B`` (0-255), ``#rrggbb`` or ``black``/``white`` -> a colour.
    I2SError otherwise."""
    t = text.strip().lower()
    if t == "auto":
        return None
    named = {"black": (0, 0, 0), "white": (255, 255, 255)}
    if t in named:
        return named[t]
    try:
        if t.startswith("#") and len(t) == 7:
            vals = [int(t[i:i + 2], 16) for i in (1, 3, 5)]
        else:
            vals = [int(v) for v in t.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3 or not all(0 <= v <= 255 for v in vals):
        raise I2SError(f"background {text!r}: use auto, black, white, R,G,B (0-255) or #rrggbb")
    return vals[0], vals[1], vals[2]


def border_colour(rgb: np.ndarray, where: str) -> np.ndarray:
    """The uniform colour of an image's border (the median of its edge pixels); I2SError when
    the border is not uniform (then the background cannot be told from the object)."""
    edge = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int32)
    colour = np.median(edge, axis=0)
    close = (np.abs(edge - colour).max(axis=1) <= BACKGROUND_TOLERANCE).mean()
    if close < 0.9:
        raise I2SError(f"{where}: the border is not one colour, so the background is unknown; "
                       "give RGBA images, --mask files or --background R,G,B")
    return colour


def silhouette_from_background(rgb: np.ndarray, colour, tolerance: int = BACKGROUND_TOLERANCE
                               ) -> np.ndarray:
    """Pixels that differ from ``colour`` by more than ``tolerance`` in some channel -> bool."""
    diff = np.abs(rgb.astype(np.int32) - np.asarray(colour, np.int32)[None, None])
    return diff.max(axis=-1) > tolerance


def load_image_target(images: Sequence[str | os.PathLike], resolution: int, *,
                      cameras: Cameras | str | os.PathLike | None = None,
                      background: str | tuple[int, int, int] | None = "auto",
                      masks: Sequence[str | os.PathLike] | None = None) -> Target3D:
    """Views from image files (see the module docstring), resized to ``resolution``.

    ``cameras``: a :class:`Cameras` or a ``cameras.json`` (one view per image, in order), or
    None (to be estimated). ``masks``: one mask file per image. ``background``: ``"auto"``
    (the border's colour), a colour, or None with RGBA images / masks. Everything is checked
    before anything is returned; problems raise one-line :class:`I2SError`s.
    """
    if not images:
        raise I2SError("no input images")
    if len(images) > MAX_VIEWS:
        raise I2SError(f"at most {MAX_VIEWS} views, got {len(images)}")
    if masks is not None and len(masks) != len(images):
        raise I2SError(f"{len(masks)} masks for {len(images)} images: give one mask per image")
    cams = Cameras.from_json(cameras) if isinstance(cameras, str | os.PathLike) else cameras
    if cams is not None and len(cams) != len(images):
        raise I2SError(f"{len(cams)} cameras for {len(images)} images: the cameras file needs "
                       "one view per image, in the order of the images")
    colour = parse_colour(background) if isinstance(background, str) else background
    views = []
    for i, path in enumerate(images):
        rgb, alpha = read_rgba(path)
        h, w = rgb.shape[:2]
        if h != w:
            raise I2SError(f"{path}: {w}x{h} is not square; views must be square like the "
                           "renders of their cameras")
        if masks is not None:
            mask = read_mask(masks[i])
            if mask.shape != (h, w):
                raise I2SError(f"{masks[i]}: {mask.shape[1]}x{mask.shape[0]} does not match "
                               f"its image {path} ({w}x{h})")
        elif alpha is not None:
            mask = alpha.astype(np.float32) / 255
        else:
            c = border_colour(rgb, str(path)) if colour is None else colour
            mask = silhouette_from_background(rgb, c).astype(np.float32)
        if mask.max() <= 0.5:
            raise I2SError(f"{path}: the silhouette is empty (no object pixels)")
        if mask.min() >= 0.5:
            raise I2SError(f"{path}: the silhouette covers the whole image (no background); "
                           "give RGBA images, --mask files or --background")
        t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1
        views.append(resize(torch.cat([t, torch.from_numpy(mask)[None]])[None], resolution)[0])
    return Target3D(torch.stack(views), cameras=cams,
                    names=[Path(p).stem for p in images], kind="images",
                    source=[str(p) for p in images])


# ---------------------------------------------------------------------- mesh files
@dataclass
class MeshData:
    """A mesh read from a file: ``vertices`` [V, 3] float32, ``faces`` [F, 3] long,
    ``colors`` [V, 3] in [0, 1], whether the file had colours."""

    vertices: torch.Tensor
    faces: torch.Tensor
    colors: torch.Tensor
    has_colour: bool


def read_mesh(path: str | os.PathLike, fit: float | None = None) -> MeshData:
    """Read OBJ / GLB / PLY (anything trimesh reads) with its colours; the parts of a scene are
    merged in world placement. ``fit``: centre the mesh's box at the origin and scale its
    longest side to ``fit`` (else the coordinates are kept). One-line I2SError for a missing,
    unreadable or empty mesh, or NaN."""
    import trimesh

    p = Path(path)
    if problem := file_problem(p):
        raise I2SError(f"{p}: {problem}")
    if p.suffix.lower() not in MESH_SUFFIXES:
        raise I2SError(f"{p}: not a mesh file i2s reads ({', '.join(MESH_SUFFIXES)})")
    try:
        scene = trimesh.load(p, force="scene", process=False)
        parts = list(scene.dump(concatenate=False)) if isinstance(scene, trimesh.Scene) \
            else [scene]
    except Exception as e:  # trimesh raises many types for bad files
        raise I2SError(f"{p}: cannot read the mesh ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:160]})") from None
    verts, faces, cols, coloured, offset = [], [], [], True, 0
    for m in parts:
        if not isinstance(m, trimesh.Trimesh) or len(m.faces) == 0:
            continue
        v = np.asarray(m.vertices, np.float64)
        c, ok = _vertex_colours(m)
        coloured &= ok
        verts.append(v)
        faces.append(np.asarray(m.faces, np.int64) + offset)
        cols.append(c)
        offset += len(v)
    if not faces:
        raise I2SError(f"{p}: the file has no triangles")
    v = torch.from_numpy(np.concatenate(verts))
    if not bool(torch.isfinite(v).all()):
        raise I2SError(f"{p}: the mesh has NaN or infinite vertices")
    if fit is not None:
        lo, hi = v.min(0).values, v.max(0).values
        side = float((hi - lo).max())
        if side <= 0:
            raise I2SError(f"{p}: the mesh is flat in every direction")
        v = (v - (lo + hi) / 2) * (fit / side)
    return MeshData(v.float(), torch.from_numpy(np.concatenate(faces)),
                    torch.from_numpy(np.concatenate(cols)).float(), coloured)


def _vertex_colours(m) -> tuple[np.ndarray, bool]:
    """Per-vertex RGB in [0, 1] of a trimesh mesh, and whether it had colours."""
    grey = np.full((len(m.vertices), 3), NO_COLOUR)
    try:
        visual = m.visual
        if visual.kind == "texture":
            visual = visual.to_color()
        if visual.kind in ("vertex", "face"):
            c = np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255
            if c.shape == grey.shape and np.isfinite(c).all():
                return c, True
    except Exception:  # a visual trimesh cannot convert: no colours
        pass
    return grey, False


def orbit_cameras(views: int, elevation_deg: float = MESH_ELEVATION,
                  radius: float = MESH_RADIUS) -> Cameras:
    """The views a mesh is rendered from: ``views`` azimuths 360 / views apart."""
    if not 1 <= views <= MAX_VIEWS:
        raise I2SError(f"views must be from 1 to {MAX_VIEWS}, got {views}")
    return Cameras.orbit(k=views, elevation_deg=elevation_deg, radius=radius)


def load_mesh_target(path: str | os.PathLike, resolution: int, views: int = 8, *,
                     cameras: Cameras | None = None, points: int = 10000, seed: int = 0,
                     fit: float | None = None) -> Target3D:
    """Render a mesh file from ``cameras`` (default: ``views`` orbit views at elevation 20
    degrees, radius 1.5) at ``resolution``: colours on black, silhouette, depth, world normals;
    and ``points`` area-uniform surface samples."""
    mesh = read_mesh(path, fit)
    return mesh_target(mesh, resolution, views, cameras=cameras, points=points, seed=seed,
                       source=str(path))


def mesh_target(mesh: MeshData, resolution: int, views: int = 8, *,
                cameras: Cameras | None = None, points: int = 10000, seed: int = 0,
                source: str = "mesh") -> Target3D:
    """:func:`load_mesh_target` for a mesh in memory."""
    cams = cameras if cameras is not None else orbit_cameras(views)
    with torch.no_grad():
        r = render_mesh(mesh.vertices, mesh.faces, cams, resolution, mesh.colors * 2 - 1,
                        background=-1.0, depth=True, normals=True)
    if float(r.image[:, 3].sum()) == 0:
        raise I2SError(f"{source}: the mesh is not in view of any camera (give --fit-mesh to "
                       "centre and scale it)")
    pts = sample_surface(mesh.vertices, mesh.faces, points, torch.Generator().manual_seed(seed))
    if len(pts) == 0 or not math.isfinite(bounding_box_diagonal(mesh.vertices)):
        raise I2SError(f"{source}: the mesh has no surface area")
    return Target3D(r.image, cameras=cams, depth=r.depth, normals=r.normals, points=pts,
                    vertices=mesh.vertices, faces=mesh.faces, kind="mesh", source=[source],
                    has_colour=mesh.has_colour)
