"""GET3D's perspective cameras: a batch of K views of the origin, as GET3D builds them.

Conventions (read from GET3D's ``training/sample_camera_distribution.py`` and
``uni_rep/camera/perspective_camera.py``; the formulas are re-derived here, no code is shared):

* **World**: right-handed, **+y up**. Objects sit around the origin; the training cameras lie
  on a sphere of radius 1.2 and look at the origin.
* **Camera frame** (OpenGL): x to the image's right, y up, z backwards (the camera looks down
  -z). ``world_to_camera`` = [R | -R c] with the rows of R ``(right, up, back)``: ``back`` is the
  unit vector from the origin to the camera centre c, ``right = normalise(y_world x back)``,
  ``up = back x right``. Undefined straight above or below the origin, so the polar angle is
  clamped to [1e-5, pi - 1e-5] rad, as GET3D does.
* **Angles.** GET3D's "elevation" (``phi``) is a *polar* angle measured from +y: 0 looks
  straight down, 90 deg is the horizon; its training views use ``phi`` in 75 +- 15 deg. In this
  API ``elevation_deg`` is the angle **above the horizon**: ``elevation_deg = 90 - phi_deg``
  (GET3D's 75 deg is our 15 deg). ``azimuth_deg`` is GET3D's sampled ``rotation_angle`` (uniform
  in [0, 360) in training). The camera centre is::

      c = radius * (-cos(e) sin(a),  sin(e),  -cos(e) cos(a))

  so azimuth 0 sees the object from -z, and the azimuth turns the camera counter-clockwise
  about +y seen from above (azimuth 90 sees it from -x). GET3D's turntable
  (``generate_rotate_camera_list``: 24 views, polar 75 deg) is exactly
  ``Cameras.orbit(24, elevation_deg=15, radius=1.2, start_azimuth_deg=-90)``, in the same order.
* **Projection** (GET3D's clip matrix, OpenGL-style with **y negated**)::

      [[1/(t*aspect), 0,    0,                    0                ],
       [0,           -1/t,  0,                    0                ],
       [0,            0,   -(f+n)/(f-n),         -2*f*n/(f-n)      ],
       [0,            0,   -1,                    0                ]]

  with t = tan(fovy/2), n = 0.1, f = 1000, fovy = 2 atan(16/35) ~ 49.13 deg (a 35 mm lens on a
  32 mm sensor). nvdiffrast puts clip y = -1 at image row 0, so the negated y makes row 0 the
  **top** of the view: GET3D's rendered images are upright as stored (it never flips them), and
  so are ours (see ``raster.py``). ``w_clip = -z_camera`` is the depth along the view axis.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from i2s.errors import I2SError
from i2s.media.files import file_problem, write_json_atomic

DEFAULT_FOVY_DEG = math.degrees(2.0 * math.atan(16.0 / 35.0))  # ~49.134
DEFAULT_RADIUS = 1.2
DEFAULT_NEAR = 0.1
DEFAULT_FAR = 1000.0
POLAR_EPS = 1e-5  # rad; GET3D clamps its polar angle to [eps, pi - eps]
RIGID_TOL = 1e-4  # orthonormality and consistency tolerance when reading files
_VIEW_KEYS = ("world_to_camera", "fovy_deg", "azimuth_deg", "elevation_deg", "radius")
_OPTIONAL_KEYS = ("near", "far")


def look_at_origin(eye: torch.Tensor) -> torch.Tensor:
    """World-to-camera matrices [K, 4, 4] of cameras at ``eye`` [K, 3] looking at the origin
    with +y up (GET3D's construction; differentiable in ``eye``)."""
    back = eye / eye.norm(dim=-1, keepdim=True)
    up_world = torch.zeros_like(eye)
    up_world[:, 1] = 1.0
    right = torch.linalg.cross(up_world, back, dim=-1)
    right = right / right.norm(dim=-1, keepdim=True)
    up = torch.linalg.cross(back, right, dim=-1)
    up = up / up.norm(dim=-1, keepdim=True)
    rot = torch.stack([right, up, back], dim=1)                      # [K, 3, 3], rows
    trans = -(rot @ eye.unsqueeze(-1))                               # [K, 3, 1]
    top = torch.cat([rot, trans], dim=2)                             # [K, 3, 4]
    bottom = torch.zeros_like(top[:, :1])
    bottom[..., 3] = 1.0
    return torch.cat([top, bottom], dim=1)


def spherical_to_position(azimuth_deg: torch.Tensor, elevation_deg: torch.Tensor,
                          radius: torch.Tensor) -> torch.Tensor:
    """Camera centres [K, 3] from azimuth, elevation above the horizon (degrees) and radius,
    each [K] (see the module docstring for the formula)."""
    polar = torch.deg2rad(90.0 - elevation_deg).clamp(POLAR_EPS, math.pi - POLAR_EPS)
    a = torch.deg2rad(azimuth_deg)
    ring = radius * torch.sin(polar)
    return torch.stack([-ring * torch.sin(a), radius * torch.cos(polar), -ring * torch.cos(a)],
                       dim=-1)


class Cameras:
    """K perspective cameras: ``world_to_camera`` [K, 4, 4], ``fovy_deg`` [K], scalar
    ``near``/``far``, and the ``azimuth_deg``/``elevation_deg``/``radius`` [K] they were made
    from (None when given as matrices). Indexing, ``len`` and ``to(device)`` work on views.

    Build with :meth:`orbit` (evenly spaced views) or :meth:`from_spherical` (differentiable in
    its tensors), or from matrices directly.
    """

    def __init__(self, world_to_camera: torch.Tensor, fovy_deg: float | torch.Tensor | None = None,
                 *, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
                 azimuth_deg: torch.Tensor | None = None,
                 elevation_deg: torch.Tensor | None = None,
                 radius: torch.Tensor | None = None):
        m = torch.as_tensor(world_to_camera)
        if not m.is_floating_point():
            m = m.float()
        if m.ndim == 2:
            m = m.unsqueeze(0)
        if m.ndim != 3 or m.shape[1:] != (4, 4):
            raise ValueError(f"world_to_camera must be [K, 4, 4], got {list(m.shape)}")
        k = m.shape[0]
        fov = DEFAULT_FOVY_DEG if fovy_deg is None else fovy_deg
        fov = torch.as_tensor(fov, dtype=m.dtype, device=m.device)
        fov = fov.expand(k) if fov.ndim == 0 else fov
        if fov.shape != (k,):
            raise ValueError(f"fovy_deg must be a number or [K={k}], got {list(fov.shape)}")
        if not 0.0 < near < far:
            raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
        given = [t is not None for t in (azimuth_deg, elevation_deg, radius)]
        if any(given) and not all(given):
            raise ValueError("give azimuth_deg, elevation_deg and radius together or not at all")
        self.world_to_camera = m
        self.fovy_deg = fov
        self.near = float(near)
        self.far = float(far)
        self.azimuth_deg = self.elevation_deg = self.radius = None
        if all(given):
            self.azimuth_deg, self.elevation_deg, self.radius = (
                torch.as_tensor(t, dtype=m.dtype, device=m.device).expand(k)
                for t in (azimuth_deg, elevation_deg, radius))

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_spherical(cls, azimuth_deg: torch.Tensor | float, elevation_deg: torch.Tensor | float,
                       radius: torch.Tensor | float = DEFAULT_RADIUS,
                       fovy_deg: float | torch.Tensor | None = None, *,
                       near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR) -> Cameras:
        """Cameras looking at the origin from azimuth / elevation above the horizon (degrees)
        and radius, broadcast to [K]. The matrices are differentiable in all three (for
        estimating cameras by optimisation); the angles are clamped only at the poles."""
        tensors = [t for t in (azimuth_deg, elevation_deg, radius) if torch.is_tensor(t)]
        ref = tensors[0] if tensors else torch.zeros(())
        dtype = ref.dtype if ref.is_floating_point() else torch.float32
        a, e, r = (torch.as_tensor(t, dtype=dtype, device=ref.device)
                   for t in (azimuth_deg, elevation_deg, radius))
        a, e, r = torch.broadcast_tensors(a.reshape(-1), e.reshape(-1), r.reshape(-1))
        eye = spherical_to_position(a, e, r)
        return cls(look_at_origin(eye), fovy_deg, near=near, far=far,
                   azimuth_deg=a, elevation_deg=e, radius=r)

    @classmethod
    def orbit(cls, k: int = 8, elevation_deg: float = 15.0, radius: float = DEFAULT_RADIUS,
              start_azimuth_deg: float = 0.0, fovy_deg: float | None = None, *,
              device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> Cameras:
        """``k`` views at azimuths ``start + 360 i / k`` (i = 0..k-1), one elevation above the
        horizon and one radius, all looking at the origin. GET3D's defaults: 15 deg, 1.2."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        az = start_azimuth_deg + torch.arange(k, dtype=torch.float64) * (360.0 / k)
        az = az.to(device=device, dtype=dtype)
        return cls.from_spherical(az, torch.full_like(az, elevation_deg),
                                  torch.full_like(az, radius), fovy_deg)

    # ---------------------------------------------------------------- matrices
    def projection(self, aspect: float = 1.0) -> torch.Tensor:
        """GET3D's clip matrices [K, 4, 4] (y negated; ``aspect`` = width / height)."""
        t = torch.tan(torch.deg2rad(self.fovy_deg) * 0.5)
        n, f = self.near, self.far
        zero = torch.zeros_like(t)
        a, b, c = (torch.full_like(t, v)
                   for v in (-(f + n) / (f - n), -2.0 * f * n / (f - n), -1.0))
        return torch.stack([torch.stack([1.0 / (t * aspect), zero, zero, zero], -1),
                            torch.stack([zero, -1.0 / t, zero, zero], -1),
                            torch.stack([zero, zero, a, b], -1),
                            torch.stack([zero, zero, c, zero], -1)], dim=1)

    def mvp(self, aspect: float = 1.0) -> torch.Tensor:
        """World-to-clip matrices [K, 4, 4] = projection @ world_to_camera."""
        return self.projection(aspect) @ self.world_to_camera

    def positions(self) -> torch.Tensor:
        """Camera centres in world space [K, 3] (-R^T t)."""
        rot = self.world_to_camera[:, :3, :3]
        return -(rot.transpose(1, 2) @ self.world_to_camera[:, :3, 3:]).squeeze(-1)

    def forward_vectors(self) -> torch.Tensor:
        """Unit viewing directions in world space [K, 3] (the camera's -z axis)."""
        return -self.world_to_camera[:, 2, :3]

    # ---------------------------------------------------------------- batch protocol
    def __len__(self) -> int:
        return self.world_to_camera.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> Cameras:
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"camera index {index} out of range for {len(self)} views")
            index = slice(index % len(self), index % len(self) + 1)
        return self._map(lambda t: t[index])

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Cameras:
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def _map(self, fn) -> Cameras:
        """A new Cameras with ``fn`` applied to every per-view tensor."""
        sph = [None if t is None else fn(t)
               for t in (self.azimuth_deg, self.elevation_deg, self.radius)]
        return Cameras(fn(self.world_to_camera), fn(self.fovy_deg), near=self.near,
                       far=self.far, azimuth_deg=sph[0], elevation_deg=sph[1], radius=sph[2])

    def __repr__(self) -> str:
        made = "spherical" if self.azimuth_deg is not None else "matrices"
        return (f"Cameras(k={len(self)}, from {made}, fovy_deg={self.fovy_deg.tolist()}, "
                f"near={self.near}, far={self.far})")

    # ---------------------------------------------------------------- files
    def to_json(self, path: str | os.PathLike) -> None:
        """Write the views as a JSON list (atomically): per view ``world_to_camera`` (4x4
        nested lists), ``fovy_deg``, ``azimuth_deg``, ``elevation_deg``, ``radius`` (null when
        made from matrices), ``near``, ``far``."""
        m = self.world_to_camera.detach().double().cpu()
        fov = self.fovy_deg.detach().double().cpu()
        sph = [None if t is None else t.detach().double().cpu()
               for t in (self.azimuth_deg, self.elevation_deg, self.radius)]
        views = []
        for i in range(len(self)):
            view: dict[str, Any] = {"world_to_camera": m[i].tolist(), "fovy_deg": float(fov[i])}
            for key, t in zip(_VIEW_KEYS[2:], sph, strict=True):
                view[key] = None if t is None else float(t[i])
            view["near"], view["far"] = self.near, self.far
            views.append(view)
        write_json_atomic(path, views)

    @classmethod
    def from_json(cls, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> Cameras:
        """Read and check a file written by :meth:`to_json`. Anything wrong (unreadable file,
        bad JSON, missing or unknown keys, non-finite numbers, a matrix that is not a proper
        rigid transform, fovy outside (0, 180), spherical values that disagree with the matrix)
        raises :class:`I2SError` with one line naming the file and the view."""
        if problem := file_problem(path):
            raise I2SError(f"{path}: {problem}")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"),
                              parse_constant=_reject_constant)
        except OSError as e:
            raise I2SError(f"{path}: cannot read ({e.strerror or e})") from None
        except (UnicodeDecodeError, ValueError) as e:
            raise I2SError(f"{path}: not a cameras JSON file ({_one_line(e)})") from None
        if not isinstance(data, list) or not data:
            raise I2SError(f"{path}: expected a non-empty JSON list of views")
        views = [_check_view(v, f"{path}: view {i}") for i, v in enumerate(data)]
        nears = {v["near"] for v in views}
        fars = {v["far"] for v in views}
        if len(nears) > 1 or len(fars) > 1:
            raise I2SError(f"{path}: views disagree on near/far ({sorted(nears)}, {sorted(fars)})")
        with_sph = [v["azimuth_deg"] is not None for v in views]
        if any(with_sph) and not all(with_sph):
            raise I2SError(f"{path}: some views have azimuth/elevation/radius and others not")

        def col(key):
            return torch.tensor([v[key] for v in views], dtype=torch.float64)

        m = torch.tensor([v["world_to_camera"] for v in views], dtype=torch.float64)
        sph = [col(k) for k in _VIEW_KEYS[2:]] if all(with_sph) else [None, None, None]
        cams = cls(m, col("fovy_deg"), near=nears.pop(), far=fars.pop(), azimuth_deg=sph[0],
                   elevation_deg=sph[1], radius=sph[2])
        return cams.to(device=device, dtype=dtype)


# -------------------------------------------------------------------- validation helpers
def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise I2SError(f"{where}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise I2SError(f"{where}: not finite ({value})")
    return float(value)


def _check_view(view: Any, where: str) -> dict[str, Any]:
    """One view of a cameras file, checked; returns plain floats (None for absent angles)."""
    if not isinstance(view, dict):
        raise I2SError(f"{where}: expected an object, got {type(view).__name__}")
    if missing := [k for k in _VIEW_KEYS if k not in view]:
        raise I2SError(f"{where}: missing {', '.join(missing)}")
    if unknown := sorted(set(view) - set(_VIEW_KEYS) - set(_OPTIONAL_KEYS)):
        raise I2SError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    rows = view["world_to_camera"]
    if not (isinstance(rows, list) and len(rows) == 4
            and all(isinstance(r, list) and len(r) == 4 for r in rows)):
        raise I2SError(f"{where}: world_to_camera must be a 4x4 nested list")
    m = [[_number(x, f"{where}: world_to_camera[{i}][{j}]") for j, x in enumerate(r)]
         for i, r in enumerate(rows)]
    mt = torch.tensor(m, dtype=torch.float64)
    if (mt[3] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)).abs().max() > RIGID_TOL:
        raise I2SError(f"{where}: world_to_camera's last row must be [0, 0, 0, 1]")
    rot = mt[:3, :3]
    err = (rot @ rot.T - torch.eye(3, dtype=torch.float64)).abs().max().item()
    if err > RIGID_TOL:
        raise I2SError(f"{where}: world_to_camera's rotation is not orthonormal "
                       f"(off by {err:.3g})")
    if torch.linalg.det(rot) < 0:
        raise I2SError(f"{where}: world_to_camera's rotation is a reflection (det -1)")
    out: dict[str, Any] = {"world_to_camera": m}
    fov = _number(view["fovy_deg"], f"{where}: fovy_deg")
    if not 0.0 < fov < 180.0:
        raise I2SError(f"{where}: fovy_deg {fov} is not in (0, 180)")
    out["fovy_deg"] = fov
    for key, default in (("near", DEFAULT_NEAR), ("far", DEFAULT_FAR)):
        out[key] = _number(view.get(key, default), f"{where}: {key}")
    if not 0.0 < out["near"] < out["far"]:
        raise I2SError(f"{where}: need 0 < near < far, got {out['near']}, {out['far']}")
    sph = [view[k] for k in _VIEW_KEYS[2:]]
    if all(v is None for v in sph):
        out.update(azimuth_deg=None, elevation_deg=None, radius=None)
        return out
    if any(v is None for v in sph):
        raise I2SError(f"{where}: azimuth_deg, elevation_deg and radius must all be numbers "
                       "or all null")
    az, el, r = (_number(v, f"{where}: {k}") for k, v in zip(_VIEW_KEYS[2:], sph, strict=True))
    if r <= 0:
        raise I2SError(f"{where}: radius must be > 0, got {r}")
    if not -90.0 <= el <= 90.0:
        raise I2SError(f"{where}: elevation_deg {el} is not in [-90, 90]")
    expect = look_at_origin(spherical_to_position(
        *(torch.tensor([v], dtype=torch.float64) for v in (az, el, r))))[0]
    off = (expect - mt).abs().max().item()
    if off > RIGID_TOL * max(1.0, r):
        raise I2SError(f"{where}: world_to_camera does not match azimuth_deg/elevation_deg/"
                       f"radius (off by {off:.3g})")
    out.update(azimuth_deg=az, elevation_deg=el, radius=r)
    return out
