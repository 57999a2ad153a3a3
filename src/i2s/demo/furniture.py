"""The 3D teacher of ``demo-3d``: a procedural furniture family with exact ground truth.

Every object is a table, stool, bench or chair made of parts with analytic signed distance
functions -- a top (a rounded rectangle from square-cornered to round), four legs (square to
round, straight), or a pedestal with a base disc in their place, optional stretchers between
the legs, and an optional backrest with an optional round cut-out -- joined by smooth unions.
Its texture is procedural: per-part colours, and on the top and the backrest a blend of stripes,
checks and wood-like rings of random frequency and direction, a vertical shading gradient and
a little value noise.

**Geometry and texture come from two independent latents**, as GET3D's two branches do:
``z_geo`` sets every size and the parts, ``z_tex`` every colour and pattern (the colours are
looked up per part, so the texture *shown* depends on the geometry, but ``z_tex`` never moves
the surface). Each parameter is ``Phi(z_i)`` (the normal CDF of one latent coordinate) mapped to
its range, so the whole family is a **continuous** function of z: a student network can learn
it, and the topology still changes along the way -- legs appear and merge into a pedestal,
stretchers close loops (genus 4 and more), the backrest grows from nothing and opens a hole.
This gives real variety in both branches (tables, stools, benches, chairs; plain, striped,
checked, grained) with every quantity exact: the SDF and colour anywhere, a mesh at any
resolution, and renders from any camera.

Conventions: world +y up, objects inside ``[-0.45, 0.45]^3`` standing on ``y = -0.45``, the
SDF negative inside (GET3D's MLP is positive inside: the student learns ``-sdf``), colours in
[0, 1]. Only the first :data:`GEO_DIMS` / :data:`TEX_DIMS` coordinates of each z are read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from i2s.get3d.cameras import Cameras
from i2s.get3d.generator import Mesh
from i2s.get3d.marching_tets import marching_tets
from i2s.get3d.raster import render_mesh
from i2s.get3d.tets import make_tet_grid

GEO_DIMS = 14
TEX_DIMS = 16
FLOOR = -0.45
BOX = 0.45            # every object lies inside [-BOX, BOX]^3
SMOOTH = 0.012        # smooth-union radius between parts


def _u(z: torch.Tensor, i: int) -> torch.Tensor:
    """Phi(z[:, i]) in (0, 1)."""
    return 0.5 * (1 + torch.erf(z[:, i] / math.sqrt(2)))


def _lerp(a: float, b: float, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def _smoothstep(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


@dataclass
class FurnitureGeometry:
    """Part sizes, each [N] (world units). Built by :func:`geometry_params`."""

    width: torch.Tensor          # top, along x
    depth: torch.Tensor          # top, along z
    height: torch.Tensor         # floor to the top's upper face
    top_thickness: torch.Tensor
    corner: torch.Tensor         # top corner radius (up to half the smaller side: round)
    leg: torch.Tensor            # leg half-width
    leg_round: torch.Tensor      # 0 square legs, 1 round
    inset: torch.Tensor          # legs' distance from the top's edge
    pedestal: torch.Tensor       # 0 four legs, 1 one pedestal with a base disc
    stretcher: torch.Tensor      # stretcher half-thickness (0: none)
    stretcher_y: torch.Tensor    # stretcher height above the floor
    back: torch.Tensor           # backrest height above the top (0: none)
    back_thickness: torch.Tensor
    hole: torch.Tensor           # radius of the backrest's round cut-out (0: none)


@dataclass
class FurnitureTexture:
    """Colours [N, 3] in [0, 1] and pattern settings [N]. Built by :func:`texture_params`."""

    top: torch.Tensor
    top2: torch.Tensor           # the pattern's second colour
    legs: torch.Tensor
    back: torch.Tensor
    stripes: torch.Tensor        # pattern weights (sum to 1)
    checks: torch.Tensor
    rings: torch.Tensor
    frequency: torch.Tensor      # pattern cycles per world unit
    angle: torch.Tensor          # stripe direction in the xz plane (radians)
    contrast: torch.Tensor       # 0 plain, 1 full pattern
    shading: torch.Tensor        # darkening towards the floor
    noise: torch.Tensor          # value-noise amplitude


def geometry_params(z_geo: torch.Tensor) -> FurnitureGeometry:
    """The shape of each z_geo [N, >= GEO_DIMS]."""
    if z_geo.ndim != 2 or z_geo.shape[1] < GEO_DIMS:
        raise ValueError(f"z_geo must be [N, >= {GEO_DIMS}], got {list(z_geo.shape)}")
    u = [_u(z_geo, i) for i in range(GEO_DIMS)]
    width = _lerp(0.40, 0.86, u[0])
    depth = _lerp(0.34, 0.80, u[1]).minimum(width * 1.15)
    height = _lerp(0.28, 0.62, u[2])
    top_t = _lerp(0.035, 0.09, u[3])
    corner = u[4] ** 1.5 * 0.5 * width.minimum(depth)
    leg = _lerp(0.026, 0.058, u[5])
    leg_round = _smoothstep(0.35, 0.65, u[6])
    inset = _lerp(0.0, 0.07, u[7]) + corner * 0.3
    pedestal = _smoothstep(0.72, 0.86, u[8])
    stretcher = leg * 0.75 * _smoothstep(0.55, 0.7, u[9]) * (1 - pedestal)
    stretcher_y = _lerp(0.06, 0.4, u[10]) * (height - top_t)
    back = (_lerp(-0.25, 0.45, u[11]).clamp(min=0)).minimum(0.9 - height)
    back_t = _lerp(0.025, 0.06, u[12])
    hole = (_lerp(-0.1, 0.45, u[13]).clamp(min=0) * back).minimum(0.3 * width)
    return FurnitureGeometry(width, depth, height, top_t, corner, leg, leg_round, inset,
                             pedestal, stretcher, stretcher_y, back, back_t, hole)


def _hsv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV (each [N], in [0, 1]) -> RGB [N, 3]."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], -1)
    return v[:, None] - (v * s)[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))


def texture_params(z_tex: torch.Tensor) -> FurnitureTexture:
    """The texture of each z_tex [N, >= TEX_DIMS]."""
    if z_tex.ndim != 2 or z_tex.shape[1] < TEX_DIMS:
        raise ValueError(f"z_tex must be [N, >= {TEX_DIMS}], got {list(z_tex.shape)}")
    u = [_u(z_tex, i) for i in range(TEX_DIMS)]
    top = _hsv(u[0], _lerp(0.15, 0.85, u[1]), _lerp(0.35, 0.95, u[2]))
    top2 = _hsv((u[0] + _lerp(-0.15, 0.15, u[3])) % 1, _lerp(0.1, 0.9, u[4]),
                _lerp(0.15, 0.75, u[5]))
    legs = _hsv(u[6], _lerp(0.0, 0.8, u[7]), _lerp(0.12, 0.9, u[8]))
    back = _hsv((u[0] + _lerp(-0.25, 0.25, u[9])) % 1, _lerp(0.15, 0.85, u[1]),
                _lerp(0.3, 0.95, u[2]))
    logits = torch.stack([z_tex[:, 10], z_tex[:, 11], z_tex[:, 12]], -1) * 2.5
    w = torch.softmax(logits, -1)
    return FurnitureTexture(
        top, top2, legs, back, w[:, 0], w[:, 1], w[:, 2],
        frequency=_lerp(2.0, 7.0, u[13]), angle=_lerp(0.0, math.pi, u[14]),
        contrast=_smoothstep(0.15, 0.6, u[15]), shading=_lerp(0.0, 0.35, u[3]),
        noise=_lerp(0.0, 0.08, u[5]))


# --------------------------------------------------------------------------- primitives

def _col(t: torch.Tensor) -> torch.Tensor:
    """[N] -> [N, 1], to broadcast over points."""
    return t[:, None]


def _box(px, py, pz, bx, by, bz) -> torch.Tensor:
    """Exact SDF of an axis-aligned box with half extents (bx, by, bz) at the origin."""
    qx, qy, qz = px.abs() - bx, py.abs() - by, pz.abs() - bz
    outside = torch.stack([qx.clamp(min=0), qy.clamp(min=0), qz.clamp(min=0)], -1).norm(dim=-1)
    return outside + torch.maximum(qx, torch.maximum(qy, qz)).clamp(max=0)


def _extrude(d2: torch.Tensor, py: torch.Tensor, hy) -> torch.Tensor:
    """Exact SDF of a 2D shape (SDF d2 in xz) extruded over |y| <= hy."""
    qy = py.abs() - hy
    outside = torch.stack([d2.clamp(min=0), qy.clamp(min=0)], -1).norm(dim=-1)
    return outside + torch.maximum(d2, qy).clamp(max=0)


def _round_rect(px, pz, bx, bz, r) -> torch.Tensor:
    """2D SDF of a rectangle with half sides (bx, bz) and corner radius r."""
    qx, qz = px.abs() - bx + r, pz.abs() - bz + r
    outside = torch.stack([qx.clamp(min=0), qz.clamp(min=0)], -1).norm(dim=-1)
    return outside + torch.maximum(qx, qz).clamp(max=0) - r


def _smin(a: torch.Tensor, b: torch.Tensor, k: float = SMOOTH) -> torch.Tensor:
    """Polynomial smooth minimum (a union with a fillet of about radius k)."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


# --------------------------------------------------------------------------- the family

def part_sdfs(g: FurnitureGeometry, points: torch.Tensor) -> dict[str, torch.Tensor]:
    """SDF of each part at points [N, P, 3]: 'top', 'support' (legs / pedestal and
    stretchers), 'back'; each [N, P]."""
    x, y, z = points.unbind(-1)
    W, D, H = _col(g.width) / 2, _col(g.depth) / 2, _col(g.height)
    T = _col(g.top_thickness)
    y_top = FLOOR + H                                   # the top's upper face
    top = _extrude(_round_rect(x, z, W, D, _col(g.corner)), y - (y_top - T / 2), T / 2)

    # four legs (by symmetry: one at (cx, cz) in |x|, |z|), floor to the top's underside
    leg, leg_h = _col(g.leg), (H - T) / 2 + 0.01
    cx = W - _col(g.inset) - leg
    cz = D - _col(g.inset) - leg
    ax, az, ly = x.abs() - cx, z.abs() - cz, y - (FLOOR + leg_h - 0.01)
    square = _box(ax, ly, az, leg, leg_h, leg)
    round_ = _extrude(torch.sqrt(ax * ax + az * az + 1e-12) - leg, ly, leg_h)
    legs = torch.lerp(square, round_, _col(g.leg_round))
    # stretchers: bars joining the legs along x and along z at one height
    s = _col(g.stretcher)
    sy = y - (FLOOR + _col(g.stretcher_y))
    bars = torch.minimum(_box(x, sy, z.abs() - cz, cx, s, s), _box(x.abs() - cx, sy, z, s, s, cz))
    legs = torch.where(s > 1e-4, _smin(legs, bars), legs)
    # a pedestal: a column and a base disc
    r_col = 0.03 + 1.2 * leg
    column = _extrude(torch.sqrt(x * x + z * z + 1e-12) - r_col, y - (FLOOR + (H - T) / 2),
                      (H - T) / 2)
    disc = _extrude(torch.sqrt(x * x + z * z + 1e-12) - 0.55 * W.minimum(D) - 0.05,
                    y - (FLOOR + 0.015), 0.015)
    pedestal = _smin(column, disc)
    support = torch.lerp(legs, pedestal, _col(g.pedestal))

    # the backrest: a slab on the back edge, from the top up; its cut-out a cylinder along z
    B, Bt = _col(g.back), _col(g.back_thickness) / 2
    by = y - (y_top + B / 2 - 0.005)
    bz = z + D - Bt
    back = _box(x, by, bz, W - 0.01, B / 2 + 0.005, Bt)
    hole = _extrude(torch.sqrt(x * x + by * by + 1e-12) - _col(g.hole), bz, Bt + 0.02)
    back = torch.where(B > 1e-4, torch.maximum(back, -hole), back.abs() + 0.05)
    return {"top": top, "support": support, "back": back}


def sdf(g: FurnitureGeometry, points: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) at points [N, P, 3] -> [N, P]."""
    p = part_sdfs(g, points)
    return _smin(_smin(p["top"], p["support"]), p["back"])


def _value_noise(points: torch.Tensor, scale: float = 9.0) -> torch.Tensor:
    """Smooth pseudo-random values in [-1, 1] at points [N, P, 3] (sums of sines)."""
    x, y, z = (points * scale).unbind(-1)
    return (torch.sin(1.7 * x + 2.3 * y + 0.3) * torch.sin(2.1 * z - 1.3 * x + 1.1)
            + 0.5 * torch.sin(3.9 * y + 3.1 * z + 2.0)) / 1.5


def color(g: FurnitureGeometry, t: FurnitureTexture, points: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] at points [N, P, 3] -> [N, P, 3]: the colour of the nearest part, with
    the pattern on the top and the backrest, shading and noise."""
    x, y, z = points.unbind(-1)
    parts = part_sdfs(g, points)
    dirx, dirz = torch.cos(_col(t.angle)), torch.sin(_col(t.angle))
    f = _col(t.frequency) * 2 * math.pi
    u = x * dirx + z * dirz
    v = -x * dirz + z * dirx
    stripes = 0.5 + 0.5 * torch.tanh(4 * torch.sin(f * u))
    checks = 0.5 + 0.5 * torch.tanh(4 * torch.sin(f * u) * torch.sin(f * (v + y)))
    rings = 0.5 + 0.5 * torch.sin(f * 1.5 * torch.sqrt(u * u + 0.3 * v * v + y * y + 1e-9)
                                  + 2 * _value_noise(points, 5.0))
    pattern = (_col(t.stripes) * stripes + _col(t.checks) * checks + _col(t.rings) * rings)
    mix = (_col(t.contrast) * pattern)[..., None]
    top = torch.lerp(t.top[:, None], t.top2[:, None], mix)
    back = torch.lerp(t.back[:, None], t.top2[:, None], mix)
    legs = t.legs[:, None].expand_as(top)
    which = torch.stack([parts["top"], parts["support"], parts["back"]], -1).argmin(-1)
    rgb = torch.where((which == 0)[..., None], top, torch.where((which == 1)[..., None], legs,
                                                                 back))
    shade = 1 - _col(t.shading) * ((BOX - y) / (2 * BOX)).clamp(0, 1)
    rgb = rgb * shade[..., None] + _col(t.noise)[..., None] * _value_noise(points)[..., None]
    return rgb.clamp(0, 1)


@dataclass
class FurnitureObject:
    """One teacher object: its two latents and parameters. ``z_geo``, ``z_tex`` [1, z_dim]."""

    z_geo: torch.Tensor
    z_tex: torch.Tensor

    @property
    def geometry(self) -> FurnitureGeometry:
        return geometry_params(self.z_geo)

    @property
    def texture(self) -> FurnitureTexture:
        return texture_params(self.z_tex)

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        """SDF at points [P, 3] -> [P] (negative inside)."""
        return sdf(self.geometry, points.unsqueeze(0))[0]

    def color(self, points: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] at points [P, 3] -> [P, 3]."""
        return color(self.geometry, self.texture, points.unsqueeze(0))[0]

    def mesh(self, resolution: int = 128, chunk: int = 1 << 18) -> Mesh:
        """Ground-truth mesh: marching tetrahedra on the exact SDF over a regular grid of
        ``resolution`` cells per side (spacing 1 / resolution), vertex colours in [-1, 1]
        (the convention of GET3D meshes)."""
        grid = make_tet_grid(resolution, 1.0)
        with torch.no_grad():
            values = torch.cat([self.sdf(p) for p in grid.vertices.split(chunk)])
            v, f = marching_tets(grid.vertices, grid.tets, -values, positive_inside=True)
            c = self.color(v) * 2 - 1 if len(v) else torch.zeros(0, 3)
        return Mesh(v, f, c)

    def render(self, cameras: Cameras, resolution: int = 128, mesh: Mesh | None = None
               ) -> torch.Tensor:
        """Renders [K, 4, H, W]: RGB in [-1, 1] (the exact colour at every covered pixel's
        surface point, background -1 = black) and the anti-aliased mask."""
        mesh = mesh or self.mesh()
        with torch.no_grad():
            r = render_mesh(mesh.vertices, mesh.faces, cameras, resolution,
                            lambda p: self.color(p) * 2 - 1, background=-1.0)
        return r.image
