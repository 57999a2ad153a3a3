"""Differentiable marching tetrahedra (DMTet, Shen et al. 2021), GET3D's surface extraction
(docs/get3d.md), and GET3D's fix for shapes without a surface.

Conventions:

* A grid vertex is on the *positive* side when ``sdf > 0`` and on the negative side otherwise
  (``sdf <= 0``), as in GET3D; a tetrahedron holds surface when its four vertices are not all
  on one side.
* One mesh vertex per crossed grid edge (a, b), at the zero of the linear interpolation
  ``v = (v_a s_b - v_b s_a) / (s_b - s_a)``; tetrahedra share it, so the mesh is closed
  wherever the surface stays inside the grid. Gradients reach ``vertices`` and ``sdf``
  through this formula only (the topology is not differentiable).
* Mesh vertices come in the order of their grid edges ``(a, b)``, ``a < b``, sorted; faces
  come tetrahedron by tetrahedron, first those with one triangle, then those with two (a quad,
  split along the segment between the points on local edges (0, 2) and (1, 3) when these are
  crossed, else on (0, 3) and (1, 2); first the triangle holding the lower-numbered of the
  other two crossed edges, local edges numbered (0,1), (0,2), (0,3), (1,2), (1,3), (2,3)).
  This is the order of GET3D's output: the same vertices and triangles in the same order,
  though a triangle may start at another of its three vertices (a rotation).
* Orientation (for positively oriented tetrahedra, see :class:`i2s.get3d.tets.TetGrid`): by
  default the normals ``(v1 - v0) x (v2 - v0)`` point from the negative to the positive side,
  i.e. outward for the usual SDF that is negative inside. GET3D's SDF is **positive inside**
  (its fix below puts a positive value at the centre and negative ones on the box) and its
  normals point from positive to negative, i.e. outward: ``positive_inside=True`` gives that.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from i2s.get3d.tets import TET_EDGES


def _triangle_table() -> tuple[torch.Tensor, torch.Tensor]:
    """([16, 2, 3] local edge numbers of each case's triangles (-1: none), [16] counts).

    Case ``c`` has vertex i on the positive side when bit i of c is set. The triangles are
    oriented with their normals toward the positive side: checked on the reference
    tetrahedron (origin and the three unit vectors, positive volume) with the points at the
    edges' middles; an orientation-preserving affine map and moving the points along their
    edges keep that sidedness.
    """
    ref = torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    edge_of = {tuple(e): i for i, e in enumerate(TET_EDGES.tolist())}
    mid = (ref[TET_EDGES[:, 0]] + ref[TET_EDGES[:, 1]]) / 2            # [6, 3]

    def edge(a: int, b: int) -> int:
        return edge_of[(min(a, b), max(a, b))]

    def oriented(tri: list[int], towards: int) -> list[int]:
        p0, p1, p2 = mid[tri]
        normal = torch.linalg.cross(p1 - p0, p2 - p0)
        return tri if float(normal @ (ref[towards] - p0)) > 0 else [tri[0], tri[2], tri[1]]

    table = torch.full((16, 2, 3), -1, dtype=torch.long)
    count = torch.zeros(16, dtype=torch.long)
    for code in range(1, 15):
        pos = [i for i in range(4) if code >> i & 1]
        neg = [i for i in range(4) if not code >> i & 1]
        if len(pos) in (1, 3):
            lone, others = (pos[0], neg) if len(pos) == 1 else (neg[0], pos)
            tris = [[edge(lone, o) for o in others]]
        else:
            (a, b), (c, d) = pos, neg
            quad = [edge(a, c), edge(a, d), edge(b, d), edge(b, c)]   # a cycle around the quad
            first = edge(0, 2) if edge(0, 2) in quad else edge(0, 3)  # one end of the diagonal
            k = quad.index(first)
            q = quad[k:] + quad[:k]
            tris = [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]
            if q[3] < q[1]:  # first the triangle with the lower-numbered other edge
                tris.reverse()
        for j, tri in enumerate(tris):
            table[code, j] = torch.tensor(oriented(tri, pos[0]))
        count[code] = len(tris)
    return table, count


TRIANGLE_TABLE, TRIANGLE_COUNT = _triangle_table()
_BITS = torch.tensor([1, 2, 4, 8])


def marching_tets(vertices: torch.Tensor, tets: torch.Tensor, sdf: torch.Tensor, *,
                  positive_inside: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The triangle mesh of the zero level set of ``sdf`` on a tetrahedral grid.

    Args:
        vertices: [V, 3] float grid positions (deformed or not).
        tets: [T, 4] long, positively oriented tetrahedra.
        sdf: [V] float values at the grid vertices.
        positive_inside: False: normals point toward positive sdf (outward for an SDF that
            is negative inside); True: toward negative sdf (outward for GET3D's SDF).
    Returns:
        mesh_vertices [M, 3] (differentiable w.r.t. ``vertices`` and ``sdf``) and faces
        [F, 3] long; both empty when no tetrahedron holds surface.
    """
    if vertices.ndim != 2 or vertices.shape[1] != 3 or tets.ndim != 2 or tets.shape[1] != 4 \
            or sdf.shape != vertices.shape[:1]:
        raise ValueError(f"vertices [V, 3], tets [T, 4] and sdf [V] expected, got "
                         f"{tuple(vertices.shape)}, {tuple(tets.shape)}, {tuple(sdf.shape)}")
    device, nv = vertices.device, vertices.shape[0]
    with torch.no_grad():
        positive = sdf > 0
        code = (positive[tets].long() * _BITS.to(device)).sum(-1)           # [T]
        n_tri = TRIANGLE_COUNT.to(device)[code]
        # surface tetrahedra: the one-triangle ones, then the two-triangle ones
        surface = torch.cat([torch.nonzero(n_tri == 1).squeeze(-1),
                             torch.nonzero(n_tri == 2).squeeze(-1)])
        code, n_tri = code[surface], n_tri[surface]
        ends = tets[surface][:, TET_EDGES.to(device)]                        # [S, 6, 2]
        lo, hi = ends.min(-1).values, ends.max(-1).values                    # [S, 6]
        crossed = positive[lo] != positive[hi]
        keys, slot = torch.unique(lo[crossed] * nv + hi[crossed], return_inverse=True)
        vertex_of_edge = torch.full_like(lo, -1)
        vertex_of_edge[crossed] = slot                                       # [S, 6]
        a, b = keys // nv, keys % nv
        tri = TRIANGLE_TABLE.to(device)[code]                                # [S, 2, 3]
        one = n_tri == 1
        faces = torch.cat([
            torch.gather(vertex_of_edge[one], 1, tri[one, 0]),
            torch.gather(vertex_of_edge[~one].unsqueeze(1).expand(-1, 2, -1), 2,
                         tri[~one]).reshape(-1, 3)])
        if positive_inside:
            faces = faces[:, [0, 2, 1]]
    sa, sb = sdf[a].unsqueeze(-1), sdf[b].unsqueeze(-1)
    mesh_vertices = (vertices[a] * sb - vertices[b] * sa) / (sb - sa)
    return mesh_vertices, faces


class EmptySdfFix(NamedTuple):
    """What :func:`fix_empty_sdf` returns."""

    sdf: torch.Tensor       # [N, V] the values, replaced (and detached) for empty shapes
    empty: torch.Tensor     # [N] bool: the shapes that had no surface
    reg_loss: torch.Tensor  # [N] mean |sdf| of the original values for empty shapes, else 0


def fix_empty_sdf(sdf: torch.Tensor, center_index: int,
                  boundary_index: torch.Tensor) -> EmptySdfFix:
    """GET3D's fix for shapes whose SDF has no surface, in GET3D's sign (positive inside).

    A shape is empty when none of its values is > 0 or none is < 0. Each empty shape's
    values become ``1 - min`` at the centre vertex and ``-1 - max`` on the boundary vertices,
    with ``min``/``max`` over the **whole batch** (as GET3D); its other values are kept (as
    in GET3D, a value whose replacement would be exactly 0 is kept too). The empty shapes'
    values are detached (GET3D also detaches their deformation: use ``empty``), and
    ``reg_loss`` (mean ``|sdf|`` of their original values) pushes them toward a sign change.
    Shapes with a surface are returned unchanged.

    Args:
        sdf: [N, V] values at the grid vertices.
        center_index: :meth:`TetGrid.center_index` of the undeformed grid.
        boundary_index: [B] long, :meth:`TetGrid.boundary_index`.
    """
    if sdf.ndim != 2:
        raise ValueError(f"sdf [N, V] expected, got {tuple(sdf.shape)}")
    empty = ((sdf > 0).sum(-1) == 0) | ((sdf < 0).sum(-1) == 0)               # [N]
    reg_loss = sdf.abs().mean(-1) * empty.to(sdf.dtype)
    if not bool(empty.any()):
        return EmptySdfFix(sdf, empty, reg_loss)
    update = torch.zeros_like(sdf[0])
    update[center_index] += 1.0 - sdf.min()
    update[boundary_index.to(sdf.device)] += -1.0 - sdf.max()
    new = torch.where(empty.unsqueeze(-1), update, torch.zeros_like(sdf))
    fixed = torch.where(new == 0, sdf, new)
    fixed = torch.where(empty.unsqueeze(-1), fixed.detach(), fixed)
    return EmptySdfFix(fixed, empty, reg_loss)


# ---------------------------------------------------------------------------------------------
# Mesh measures (for tests and checks of generated shapes)

def face_areas(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """[F] triangle areas."""
    p = vertices[faces]
    return torch.linalg.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]).norm(dim=-1) / 2


def mesh_area(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """The total area (a 0-dim tensor)."""
    return face_areas(vertices, faces).sum()


def signed_volume(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """The volume a closed mesh encloses, ``sum(v0 . (v1 x v2)) / 6``: positive when its
    normals point outward."""
    p = vertices[faces]
    return (p[:, 0] * torch.linalg.cross(p[:, 1], p[:, 2])).sum() / 6


def _directed_edges(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return faces.reshape(-1), faces[:, [1, 2, 0]].reshape(-1)


def euler_characteristic(faces: torch.Tensor) -> int:
    """V - E + F over the vertices the faces use (2 for a sphere, 0 for a torus)."""
    a, b = _directed_edges(faces)
    edges = torch.unique(torch.stack([torch.minimum(a, b), torch.maximum(a, b)], -1), dim=0)
    return int(torch.unique(faces).numel() - edges.shape[0] + faces.shape[0])


def is_watertight(faces: torch.Tensor) -> bool:
    """Whether every edge belongs to exactly two faces that run along it in opposite
    directions (a closed, consistently oriented, edge-manifold mesh; True for no faces)."""
    if faces.numel() == 0:
        return True
    a, b = _directed_edges(faces)
    m = int(faces.max()) + 1
    keys, counts = torch.unique(a * m + b, return_counts=True)
    if bool((counts != 1).any()):
        return False
    reverse = torch.sort(b * m + a).values
    return bool(torch.equal(keys, reverse))


def degenerate_faces(vertices: torch.Tensor, faces: torch.Tensor,
                     eps: float = 0.0) -> torch.Tensor:
    """[F] bool: faces with a repeated vertex or an area <= ``eps``."""
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | \
               (faces[:, 0] == faces[:, 2])
    return repeated | (face_areas(vertices, faces) <= eps)

