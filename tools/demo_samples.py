"""Figures of the ``demo`` model for the README.

* ``docs/demo_samples.png``: 32 uncurated samples, z from seeds 0-31 (as ``i2s generate --seed``),
  no truncation, constant noise;
* ``docs/demo_vs_teacher.png`` (when the teacher's weights are found): the DigiFace DCGAN
  teacher (top) and the demo model (bottom) for the same 12 held-out z (seeds 900-911).

    python tools/demo_samples.py [--model demo] [--teacher PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import i2s
from i2s.demo import teacher as dcgan
from i2s.demo.train import teacher_targets
from i2s.errors import I2SError
from i2s.experiments.figures import labelled_grid
from i2s.media.images import save_image, to_uint8
from i2s.media.metrics import mse, psnr
from i2s.models.common import seed_z

DOCS = Path(__file__).resolve().parents[1] / "docs"
SAMPLE_SEEDS = range(32)
PAIR_SEEDS = range(900, 912)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--teacher", default=None)
    args = ap.parse_args()
    G = i2s.load_generator(args.model)
    DOCS.mkdir(exist_ok=True)
    with torch.no_grad():
        samples = to_uint8(G(seed_z(list(SAMPLE_SEEDS), G.z_dim)))
    save_image(DOCS / "demo_samples.png", labelled_grid([list(r) for r in samples.reshape(
        4, 8, *samples.shape[1:])]))
    print(f"wrote {DOCS / 'demo_samples.png'}")
    try:
        T = dcgan.load_teacher(dcgan.find_teacher_weights(args.teacher))
    except I2SError as e:
        print(f"skipped demo_vs_teacher.png: {e}")
        return
    z = dcgan.teacher_z(list(PAIR_SEEDS))
    with torch.no_grad():
        rows = [list(to_uint8(teacher_targets(T, z))), list(to_uint8(G(z)))]
    save_image(DOCS / "demo_vs_teacher.png",
               labelled_grid(rows, ["teacher (DCGAN)", "demo (StyleGAN2)"]))
    db = float(psnr(mse(np.stack(rows[0]), np.stack(rows[1])).mean()))
    print(f"wrote {DOCS / 'demo_vs_teacher.png'}; student vs teacher PSNR {db:.2f} dB")


if __name__ == "__main__":
    main()
