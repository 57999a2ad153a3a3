"""Time one 3D inversion in the setting of issue 18's targets.

8 orbit views of an object at 128 px with their cameras (default: the teacher object
``examples/3d/seed000``), 6 of them fitted and 2 (``--held-out``, default 3,7) only measured;
the default :class:`i2s.embedding3d.Embed3DConfig` (``staged-joint``, W+/W+, 200 steps) unless
``--steps`` / ``--strategy`` say otherwise; known cameras; ``--threads`` CPU threads (1).

Prints the machine, the load average before and after, the setting, the wall seconds of the
``embed_3d`` call (camera handling, optimisation and the final renders; model and image
loading excluded, timed apart) and the IoU / PSNR on the fitted and the held-out views.

    python benchmarks/embed3d_time.py [--object examples/3d/seed000] [--model demo-3d]
        [--threads 1] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import i2s
from i2s.embedding3d import STRATEGIES, Embed3DConfig, embed_3d, load_image_target
from i2s.provenance import describe_machine, run_record


def _load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _db(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} dB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default="examples/3d/seed000",
                    help="a folder with views/NNN.png and cameras.json (generate-3d's layout)")
    ap.add_argument("--model", default="demo-3d")
    ap.add_argument("--held-out", default="3,7")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--steps", type=int, default=Embed3DConfig().steps)
    ap.add_argument("--strategy", choices=STRATEGIES, default=Embed3DConfig().strategy)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = _load()
    t = time.perf_counter()
    G = i2s.load_generator(args.model).to(device).eval()
    folder = Path(args.object)
    images = sorted((folder / "views").glob("*.png"))
    target = load_image_target(images, args.resolution, cameras=folder / "cameras.json")
    load_seconds = time.perf_counter() - t
    held = [int(v) for v in args.held_out.split(",") if v.strip()]
    cfg = Embed3DConfig(steps=args.steps, strategy=args.strategy, resolution=args.resolution)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    result = embed_3d(G, target, cfg, held_out=held)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    load_after = _load()
    fitted, heldout = result.mean_measures(result.fitted), result.mean_measures(held)
    row = {"object": str(folder), "model": args.model, "views": len(target),
           "held_out": held, "resolution": args.resolution, "steps": cfg.steps,
           "strategy": cfg.strategy, "space_geo": cfg.space_geo, "space_tex": cfg.space_tex,
           "cameras": "known", "threads": args.threads, "wall_seconds": wall,
           "optimisation_seconds": result.seconds, "load_seconds": load_seconds,
           "fitted": fitted, "held_out_measures": heldout,
           "load_average_before": load_before, "load_average_after": load_after}
    print(f"machine: {describe_machine(device)}")
    print(f"load average (1, 5, 15 min) before: {load_before}; after: {load_after}")
    print(f"setting: {args.model}, {folder}, {len(target)} views at {args.resolution} px, "
          f"held out {held}, known cameras, {cfg.strategy} {cfg.space_geo}/{cfg.space_tex}, "
          f"{cfg.steps} steps, {args.threads} thread(s)")
    print(f"wall: {wall:.1f} s for embed_3d (optimisation {result.seconds:.1f} s); model and "
          f"images loaded in {load_seconds:.1f} s")
    print(f"fitted views: IoU {fitted['iou']:.3f}, PSNR {_db(fitted['psnr'])}; held-out "
          f"views: IoU {heldout['iou']:.3f}, PSNR {_db(heldout['psnr'])}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**run_record(G, cfg.to_dict(), device), **row}, fh, indent=2)


if __name__ == "__main__":
    main()
