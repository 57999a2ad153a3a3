"""Regenerate the example images in this folder (see README.md here).

    python examples/make_examples.py [--teacher PATH]

Needs scikit-image (for the two non-face photos) and the DigiFace DCGAN weights (found as
``i2s train-demo`` finds them).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from i2s import dcgan
from i2s.images import load_image, save_image, to_uint8

HERE = Path(__file__).resolve().parent
FACE_SEEDS = list(range(100, 108))   # held out: training uses seeds >= 1e9 (i2s.train_demo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--teacher", default=None)
    args = ap.parse_args()
    T = dcgan.load_teacher(dcgan.find_teacher_weights(args.teacher))
    faces = to_uint8(T(dcgan.teacher_z(FACE_SEEDS)))
    for seed, face in zip(FACE_SEEDS, faces, strict=True):
        save_image(HERE / f"face_seed{seed}.png", face)
    import skimage.data

    for name, array in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / f"{name}.png"
            Image.fromarray(np.asarray(array)).save(src)
            save_image(HERE / f"{name}.png", load_image(src, dcgan.RESOLUTION))
    print(f"wrote {len(FACE_SEEDS)} faces, cat.png and coffee.png to {HERE}")


if __name__ == "__main__":
    main()
