"""Time one forward + backward of GET3D's ``render(ws_geo, ws_tex)`` and how it splits.

Released configuration (tri-plane 256 px, 512 channels, tet_res 90, 34.3M parameters), random
weights (the cost is the same as with trained ones), one shape, ``--views`` views (4) at
``--resolution`` px (256), loss = mean of RGB and mask, gradients to ws_geo and ws_tex. The
grid is i2s's regular grid at tet_res unless ``--official-grid FILE`` gives GET3D's
``90_compress.npz`` (98,653 vertices instead of 753,571: far cheaper to query).

Prints seconds per step (median of ``--steps`` after one warm-up), peak memory, and the
forward time of each part: tri-plane synthesis, SDF/deformation MLPs on the grid, marching
tetrahedra, rasterisation + texture MLP + to_rgb.

    python benchmarks/get3d_step.py                   # CPU
    python benchmarks/get3d_step.py --device cuda     # GPU (nvdiffrast when installed)
    python benchmarks/get3d_step.py --raster-ab       # CPU: compiled z-buffer vs PyTorch's
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

import i2s
from i2s.get3d.cameras import Cameras
from i2s.get3d.generator import Mesh
from i2s.get3d.marching_tets import marching_tets
from i2s.get3d.tets import load_tet_grid
from i2s.provenance import describe_machine, run_record


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device, fn):
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t


def raster_ab(device: torch.device, step, steps: int) -> dict[str, list[float]]:
    """Seconds per step with the compiled z-buffer kernel and without it (the PyTorch
    search), taking turns ``steps`` times."""
    from i2s.get3d import raster

    real = raster.load_raster_kernel
    out: dict[str, list[float]] = {"compiled": [], "pytorch": []}
    try:
        for _ in range(steps):
            for name, loader in (("compiled", real), ("pytorch", lambda: None)):
                raster.load_raster_kernel = loader
                out[name].append(timed(device, step)[1])
    finally:
        raster.load_raster_kernel = real
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--official-grid", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--raster-ab", action="store_true",
                    help="also time steps with the compiled CPU z-buffer and with the PyTorch "
                         "search, alternating in this process")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    G = i2s.GET3DGenerator(i2s.GET3DConfig()).to(device).eval().requires_grad_(False)
    if args.official_grid:
        G.set_tet_grid(load_tet_grid(args.official_grid, G.cfg.dmtet_scale))
    grid = G.tet_grid
    cams = Cameras.orbit(k=args.views, elevation_deg=15, radius=1.2, device=device)
    ws_geo = G.mapping_geo(torch.randn(1, 512, device=device))
    ws_tex = G.mapping(torch.randn(1, 512, device=device))

    def step():
        wg, wt = ws_geo.clone().requires_grad_(True), ws_tex.clone().requires_grad_(True)
        img = G.render(wg, wt, cams, args.resolution)
        (img[:, :, :3].mean() + img[:, :, 3].mean()).backward()
        return img

    img, _ = timed(device, step)  # warm-up
    times = [timed(device, step)[1] for _ in range(args.steps)]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ab = raster_ab(device, step, args.steps) if args.raster_ab else None
    # The forward parts, one by one.
    with torch.no_grad():
        planes, t_planes = timed(device, lambda: G.planes(ws_geo, ws_tex))
        (sdf, verts, empty), t_geo = timed(device, lambda: G.geometry(ws_geo, planes))
        tets = grid.tets.to(device)
        (v, f), t_mt = timed(device, lambda: marching_tets(verts[0], tets, sdf[0],
                                                           positive_inside=True))
        _, t_render = timed(device, lambda: G.render_meshes(
            [Mesh(v, f, torch.empty(0, 3))], ws_tex, planes, cams, args.resolution))
    row = {"seconds_per_step_median": statistics.median(times), "seconds_all": times,
           "peak_mib": peak, "views": args.views, "resolution": args.resolution,
           "grid_vertices": grid.num_vertices, "grid_tets": grid.num_tets,
           "mesh_vertices": len(v), "mesh_faces": len(f),
           "forward_split_seconds": {"tri_plane": t_planes, "sdf_deformation_mlps": t_geo,
                                     "marching_tets": t_mt, "raster_texture_rgb": t_render},
           "raster_ab_seconds": ab}
    print(f"machine: {describe_machine(device)}")
    print(f"GET3D released config, {grid.num_vertices} grid vertices, mesh {len(v)} vertices / "
          f"{len(f)} faces, {args.views} views at {args.resolution} px")
    print(f"forward+backward: {row['seconds_per_step_median']:.2f} s median "
          f"({', '.join(f'{t:.2f}' for t in times)}), peak {peak:.0f} MiB")
    print("forward split: " + ", ".join(f"{k} {t:.2f} s" for k, t in
                                        row["forward_split_seconds"].items()))
    if ab is not None:
        print("z-buffer A/B, seconds per step: " + ", ".join(
            f"{k} {statistics.median(v):.2f} ({', '.join(f'{t:.2f}' for t in v)})"
            for k, v in ab.items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**run_record(device=device), **row}, fh, indent=2)


if __name__ == "__main__":
    main()
