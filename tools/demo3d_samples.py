"""Figures of the ``demo-3d`` model for the README.

* ``docs/demo3d_samples.png``: 16 uncurated samples, (z_geo, z_tex) from seeds 0-15 (as
  ``i2s generate-3d --seed``), no truncation, two views each (azimuth 30 and 210 degrees);
* ``docs/demo3d_vs_teacher.png``: the furniture teacher (top) and demo-3d (bottom) for the same
  8 held-out seeds (the objects of ``examples/3d``), one view each;
* ``docs/demo3d_turntable.gif``: 8 samples (seeds 0-7) turning, 36 frames;
* ``docs/demo3d_swap.png``: geometry of seeds 0-3 (rows) x texture of seeds 4-7 (columns).

    python tools/demo3d_samples.py [--model demo-3d]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import i2s
from i2s.demo.examples3d import Z_DIM
from i2s.demo.furniture import FurnitureObject
from i2s.experiments.figures import labelled_grid
from i2s.get3d.cameras import Cameras
from i2s.get3d.seeds import seed_z_3d
from i2s.media.images import save_image, to_uint8
from i2s.media.video import VideoWriter

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLE_SEEDS = [0, 6, 9, 18, 29, 34, 51, 54]
RES = 128


def on_white(img: torch.Tensor) -> np.ndarray:
    """[K, 4, H, W] renders -> uint8 [K, H, W, 3], RGB over a white background."""
    rgb, mask = img[:, :3].clamp(-1, 1), img[:, 3:]
    return to_uint8(rgb * mask + (1 - mask))


def student(G, seed: int, cams: Cameras, seed_tex: int | None = None) -> torch.Tensor:
    z_geo, z_tex = seed_z_3d(seed, seed_tex, G.z_dim)
    with torch.no_grad():
        return G.render(G.mapping_geo(z_geo), G.mapping(z_tex), cams, RES)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo-3d")
    args = ap.parse_args()
    G = i2s.load_generator(args.model).eval()
    DOCS.mkdir(exist_ok=True)

    two = Cameras.from_spherical(torch.tensor([30.0, 210.0]), 20.0, 1.5)
    tiles = [on_white(student(G, s, two)) for s in range(16)]
    rows = [[t for pair in tiles[r * 4:(r + 1) * 4] for t in pair] for r in range(4)]
    save_image(DOCS / "demo3d_samples.png", labelled_grid(rows))
    print(f"wrote {DOCS / 'demo3d_samples.png'}")

    one = Cameras.from_spherical(30.0, 20.0, 1.5)
    teacher = [on_white(FurnitureObject(*seed_z_3d(s, None, Z_DIM)).render(one, RES))[0]
               for s in EXAMPLE_SEEDS]
    pupil = [on_white(student(G, s, one))[0] for s in EXAMPLE_SEEDS]
    save_image(DOCS / "demo3d_vs_teacher.png", labelled_grid([teacher, pupil]))
    print(f"wrote {DOCS / 'demo3d_vs_teacher.png'}")

    swap = [[on_white(student(G, g, one, seed_tex=t))[0] for t in range(4, 8)]
            for g in range(4)]
    save_image(DOCS / "demo3d_swap.png", labelled_grid(swap))
    print(f"wrote {DOCS / 'demo3d_swap.png'}")

    turn = Cameras.orbit(k=36, elevation_deg=20, radius=1.5)
    frames = np.stack([on_white(student(G, s, turn)) for s in range(8)])    # [8, 36, H, W, 3]
    with VideoWriter(DOCS / "demo3d_turntable.gif", fps=12) as video:
        for k in range(frames.shape[1]):
            top = np.concatenate(list(frames[:4, k]), axis=1)
            bottom = np.concatenate(list(frames[4:, k]), axis=1)
            video.add(np.concatenate([top, bottom], axis=0))
    print(f"wrote {DOCS / 'demo3d_turntable.gif'}")


if __name__ == "__main__":
    main()
