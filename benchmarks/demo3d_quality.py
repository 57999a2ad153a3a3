"""The quality bars of ``demo-3d`` (issue 17), measured on held-out teacher seeds.

* student vs teacher for the same (z_geo, z_tex): Chamfer distance (symmetric, 10k surface
  samples each, in units of the teacher's bounding-box diagonal), silhouette IoU over 8 orbit
  views at 128 px, RGB PSNR inside both silhouettes;
* disentanglement: Chamfer between the student's meshes when z_tex changes (must be ~0) and
  when z_geo changes;
* seconds per sample on this machine: mesh extraction, a 4-view 128 px render.

    python benchmarks/demo3d_quality.py [--model demo-3d] [--seeds 100-119] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

import i2s
from i2s.demo.quality3d import compare_seed, disentanglement, time_per_sample
from i2s.get3d.cameras import Cameras
from i2s.provenance import describe_machine, run_record


def seed_range(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo-3d")
    ap.add_argument("--seeds", default="100-119", help="held-out seeds, e.g. 100-119")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    G = i2s.load_generator(args.model).eval()
    seeds = seed_range(args.seeds)
    cams = Cameras.orbit(k=args.views, elevation_deg=20, radius=1.5)
    print(f"machine: {describe_machine()}")
    print(f"model: {args.model} ({G.sha256 or 'no file'}); seeds {seeds[0]}-{seeds[-1]}, "
          f"{args.views} views at {args.resolution} px")
    rows = []
    for s in seeds:
        q = compare_seed(G, s, cams, args.resolution)
        rows.append(q.to_dict())
        print(f"seed {s:5d}  chamfer {q.chamfer:.4f}  iou {q.iou:.3f}  psnr {q.psnr:.2f} dB  "
              f"faces {q.student_faces}{'  EMPTY' if q.empty else ''}", flush=True)
    tex_moves, geo_moves = zip(*[disentanglement(G, s, s + 1000) for s in seeds[:10]],
                               strict=True)
    mesh_s, render_s = time_per_sample(G, seeds[0])
    summary = {
        "chamfer_mean": statistics.mean(r["chamfer"] for r in rows),
        "chamfer_median": statistics.median(r["chamfer"] for r in rows),
        "iou_mean": statistics.mean(r["iou"] for r in rows),
        "iou_min": min(r["iou"] for r in rows),
        "psnr_mean": statistics.mean(r["psnr"] for r in rows),
        "chamfer_when_z_tex_changes": max(tex_moves),
        "chamfer_when_z_geo_changes_mean": statistics.mean(geo_moves),
        "mesh_seconds": mesh_s, "render_4x128_seconds": render_s,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**run_record(G, device=torch.device("cpu")), "seeds": rows,
                       "summary": summary}, fh, indent=2)


if __name__ == "__main__":
    main()
