"""Quality bars of the ``demo`` model (issue: embedded default model).

* 16 held-out teacher faces (``examples/images/faces``: seeds 100-115; training uses seeds
  >= 1e9) embedded into W+ with
  the MSE loss for 1000 steps (the paper's Adam settings): mean PSNR at 64 px;
* the two non-face photos (scikit-image cat and coffee, ``examples/images/``) embedded the
  same way;
* the same faces embedded into a randomly initialised generator of the same architecture
  (seeded; ``w_avg`` measured like the trained model's), for comparison.

    python benchmarks/demo_quality.py [--steps 1000] [--model demo] [--out DIR]

Prints a table and writes ``results.json`` (and reconstruction grids) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import i2s
from i2s.demo.train import compute_w_avg
from i2s.experiments.image_set import packaged_examples
from i2s.media.grid import image_grid
from i2s.media.images import load_image, save_image, to_tensor, to_uint8
from i2s.media.metrics import mse, psnr
from i2s.provenance import run_record

FACE_SEEDS = list(range(100, 116))


def embed_psnr(G, targets: torch.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Embed [N, 3, 64, 64] targets; PSNR (dB) of the 8-bit reconstructions, images, seconds."""
    t = time.perf_counter()
    res = i2s.embed(G, targets, space="w+", steps=steps, loss="mse", seed=0)
    seconds = time.perf_counter() - t
    recon = to_uint8(res.image)
    return psnr(mse(recon, to_uint8(targets))), recon, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--out", default="out/demo_quality")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    G = i2s.load_generator(args.model)
    ex = packaged_examples()
    faces = to_tensor(np.stack([load_image(ex / "faces" / f"face_seed{s}.png", 64)
                                for s in FACE_SEEDS]))
    others = to_tensor(np.stack([load_image(ex / n, 64)
                                 for n in ("cats/chelsea.png", "objects/coffee.png")]))

    torch.manual_seed(12345)
    R = i2s.StyleGAN2Generator(G.cfg).eval().requires_grad_(False)
    R.mapping.w_avg.copy_(compute_w_avg(R))

    rows = {}
    for name, gen, targets in (("demo: 16 held-out faces", G, faces),
                               ("demo: cat, coffee", G, others),
                               ("random-init generator: same 16 faces", R, faces)):
        psnr, recon, seconds = embed_psnr(gen, targets, args.steps)
        rows[name] = {"psnr": psnr.tolist(), "mean_psnr": float(psnr.mean()),
                      "min_psnr": float(psnr.min()), "max_psnr": float(psnr.max()),
                      "seconds": seconds}
        grid = image_grid(np.concatenate([to_uint8(targets), recon]), cols=len(targets))
        save_image(out / (name.split(":")[0].replace(" ", "_") + f"_{len(targets)}.png"), grid)
        print(f"{name:<40} mean {psnr.mean():6.2f} dB  (min {psnr.min():.2f}, max "
              f"{psnr.max():.2f})  {seconds:.0f} s", flush=True)
    settings = i2s.EmbedConfig(steps=args.steps, loss="mse", space="w+").to_dict()
    info = {**run_record(G, settings), "face_seeds": FACE_SEEDS, "results": rows}
    (out / "results.json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
